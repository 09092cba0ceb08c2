package main

import (
	"context"
	"crypto/rsa"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

func encryptCommand() *cli.Command {
	return &cli.Command{
		Name:  "encrypt",
		Usage: "encrypt standard input: an RSA-OAEP-256/A256GCM compact JWE to the keyset's encryption key",
		Flags: []cli.Flag{
			stringFlag("jwks", "encrypt to the first use=enc key of this JWKS (file or URL) instead", ""),
			boolFlag("no-kid", "leave the kid out of the header, as OFM's data providers do"),
			inFlag(),
		},
		Action: runEncrypt,
	}
}

func runEncrypt(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	plaintext, err := readInput(c)
	if err != nil {
		return err
	}
	encrypt := func(pub *rsa.PublicKey, kid string) error {
		if c.Bool("no-kid") {
			kid = ""
		}
		jwe, err := jwks.Encrypt(pub, kid, plaintext)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.App.Writer, jwe)
		return err
	}
	if src := c.String("jwks"); src != "" {
		set, err := loadJWKS(c)
		if err != nil {
			return err
		}
		for _, k := range set.Keys {
			if pub, ok := k.Key.(*rsa.PublicKey); ok && k.Use == "enc" {
				return encrypt(pub, k.KeyID)
			}
		}
		return fmt.Errorf("--jwks %s has no RSA key with use enc", src)
	}
	return withKeyset(c, func(_ context.Context, _ keystore.Store, ks *keyset.Keyset) error {
		v := ks.Active(pki.Encryption)
		if v == nil {
			return fmt.Errorf("%w: no active encryption key", keyset.ErrNoVersion)
		}
		chain, err := v.Certificates()
		if err != nil {
			return err
		}
		return encrypt(chain[0].PublicKey.(*rsa.PublicKey), v.Kid)
	})
}
