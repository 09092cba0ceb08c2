package main

import (
	"fmt"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "verify a PS256 compact JWS from standard input against a JWKS; print its payload",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "jwks", Usage: "the signer's JWKS: a file or an http(s) URL", Required: true},
			stringFlag("payload", "file holding the payload of a detached JWS", ""),
			inFlag(),
			jsonFlag(),
		},
		Action: runVerify,
	}
}

// payloadView shows a payload as text when it is UTF-8, base64 otherwise.
type payloadView struct {
	Kid           string `json:"kid"`
	Alg           string `json:"alg,omitempty"`
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 []byte `json:"payload_base64,omitempty"`
}

func newPayloadView(kid, alg string, payload []byte) payloadView {
	v := payloadView{Kid: kid, Alg: alg}
	if utf8.Valid(payload) {
		v.Payload = string(payload)
	} else {
		v.PayloadBase64 = payload
	}
	return v
}

func runVerify(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	set, err := loadJWKS(c)
	if err != nil {
		return err
	}
	in, err := readInput(c)
	if err != nil {
		return err
	}
	var detached []byte
	if c.String("payload") != "" {
		if detached, err = readFileFlagLimit(c, "payload", maxInput); err != nil {
			return err
		}
	}
	got, err := jwks.Verify(string(in), detached, set)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, newPayloadView(got.Kid, got.Alg, got.Payload))
	}
	fmt.Fprintf(c.App.ErrWriter, "ofmkeys: verified: %s signature by kid %s\n", got.Alg, got.Kid)
	_, err = c.App.Writer.Write(got.Payload)
	return err
}

// loadJWKS reads the JWKS the --jwks flag names (a file or a URL).
func loadJWKS(c *cli.Context) (*jose.JSONWebKeySet, error) {
	doc, err := jwks.Load(c.Context, c.String("jwks"))
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	set, err := jwks.ParseSet(doc)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	return set, nil
}
