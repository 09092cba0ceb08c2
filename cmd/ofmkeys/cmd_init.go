package main

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "make the keyset: transport, signing and encryption keys with self-signed certificates (sandbox)",
		Description: `Makes three RSA keys in parallel, a self-signed certificate of each purpose's
profile, stores them, and prints the key table. For production, make CSRs with
` + "`ofmkeys csr`" + ` and import the CA-issued certificates with ` + "`ofmkeys import`" + `.`,
		Flags: append(settingsFlags(),
			intFlag("bits", "RSA key size: 2048, 3072 or 4096", 2048),
			stringFlag("validity", "certificate lifetime: e.g. 13mo, 400d, 1y (default 13mo; OFM requires ≥ 12 months)", ""),
			boolFlag("allow-short-validity", "sandbox only: allow a lifetime under 12 months"),
			boolFlag("force", "replace an existing keyset (its keys are kept, retired)"),
			jsonFlag(),
		),
		Action: runInit,
	}
}

func runInit(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	t := now(c)
	o := keyset.CreateOptions{
		Settings:           settings(c),
		Bits:               c.Int("bits"),
		AllowShortValidity: c.Bool("allow-short-validity"),
		Force:              c.Bool("force"),
		Actor:              actorName("init"),
	}
	if o.DCID == "" {
		return usageError{fmt.Errorf("init needs --dc-id (the DC's dc_id from PayNet)")}
	}
	if v := c.String("validity"); v != "" {
		end, err := validityEnd(v, t)
		if err != nil {
			return configError{err}
		}
		o.NotAfter = end
	}
	s, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	ks, err := keyset.Create(c.Context, s, o, t)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printVersions(c.App.Writer, activeVersions(ks), t, true)
	}
	fmt.Fprintf(c.App.Writer, "Created the %s keyset of dc_id %s (client_id %s) in %s.\n\n", ks.Environment, ks.DCID, ks.ClientID, c.String("store"))
	return printVersions(c.App.Writer, activeVersions(ks), t, false)
}

func activeVersions(ks *keyset.Keyset) []keyset.Version {
	var out []keyset.Version
	for _, v := range ks.Sorted() {
		if v.State == keyset.Active {
			out = append(out, v)
		}
	}
	return out
}

var validityRE = regexp.MustCompile(`^([0-9]{1,4})(d|mo|y)$`)

// validityEnd turns "400d", "13mo", "1y" or a Go duration into a notAfter.
func validityEnd(s string, from time.Time) (time.Time, error) {
	if m := validityRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		switch m[2] {
		case "d":
			return from.AddDate(0, 0, n), nil
		case "mo":
			return from.AddDate(0, n, 0), nil
		case "y":
			return from.AddDate(n, 0, 0), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return from.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--validity %q: want a number of days, months or years (400d, 13mo, 1y) or a duration (9600h)", s)
}
