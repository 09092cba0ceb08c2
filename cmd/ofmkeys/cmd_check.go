package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "prove the keys work: run the DC's OFM flow (mTLS, private_key_jwt, PAR, token, signed data calls, encrypted answers, refresh, consent revocation, webhook)",
		Description: `--sandbox starts a local OFP in-process, registers the keyset's client on the fly
(with a webhook receiver on loopback) and runs the whole flow against it over mutual TLS.
--env FILE runs it against the environment the file describes: PayNet's sandbox, or an
ofmkeys sandbox started on its own (see examples/). Each step reports pass/fail, its time,
the key it used and the x-fapi-interaction-id. Exit 0 when every step passes, 1 otherwise.`,
		Flags: []cli.Flag{
			boolFlag("sandbox", "run against a local sandbox OFP started in-process"),
			stringFlag("env", "run against the OFM environment this YAML file describes", ""),
			boolFlag("negative", "also make the sandbox misbehave in every known way; pass only if each answer is refused with the right error (with --sandbox)"),
			stringFlag("profile", "x-signature profile with --sandbox: classic or detached", "classic"),
			stringFlag("dp-id", "the data provider the data calls go to, with --sandbox", "DP9876543210"),
			stringFlag("junit", "also write a JUnit XML report to this file", ""),
			jsonFlag(),
		},
		Action: runCheck,
	}
}

const sandboxRedirect = "https://dc.invalid/callback"

func runCheck(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	envFile := c.String("env")
	switch {
	case c.Bool("sandbox") == (envFile != ""):
		return usageError{errors.New("check needs either --sandbox (a local OFP in-process) or --env FILE (an environment such as PayNet's sandbox; see examples/)")}
	case c.Bool("negative") && !c.Bool("sandbox"):
		return usageError{errors.New("--negative makes the local sandbox misbehave: use it with --sandbox")}
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
		if err != nil {
			return err
		}
		var env ofmcheck.Env
		var sb *sandbox.Server
		var where string
		if envFile != "" {
			e, err := readEnvironment(envFile, ks)
			if err != nil {
				return configError{err}
			}
			var stop func()
			if env, stop, err = e.env(c); err != nil {
				return configError{err}
			}
			defer stop()
			where = e.Issuer
		} else {
			profile := ofmcheck.XSigProfile(c.String("profile"))
			if profile != ofmcheck.XSigClassic && profile != ofmcheck.XSigDetached {
				return configError{fmt.Errorf("--profile %q: want classic or detached", profile)}
			}
			var stop func()
			if sb, env, stop, err = localSandbox(ks, profile, c.String("dp-id")); err != nil {
				return err
			}
			defer stop()
			where = "the local sandbox at " + env.Issuer
		}
		rep := ofmcheck.Check(ctx, env, cred, nil)
		var negative []sandbox.NegativeResult
		if c.Bool("negative") && rep.OK {
			env.AwaitEvent = nil // each case stops before the revocation
			negative = sandbox.RunNegative(ctx, sb, env, cred)
		}
		if f := c.String("junit"); f != "" {
			if err := writeJUnit(f, rep); err != nil {
				return err
			}
		}
		if c.Bool("json") {
			out := any(rep)
			if c.Bool("negative") {
				out = struct {
					ofmcheck.Report
					Negative []sandbox.NegativeResult `json:"negative"`
				}{rep, negative}
			}
			if err := writeJSON(c.App.Writer, out); err != nil {
				return err
			}
		} else {
			printReport(c, rep, where, negative)
		}
		if !rep.OK {
			return fmt.Errorf("the check failed at %s", rep.Steps[len(rep.Steps)-1].Name)
		}
		for _, n := range negative {
			if !n.Refused {
				return fmt.Errorf("the misbehaviour %s was not refused as expected", n.Switch)
			}
		}
		return nil
	})
}

// localSandbox starts a sandbox OFP on loopback with the keyset's client
// registered, and a webhook receiver for its consent events.
func localSandbox(ks *keyset.Keyset, profile ofmcheck.XSigProfile, dpID string) (*sandbox.Server, ofmcheck.Env, func(), error) {
	sb, err := sandbox.New(nil)
	if err != nil {
		return nil, ofmcheck.Env{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, ofmcheck.Env{}, nil, err
	}
	srv, issuer := sb.Serve(ln)
	rc := &ofmcheck.Receiver{DCID: ks.DCID}
	webhook, stopWebhook, err := sb.LocalReceiver(rc)
	if err != nil {
		srv.Close()
		return nil, ofmcheck.Env{}, nil, err
	}
	stop := func() { srv.Close(); sb.Close(); stopWebhook() }
	sb.Register(sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, RedirectURIs: []string{sandboxRedirect}, Profile: profile,
		Transport: []string{ks.Active(pki.Transport).Kid}, WebhookURL: webhook,
		JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
	env := ofmcheck.Env{Issuer: issuer, Roots: sb.CAPool(), ClientID: ks.ClientID, DCID: ks.DCID, DPID: dpID, RedirectURI: sandboxRedirect, Profile: profile,
		AwaitEvent: rc.Await}
	return sb, env, stop, nil
}

// printReport prints a check as tables.
func printReport(c *cli.Context, rep ofmcheck.Report, where string, negative []sandbox.NegativeResult) {
	w := newTable(c)
	fmt.Fprintln(w, "STEP\tRESULT\tTIME\tKEY\tINTERACTION ID\tDETAIL")
	for _, st := range rep.Steps {
		result, detail := "pass", st.Detail
		switch {
		case !st.OK:
			result, detail = "FAIL", st.Error
		case st.Skipped:
			result = "skip"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, result, st.Duration.Round(100*time.Microsecond), dash(st.Kid), dash(st.InteractionID), detail)
	}
	w.Flush()
	fmt.Fprintf(c.App.Writer, "\n%d steps in %s against %s\n", len(rep.Steps), rep.Duration.Round(time.Millisecond), where)
	if len(negative) == 0 {
		return
	}
	fmt.Fprintln(c.App.Writer)
	w = newTable(c)
	fmt.Fprintln(w, "MISBEHAVIOUR\tRESULT\tREFUSED WITH")
	for _, n := range negative {
		result := "refused"
		switch {
		case !n.Refused:
			result = "NOT HANDLED AS EXPECTED"
		case n.Step == "":
			result = "handled"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", n.Switch, result, n.Got)
	}
	w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeJUnit writes the report as one JUnit test suite, for CI systems.
func writeJUnit(path string, rep ofmcheck.Report) error {
	type failure struct {
		Message string `xml:"message,attr"`
	}
	type testcase struct {
		Name    string    `xml:"name,attr"`
		Class   string    `xml:"classname,attr"`
		Time    float64   `xml:"time,attr"`
		Failure *failure  `xml:"failure,omitempty"`
		Skipped *struct{} `xml:"skipped,omitempty"`
	}
	type suite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Time     float64    `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	s := suite{Name: "ofmkeys check", Tests: len(rep.Steps), Time: rep.Duration.Seconds()}
	for _, st := range rep.Steps {
		tc := testcase{Name: st.Name, Class: "ofmkeys.check", Time: st.Duration.Seconds()}
		if !st.OK {
			tc.Failure = &failure{Message: st.Error}
			s.Failures++
		}
		if st.Skipped {
			tc.Skipped = &struct{}{}
		}
		s.Cases = append(s.Cases, tc)
	}
	out, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(path, append([]byte(xml.Header), append(out, '\n')...))
}
