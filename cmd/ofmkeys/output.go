package main

import (
	"encoding/json"
	"fmt"
	"github.com/urfave/cli/v2"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// versionView is a key version as list, show and init print it.
type versionView struct {
	Purpose     pki.Purpose   `json:"purpose"`
	State       keyset.State  `json:"state"`
	Kid         string        `json:"kid"`
	Source      keyset.Source `json:"source"`
	NotBefore   time.Time     `json:"not_before"`
	NotAfter    time.Time     `json:"not_after"`
	DaysLeft    int           `json:"days_left"`
	Fingerprint string        `json:"sha256_fingerprint"`
	X5tS256     string        `json:"x5t#S256"`
}

func view(v *keyset.Version, now time.Time) versionView {
	fp := ""
	if chain, err := v.Certificates(); err == nil {
		fp = pki.FingerprintSHA256(chain[0])
	}
	return versionView{
		Purpose: v.Purpose, State: v.State, Kid: v.Kid, Source: v.Source,
		NotBefore: v.NotBefore, NotAfter: v.NotAfter, DaysLeft: v.DaysLeft(now),
		Fingerprint: fp, X5tS256: v.X5tS256,
	}
}

// printVersions prints the key table, or JSON.
func printVersions(w io.Writer, versions []keyset.Version, now time.Time, asJSON bool) error {
	views := make([]versionView, 0, len(versions))
	for i := range versions {
		views = append(views, view(&versions[i], now))
	}
	if asJSON {
		return writeJSON(w, views)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PURPOSE\tSTATE\tKID\tNOT AFTER\tDAYS LEFT\tSHA-256 FINGERPRINT")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", v.Purpose, v.State, v.Kid, v.NotAfter.Format("2006-01-02 15:04Z"), v.DaysLeft, v.Fingerprint)
	}
	return tw.Flush()
}

// newTable is the table writer every command uses.
func newTable(c *cli.Context) *tabwriter.Writer {
	return tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
}
