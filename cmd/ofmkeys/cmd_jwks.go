package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func jwksCommand() *cli.Command {
	return &cli.Command{
		Name:  "jwks",
		Usage: "print the public JWKS to host at the DC's jwks_uri",
		Description: `Signing keys (use sig, alg PS256) and encryption keys (use enc, alg RSA-OAEP-256),
with kid, n, e, x5c and x5t#S256. Never a private member.`,
		Flags: []cli.Flag{
			stringFlag("out", "write to this file (atomically) instead of standard output", ""),
			boolFlag("publish-transport", "also publish the transport key (OFM registers it out of band; off by default)"),
		},
		Action:      runJWKS,
		Subcommands: []*cli.Command{jwksLintCommand()},
	}
}

func runJWKS(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		doc, err := jwks.Marshal(ks, jwks.Options{PublishTransport: c.Bool("publish-transport")})
		if err != nil {
			return err
		}
		if out := c.String("out"); out != "" {
			if err := keystore.WriteFileAtomic(out, doc); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "Wrote the JWKS to %s.\n", out)
			return nil
		}
		_, err = c.App.Writer.Write(doc)
		return err
	})
}
