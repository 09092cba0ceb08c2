package sandbox

import (
	"context"
	"strings"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// NegativeCase is a misbehaviour and how the DC side must refuse it.
type NegativeCase struct {
	Switch Switch `json:"switch"`
	// Step is where the check must stop, Error what its error must say.
	Step  string `json:"step"`
	Error string `json:"error"`
}

// NegativeCases are RELIABILITY.md §7.1's inbound cases the sandbox can
// produce, with the refusal each must get.
var NegativeCases = []NegativeCase{
	{BadSignature, "data-call", "outer signature"},
	{AlgNone, "data-call", "outer signature"},
	{RS256Answer, "data-call", "outer signature"},
	{UnknownKid, "data-call", "not a signing key"},
	{ExpiredAnswer, "data-call", "expired"},
	{TamperedJWE, "data-call", "cannot decrypt"},
	{StaleEncryption, "data-call", "cannot decrypt"},
	{InnerBadSignature, "data-call", "inner signature"},
	{OtherCertificate, "data-call", "bound to another certificate"},
	{Oversized, "data-call", "larger than"},
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
	var out []NegativeResult
	for _, nc := range NegativeCases {
		s.Misbehave(nc.Switch)
		rep := ofmcheck.Check(ctx, env, cred, nil)
		last := rep.Steps[len(rep.Steps)-1]
		res := NegativeResult{NegativeCase: nc, Got: last.Name + ": " + last.Error}
		res.Refused = !rep.OK && last.Name == nc.Step && strings.Contains(last.Error, nc.Error)
		out = append(out, res)
	}
	return out
}
