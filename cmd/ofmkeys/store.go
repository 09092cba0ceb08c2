package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/vaultstore"
)

// openStore opens the backend --store names. The caller closes it.
func openStore(c *cli.Context) (keystore.Store, func(), error) {
	spec := c.String("store")
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "file":
		if arg == "" {
			arg = ".ofmkeys"
		}
		pass, err := passphrase(c)
		if err != nil {
			return nil, nil, err
		}
		s, err := keystore.OpenFileStore(arg, pass)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	case "vault":
		if arg != "" {
			return nil, nil, configError{fmt.Errorf("--store vault takes no path (%q): use --vault-mount and --vault-prefix", spec)}
		}
		s, err := vaultstore.New(c.Context, vaultstore.Config{
			Mount:        c.String("vault-mount"),
			Prefix:       c.String("vault-prefix"),
			RoleIDFile:   c.String("vault-role-id-file"),
			SecretIDFile: c.String("vault-secret-id-file"),
			AppRoleMount: c.String("vault-approle-mount"),
		})
		if err != nil {
			if errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, keystore.ErrPermission) {
				return nil, nil, err
			}
			return nil, nil, configError{err}
		}
		return s, func() { s.Close() }, nil
	}
	return nil, nil, configError{fmt.Errorf("--store %q: want file:PATH or vault", spec)}
}

// passphrase reads the file store's passphrase from --passphrase-file or
// OFMKEYS_PASSPHRASE (secrets never come from flags).
func passphrase(c *cli.Context) ([]byte, error) {
	if f := c.String("passphrase-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, configError{fmt.Errorf("passphrase file: %w", err)}
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	return []byte(os.Getenv("OFMKEYS_PASSPHRASE")), nil
}

// withKeyset opens the store and loads the selected DC's keyset.
func withKeyset(c *cli.Context, fn func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error) error {
	s, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx := c.Context
	dc, err := keyset.ResolveDC(ctx, s, c.String("dc-id"))
	if err != nil {
		return err
	}
	ks, _, err := keyset.Load(ctx, s, dc)
	if err != nil {
		return err
	}
	return fn(ctx, s, ks)
}

// settings collects the DC settings flags.
func settings(c *cli.Context) keyset.Settings {
	return keyset.Settings{
		DCID:         c.String("dc-id"),
		ClientID:     c.String("client-id"),
		Organisation: c.String("org"),
		CommonName:   c.String("common-name"),
		Environment:  keyset.Environment(c.String("environment")),
		KidPolicy:    pki.KidPolicy(c.String("kid-policy")),
	}
}
