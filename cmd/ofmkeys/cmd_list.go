package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:   "list",
		Usage:  "list every key version of the keyset, and keys waiting for a CA certificate",
		Flags:  []cli.Flag{jsonFlag()},
		Action: runList,
	}
}

// listView is list's JSON.
type listView struct {
	DCID        string             `json:"dc_id"`
	ClientID    string             `json:"client_id"`
	Environment keyset.Environment `json:"environment"`
	KidPolicy   pki.KidPolicy      `json:"kid_policy"`
	Versions    []versionView      `json:"versions"`
	Pending     []pendingView      `json:"pending"`
}

type pendingView struct {
	Purpose   pki.Purpose `json:"purpose"`
	KeyID     string      `json:"key_id"`
	CreatedAt time.Time   `json:"created_at"`
}

func runList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		t := now(c)
		lv := listView{DCID: ks.DCID, ClientID: ks.ClientID, Environment: ks.Environment, KidPolicy: ks.KidPolicy,
			Versions: []versionView{}, Pending: []pendingView{}}
		for _, v := range ks.Sorted() {
			lv.Versions = append(lv.Versions, view(&v, t))
		}
		for _, p := range ks.Pending {
			lv.Pending = append(lv.Pending, pendingView{Purpose: p.Purpose, KeyID: p.ID, CreatedAt: p.CreatedAt})
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, lv)
		}
		if len(ks.Versions) > 0 {
			if err := printVersions(c.App.Writer, ks.Sorted(), t, false); err != nil {
				return err
			}
		}
		for _, p := range lv.Pending {
			fmt.Fprintf(c.App.Writer, "%s key %s waits for its CA certificate (CSR made %s): ofmkeys import --purpose %s --cert FILE\n",
				p.Purpose, p.KeyID, p.CreatedAt.Format(time.DateOnly), p.Purpose)
		}
		return nil
	})
}
