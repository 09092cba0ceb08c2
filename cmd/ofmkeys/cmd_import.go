package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "import a CA-issued certificate for a key made by `csr`, or an existing key and certificate",
		Description: `Checks the certificate (and chain, and key) against OFM's rules and the purpose's
profile: RSA ≥ 2048, key and certificate match, key usage and extended key usage,
chain order, not expired, 12 months of validity (production). Nothing is stored when
a check fails. Without --key, the certificate must be for a key made by ` + "`ofmkeys csr`" + `.`,
		Flags: append(settingsFlags(),
			purposeFlag(),
			&cli.StringFlag{Name: "cert", Usage: "the certificate (PEM; may hold the chain after it)", Required: true},
			stringFlag("chain", "the issuing CA certificates (PEM), the leaf's issuer first", ""),
			stringFlag("key", "the private key (PEM) of a pair made elsewhere, e.g. PayNet's sandbox starter pack", ""),
			stringFlag("key-passphrase-file", "file holding the passphrase of an encrypted --key", ""),
			jsonFlag(),
		),
		Action: runImport,
	}
}

func parsePurpose(c *cli.Context) (pki.Purpose, error) {
	p, err := pki.ParsePurpose(c.String("purpose"))
	if err != nil {
		return "", usageError{err}
	}
	return p, nil
}

// readFileFlag reads the PEM file a flag names (nil when unset).
func readFileFlag(c *cli.Context, name string) ([]byte, error) {
	return readFileFlagLimit(c, name, 1<<20)
}

// readFileFlagLimit reads the file a flag names, refusing one over max bytes.
func readFileFlagLimit(c *cli.Context, name string, max int64) ([]byte, error) {
	path := c.String(name)
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("--%s %s: larger than %d bytes", name, path, max)
	}
	return b, nil
}

func runImport(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	o := keyset.ImportOptions{Purpose: p, Settings: settings(c), Actor: actorName("import")}
	if o.Chain, err = readFileFlag(c, "cert"); err != nil {
		return err
	}
	chain, err := readFileFlag(c, "chain")
	if err != nil {
		return err
	}
	if chain != nil {
		o.Chain = append(append(o.Chain, '\n'), chain...)
	}
	if o.Key, err = readFileFlag(c, "key"); err != nil {
		return err
	}
	if pass, err := readFileFlag(c, "key-passphrase-file"); err != nil {
		return err
	} else if pass != nil {
		o.KeyPassphrase = []byte(strings.TrimRight(string(pass), "\r\n"))
	}
	s, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	if o.Settings.DCID, err = keyset.ResolveDC(c.Context, s, o.Settings.DCID); err != nil {
		return fmt.Errorf("%w (give --dc-id for a new keyset)", err)
	}
	v, err := keyset.Import(c.Context, s, o, now(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, view(v, now(c)))
	}
	fmt.Fprintf(c.App.Writer, "Imported the %s certificate as %s (%s).\n\n", p, v.State, v.Source)
	if err := printVersions(c.App.Writer, []keyset.Version{*v}, now(c), false); err != nil {
		return err
	}
	if v.State == keyset.Staged {
		fmt.Fprintf(c.App.Writer, "\nThe %s purpose already has an active key; this one is staged until a rotation promotes it.\n", p)
	}
	return nil
}
