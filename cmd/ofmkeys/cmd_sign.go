package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

func signCommand() *cli.Command {
	return &cli.Command{
		Name:  "sign",
		Usage: "sign standard input: a PS256 compact JWS with the active signing key",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "purpose", Usage: "signing (the only purpose that signs)", Value: "signing"},
			boolFlag("detached", "detached JWS: the payload segment is left empty"),
			inFlag(),
		},
		Action: runSign,
	}
}

func runSign(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if p, err := parsePurpose(c); err != nil {
		return err
	} else if p != pki.Signing {
		return usageError{fmt.Errorf("only signing keys sign: %s keys are for %s", p, map[pki.Purpose]string{pki.Transport: "mutual TLS", pki.Encryption: "receiving JWEs"}[p])}
	}
	payload, err := readInput(c)
	if err != nil {
		return err
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		v := ks.Active(pki.Signing)
		if v == nil {
			return fmt.Errorf("%w: no active signing key", keyset.ErrNoVersion)
		}
		if t := now(c); t.After(v.NotAfter) || t.Before(v.NotBefore) {
			return fmt.Errorf("the signing certificate %s is not valid now (valid %s to %s): rotate it", v.Kid, v.NotBefore.Format("2006-01-02"), v.NotAfter.Format("2006-01-02"))
		}
		key, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
		if err != nil {
			return err
		}
		jws, err := jwks.Sign(key, v.Kid, payload, c.Bool("detached"))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.App.Writer, jws)
		return err
	})
}
