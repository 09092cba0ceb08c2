package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func decryptCommand() *cli.Command {
	return &cli.Command{
		Name:  "decrypt",
		Usage: "decrypt an RSA-OAEP-256/A256GCM compact JWE from standard input",
		Description: `OFM's JWEs carry no kid, so every encryption key the keyset still holds is tried,
the active one first, then retiring ones. A JWE that names a kid is opened only by
that key.`,
		Flags:  []cli.Flag{inFlag(), jsonFlag()},
		Action: runDecrypt,
	}
}

func runDecrypt(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	in, err := readInput(c)
	if err != nil {
		return err
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		var keys []jwks.Decryptor
		for _, v := range ks.Decryptors() {
			key, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
			if err != nil {
				return err
			}
			keys = append(keys, jwks.Decryptor{Kid: v.Kid, Key: key})
		}
		if len(keys) == 0 {
			return fmt.Errorf("%w: the keyset holds no encryption key", keyset.ErrNoVersion)
		}
		pt, kid, err := jwks.Decrypt(string(in), keys)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, newPayloadView(kid, "", pt))
		}
		_, err = c.App.Writer.Write(pt)
		return err
	})
}
