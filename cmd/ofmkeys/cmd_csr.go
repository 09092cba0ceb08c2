package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

func csrCommand() *cli.Command {
	return &cli.Command{
		Name:  "csr",
		Usage: "make a key and a certificate signing request for a CA (production)",
		Description: `Makes a new RSA key for PURPOSE, keeps it in the store, and writes a PKCS#10
request with the purpose's profile for PayNet's CA. Import the signed certificate
with ` + "`ofmkeys import --purpose PURPOSE --cert FILE`" + `; the key never leaves the store.`,
		Flags: append(settingsFlags(),
			purposeFlag(),
			stringFlag("out", "file to write the CSR to (PEM); - for standard output", "-"),
			intFlag("bits", "RSA key size: 2048, 3072 or 4096", 2048),
		),
		Action: runCSR,
	}
}

func purposeFlag() cli.Flag {
	return &cli.StringFlag{Name: "purpose", Usage: "transport, signing or encryption", Required: true, EnvVars: []string{envName("purpose")}}
}

func runCSR(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := parsePurpose(c)
	if err != nil {
		return err
	}
	s, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	set := settings(c)
	if set.DCID, err = keyset.ResolveDC(c.Context, s, set.DCID); err != nil {
		return fmt.Errorf("%w (give --dc-id for a new keyset)", err)
	}
	csr, err := keyset.NewCSR(c.Context, s, set, p, c.Int("bits"), now(c))
	if err != nil {
		return err
	}
	out := c.String("out")
	if out == "-" {
		_, err := c.App.Writer.Write(csr)
		return err
	}
	if err := keystore.WriteFileAtomic(out, csr); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "Wrote the %s CSR to %s. Send it to the CA; import the certificate with `ofmkeys import --purpose %s --cert FILE`.\n", p, out, p)
	return nil
}
