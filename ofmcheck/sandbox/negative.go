package sandbox

import (
	"context"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// NegativeCase is a misbehaviour and how the DC side must refuse it.
type NegativeCase struct {
	// Switch is the misbehaviour's name: a Switch, or "tls:" and a
	// TLSFault.
	Switch Switch `json:"switch"`
	// Step is where the check must stop, Error what its error must say;
	// an empty Step means the DC must cope and the check pass.
	Step  string `json:"step"`
	Error string `json:"error"`
	// timeout, when set, is the check's per-call timeout for the case.
	timeout time.Duration
}

// NegativeCases are RELIABILITY.md §7.1's inbound cases and §7.4's TLS
// ones the sandbox can produce, with the refusal each must get.
var NegativeCases = []NegativeCase{
	{BadSignature, "data-call", "outer signature", 0},
	{AlgNone, "data-call", "outer signature", 0},
	{RS256Answer, "data-call", "outer signature", 0},
	{UnknownKid, "data-call", "not a signing key", 0},
	{ExpiredAnswer, "data-call", "expired", 0},
	{TamperedJWE, "data-call", "cannot decrypt", 0},
	{StaleEncryption, "data-call", "cannot decrypt", 0},
	{InnerBadSignature, "data-call", "inner signature", 0},
	{OtherCertificate, "data-call", "bound to another certificate", 0},
	{Oversized, "data-call", "larger than", 0},
	{SlowBody, "data-call", "Client.Timeout", time.Second},
	{RotatedKey, "", "", 0},
	// RELIABILITY.md §7.4: the platform's TLS, refused at the first
	// connection.
	{"tls:" + Switch(TLSUnknownCA), "discovery", "certificate signed by unknown authority", 0},
	{"tls:" + Switch(TLSWrongName), "discovery", "doesn't contain any IP SANs", 0},
	{"tls:" + Switch(TLSExpired), "discovery", "certificate has expired", 0},
	{"tls:" + Switch(TLSSHA1), "discovery", "SHA1", 0},
	{"tls:" + Switch(TLSNoIntermediate), "discovery", "certificate signed by unknown authority", 0},
	{"tls:" + Switch(TLSCBCOnly), "discovery", "handshake failure", 0},
}

// NegativeResult is one case's outcome: Refused when the check stopped at
// the expected step with the expected error.
type NegativeResult struct {
	NegativeCase
	Refused bool   `json:"refused"`
	Got     string `json:"got"`
}

// RunNegative runs the check once per case with the sandbox misbehaving.
func RunNegative(ctx context.Context, s *Server, env ofmcheck.Env, cred ofmcheck.Credentials) []NegativeResult {
	defer s.Misbehave(Behave)
	defer s.SetTLSFault(TLSGood)
	var out []NegativeResult
	for _, nc := range NegativeCases {
		if fault, ok := strings.CutPrefix(string(nc.Switch), "tls:"); ok {
			s.Misbehave(Behave)
			if err := s.SetTLSFault(TLSFault(fault)); err != nil {
				out = append(out, NegativeResult{NegativeCase: nc, Got: err.Error()})
				continue
			}
		} else {
			s.SetTLSFault(TLSGood)
			s.Misbehave(nc.Switch)
		}
		e := env
		if nc.timeout != 0 {
			e.Timeout = nc.timeout
		}
		rep := ofmcheck.Check(ctx, e, cred, nil)
		last := rep.Steps[len(rep.Steps)-1]
		res := NegativeResult{NegativeCase: nc, Got: last.Name + ": " + last.Error}
		if nc.Step == "" {
			if res.Refused = rep.OK; rep.OK {
				res.Got = "accepted: " + rep.Steps[5].Detail
			}
		} else {
			res.Refused = !rep.OK && last.Name == nc.Step && strings.Contains(last.Error, nc.Error)
		}
		out = append(out, res)
	}
	return out
}
