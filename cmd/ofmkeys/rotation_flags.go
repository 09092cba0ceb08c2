package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// policyFlags are the rotation policy settings shared by plan, rotate,
// reconcile and serve.
func policyFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("renew-before", "renew at the latest this long before expiry (and at 2/3 of the lifetime at the latest)", "30d"),
		stringFlag("propagation", "how long a new key is published before it is used (≥ the JWKS max-age + skew)", "30m"),
		stringFlag("signing-hold", "how long a replaced signing key stays published for verifiers", "1h"),
		stringFlag("encryption-retention", "how long a replaced encryption key still decrypts", "7d"),
		stringFlag("rotation-validity", "lifetime of the self-signed certificates rotation makes (sandbox); empty: 13 months", ""),
		boolFlag("destroy-retired", "delete retired encryption keys' private keys after their retention (default: keep, archived)"),
	}
}

// days parses a duration that may be given in days ("30d").
func days(flag, s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return time.Duration(d) * 24 * time.Hour, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, configError{fmt.Errorf("--%s %q: want a duration like 30m, 12h or 30d", flag, s)}
}

// policyFrom reads the rotation policy flags.
func policyFrom(c *cli.Context) (rotation.Policy, error) {
	return policyFromText(func(name string) string { return flagText(c, name) })
}

// policyFromText reads the rotation policy from flag values as text (also
// serve's reload path).
func policyFromText(get func(string) string) (rotation.Policy, error) {
	var pol rotation.Policy
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{
		{"renew-before", &pol.RenewBefore},
		{"propagation", &pol.Propagation},
		{"signing-hold", &pol.SigningHold},
		{"encryption-retention", &pol.EncryptionRetention},
	} {
		d, err := days(f.name, get(f.name))
		if err != nil {
			return pol, err
		}
		*f.dst = d
	}
	if v := get("rotation-validity"); v != "" {
		d, err := days("rotation-validity", v)
		if err != nil {
			return pol, err
		}
		pol.Validity = d
		pol.AllowShortValidity = d < 365*24*time.Hour
	}
	if pol.Propagation < 15*time.Minute {
		return pol, configError{fmt.Errorf("--propagation %v is shorter than the 15 minutes OFM consumers cache the JWKS", pol.Propagation)}
	}
	pol.DestroyRetired = get("destroy-retired") == "true"
	return pol.WithDefaults(), nil
}

// actorName identifies this process in the lease and the audit log.
func actorName(what string) string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%s@%s/%d", what, name, host, os.Getpid())
}

// newEngine builds the rotation engine of a CLI command; commands without
// the policy flags (confirm, rollback) use the default policy.
func newEngine(c *cli.Context, s keystore.Store, dcID, what string) (*rotation.Engine, error) {
	pol := rotation.DefaultPolicy()
	if c.Command.HasName(what) && hasFlag(c.Command, "propagation") {
		var err error
		if pol, err = policyFrom(c); err != nil {
			return nil, err
		}
	}
	// The CLI's output is its tables; the engine's progress logs are for
	// the daemon. Warnings still reach standard error.
	logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &rotation.Engine{Store: s, DCID: dcID, Policy: pol, Actor: actorName(what), Clock: fixedClock{now(c)}, Log: logger}, nil
}

func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		if f.Names()[0] == name {
			return true
		}
	}
	return false
}

// fixedClock is the CLI's clock: --now when given, the time of the command
// otherwise (one command is one moment).
type fixedClock struct{ t time.Time }

func (f fixedClock) Now() time.Time { return f.t }

// printSteps prints steps as a table.
func printSteps(c *cli.Context, steps []rotation.Step) {
	if len(steps) == 0 {
		return
	}
	w := newTable(c)
	fmt.Fprintln(w, "WHEN\tPURPOSE\tACTION\tKID\tREASON\tDETAIL")
	for _, s := range steps {
		when := "operator"
		if !s.At.IsZero() {
			when = s.At.Format("2006-01-02 15:04Z")
		}
		detail := s.Message
		if s.Problem != "" {
			detail = "PROBLEM: " + s.Problem
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", when, s.Purpose, s.Action, s.Kid, s.Reason, detail)
	}
	w.Flush()
}

// withEngine runs fn with the selected keyset and a rotation engine, and
// gives the rotation lease back when it is done.
func withEngine(c *cli.Context, what string, fn func(ctx context.Context, e *rotation.Engine) error) error {
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		e, err := newEngine(c, s, ks.DCID, what)
		if err != nil {
			return err
		}
		defer e.Release(context.WithoutCancel(ctx))
		return fn(ctx, e)
	})
}
