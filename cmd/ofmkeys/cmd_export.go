package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
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
		v := ks.Active(p)
		if v == nil {
			return fmt.Errorf("%w: the %s purpose has no active key", keyset.ErrNoVersion, p)
		}
		chain, err := v.Certificates()
		if err != nil {
			return err
		}
		dir := c.String("out")
		files := map[string][]byte{
			string(p) + ".crt":       pki.EncodeCertificates(chain[:1]),
			string(p) + "-chain.pem": pki.EncodeCertificates(chain),
		}
		if !c.Bool("public-only") {
			key, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
			if err != nil {
				return err
			}
			files[string(p)+".key"] = pki.EncodePrivateKey(key)
		}
		for _, name := range []string{string(p) + ".crt", string(p) + "-chain.pem", string(p) + ".key"} {
			data, ok := files[name]
			if !ok {
				continue
			}
			path := filepath.Join(dir, name)
			if err := keystore.WriteFileAtomic(path, data); err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, path)
		}
		return nil
	})
}
