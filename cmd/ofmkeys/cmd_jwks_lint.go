package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/pki"
)

func jwksLintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "check a published JWKS (URL or file) as OFM peers and the FAPI conformance suite would",
		ArgsUsage: "URL|FILE",
		Description: `Rules: OFM's algorithm per use (sig: PS256, enc: RSA-OAEP-256), RSA ≥ 2048, kid present,
distinct and derived by the kid policy, use set, no private or symmetric member, x5c parses
and matches n/e, x5t#S256 matches x5c, certificates valid now (and ≥ 12 months at issue
with --production), a sig and an enc key; fetched over HTTP also Cache-Control max-age ≤ 900
and the media type. Exit 0 when it passes, 1 with findings.`,
		Flags: []cli.Flag{
			stringFlag("kid-policy", "the kid policy the kids must follow: x5t#S256, jwk-thumbprint, x5t; empty: not checked", "x5t#S256"),
			boolFlag("production", "also require 12 months of validity at issue"),
			jsonFlag(),
		},
		Action: runJWKSLint,
	}
}

// lintView is lint's JSON.
type lintView struct {
	Source   string         `json:"source"`
	OK       bool           `json:"ok"`
	Findings []jwks.Finding `json:"findings"`
}

func runJWKSLint(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{fmt.Errorf("jwks lint needs one URL or FILE")}
	}
	src := c.Args().First()
	var policy pki.KidPolicy
	if p := c.String("kid-policy"); p != "" {
		var err error
		if policy, err = pki.ParseKidPolicy(p); err != nil {
			return configError{err}
		}
	}
	body, hdr, err := jwks.Fetch(c.Context, src, nil)
	if err != nil {
		return err
	}
	findings := jwks.Lint(body, jwks.LintOptions{RequireSigAndEnc: true, KidPolicy: policy, Now: now(c), MinValidity: c.Bool("production"), Header: hdr})
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, lintView{Source: src, OK: len(findings) == 0, Findings: append([]jwks.Finding{}, findings...)}); err != nil {
			return err
		}
	} else if len(findings) > 0 {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tKEY\tKID\tFINDING")
		for _, f := range findings {
			key, kid := "-", "-"
			if f.Key > 0 {
				key = fmt.Sprint(f.Key)
			}
			if f.Kid != "" {
				kid = f.Kid
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Rule, key, kid, f.Message)
		}
		tw.Flush()
	}
	if len(findings) > 0 {
		return fmt.Errorf("%s: %d finding(s)", src, len(findings))
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "%s passes (checked %s)\n", src, now(c).Format(time.RFC3339))
	}
	return nil
}
