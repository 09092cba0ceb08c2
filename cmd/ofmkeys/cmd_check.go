package main

import (
	"context"
	"crypto/x509"
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
		Usage: "prove the keys work: run the DC's OFM flow (mTLS, private_key_jwt, PAR, token, signed data call, encrypted answer, refresh)",
		Description: `--sandbox starts a local OFP in-process, registers the keyset's client on the fly and runs
the whole flow against it over mutual TLS on loopback. Each step reports pass/fail, its
time, the key it used and the x-fapi-interaction-id. Exit 0 when every step passes, 1 otherwise.`,
		Flags: []cli.Flag{
			boolFlag("sandbox", "run against a local sandbox OFP started in-process"),
			boolFlag("negative", "also make the sandbox misbehave in every known way; pass only if each answer is refused with the right error"),
			stringFlag("profile", "x-signature profile: classic or detached", "classic"),
			stringFlag("dp-id", "the data provider the data call goes to", "DP9876543210"),
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
	if !c.Bool("sandbox") {
		return usageError{errors.New("check needs --sandbox for now: checks against PayNet's sandbox from a config file come next")}
	}
	profile := ofmcheck.XSigProfile(c.String("profile"))
	if profile != ofmcheck.XSigClassic && profile != ofmcheck.XSigDetached {
		return configError{fmt.Errorf("--profile %q: want classic or detached", profile)}
	}
	return withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
		if err != nil {
			return err
		}
		sb, err := sandbox.New(nil)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv, issuer := sb.Serve(ln)
		defer srv.Close()
		sb.Register(sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, RedirectURIs: []string{sandboxRedirect}, Profile: profile,
			Transport: []string{ks.Active(pki.Transport).Kid},
			JWKS:      func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
		roots := x509.NewCertPool()
		roots.AddCert(sb.CA())
		env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: ks.ClientID, DCID: ks.DCID, DPID: c.String("dp-id"), RedirectURI: sandboxRedirect, Profile: profile}
		rep := ofmcheck.Check(ctx, env, cred, nil)
		var negative []sandbox.NegativeResult
		if c.Bool("negative") && rep.OK {
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
			w := newTable(c)
			fmt.Fprintln(w, "STEP\tRESULT\tTIME\tKEY\tINTERACTION ID\tDETAIL")
			for _, st := range rep.Steps {
				result, detail := "pass", st.Detail
				if !st.OK {
					result, detail = "FAIL", st.Error
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, result, st.Duration.Round(100*time.Microsecond), dash(st.Kid), dash(st.InteractionID), detail)
			}
			w.Flush()
			fmt.Fprintf(c.App.Writer, "\n%d steps in %s against the local sandbox at %s\n", len(rep.Steps), rep.Duration.Round(time.Millisecond), issuer)
			if len(negative) > 0 {
				fmt.Fprintln(c.App.Writer)
				w := newTable(c)
				fmt.Fprintln(w, "MISBEHAVIOUR\tRESULT\tREFUSED WITH")
				for _, n := range negative {
					result := "refused"
					if !n.Refused {
						result = "NOT REFUSED AS EXPECTED (" + n.Step + ": " + n.Error + ")"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\n", n.Switch, result, n.Got)
				}
				w.Flush()
			}
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
		Name    string   `xml:"name,attr"`
		Class   string   `xml:"classname,attr"`
		Time    float64  `xml:"time,attr"`
		Failure *failure `xml:"failure,omitempty"`
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
		s.Cases = append(s.Cases, tc)
	}
	out, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(path, append([]byte(xml.Header), append(out, '\n')...))
}
