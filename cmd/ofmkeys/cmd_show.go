package main

import (
	"context"
	"crypto/rsa"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show one key version: a purpose's active key, or a kid",
		ArgsUsage: "PURPOSE|KID",
		Flags: []cli.Flag{
			jsonFlag(),
			boolFlag("pem", "print the certificate chain as PEM"),
		},
		Action: runShow,
	}
}

// showView is what show prints: the version and its certificate's details.
type showView struct {
	versionView
	Subject     string              `json:"subject"`
	Issuer      string              `json:"issuer"`
	Serial      string              `json:"serial"`
	KeyBits     int                 `json:"key_bits"`
	KeyUsage    []string            `json:"key_usage"`
	ExtKeyUsage []string            `json:"ext_key_usage"`
	ChainLength int                 `json:"chain_length"`
	History     []keyset.Transition `json:"history"`
}

func runShow(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{fmt.Errorf("show needs one PURPOSE (transport, signing, encryption) or KID")}
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		v, err := ks.Select(c.Args().First())
		if err != nil {
			return err
		}
		if c.Bool("pem") {
			_, err := fmt.Fprint(c.App.Writer, v.Chain)
			return err
		}
		chain, err := v.Certificates()
		if err != nil {
			return err
		}
		leaf := chain[0]
		sv := showView{
			versionView: view(v, now(c)),
			Subject:     leaf.Subject.String(),
			Issuer:      leaf.Issuer.String(),
			Serial:      fmt.Sprintf("%X", leaf.SerialNumber),
			KeyUsage:    pki.KeyUsageNames(leaf.KeyUsage),
			ExtKeyUsage: pki.ExtKeyUsageNames(leaf.ExtKeyUsage),
			ChainLength: len(chain),
			History:     v.History,
		}
		if k, ok := leaf.PublicKey.(*rsa.PublicKey); ok {
			sv.KeyBits = k.N.BitLen()
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, sv)
		}
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		for _, row := range [][2]string{
			{"purpose", string(sv.Purpose)},
			{"state", string(sv.State)},
			{"kid", sv.Kid},
			{"source", string(sv.Source)},
			{"subject", sv.Subject},
			{"issuer", sv.Issuer},
			{"serial", sv.Serial},
			{"key", fmt.Sprintf("RSA-%d", sv.KeyBits)},
			{"key usage", strings.Join(sv.KeyUsage, ", ")},
			{"extended key usage", orNone(strings.Join(sv.ExtKeyUsage, ", "))},
			{"not before", sv.NotBefore.Format(time.RFC3339)},
			{"not after", sv.NotAfter.Format(time.RFC3339)},
			{"days left", fmt.Sprint(sv.DaysLeft)},
			{"chain", fmt.Sprintf("%d certificate(s)", sv.ChainLength)},
			{"x5t#S256", sv.X5tS256},
			{"sha-256 fingerprint", sv.Fingerprint},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
		for _, h := range sv.History {
			fmt.Fprintf(tw, "history:\t%s %s (%s)\n", h.At.Format(time.RFC3339), h.State, h.Reason)
		}
		return tw.Flush()
	})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
