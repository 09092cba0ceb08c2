package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "write a purpose's active certificate, chain and private key as PEM files",
		Description: `For HTTP clients and proxies that need files: DIR/PURPOSE.crt (the certificate),
DIR/PURPOSE-chain.pem (certificate and chain), DIR/PURPOSE.key (PKCS#8, mode 0600).
Every file is written atomically; DIR is created 0700.`,
		Flags: []cli.Flag{
			purposeFlag(),
			&cli.StringFlag{Name: "out", Usage: "folder to write to", Required: true},
			boolFlag("public-only", "write the certificates only, not the private key"),
		},
		Action: runExport,
	}
}

func runExport(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		written, err := keyset.WriteFiles(ctx, s, ks, p, c.String("out"), !c.Bool("public-only"))
		for _, path := range written {
			fmt.Fprintln(c.App.Writer, path)
		}
		return err
	})
}
