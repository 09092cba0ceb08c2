package sandbox_test

import (
	"testing"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/pki"
)

// BenchmarkCheck runs the whole proof against the sandbox over mutual TLS
// on loopback, reporting each step's mean time as its own metric.
func BenchmarkCheck(b *testing.B) {
	sb, issuer, roots, s, ks := setup(b)
	register(sb, ks, ks.Active(pki.Transport).Kid, ofmcheck.XSigClassic)
	cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
	if err != nil {
		b.Fatal(err)
	}
	env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}
	steps := map[string]float64{}
	n := 0
	for b.Loop() {
		rep := ofmcheck.Check(ctx, env, cred, nil)
		if !rep.OK {
			b.Fatalf("check failed: %+v", rep.Steps)
		}
		for _, st := range rep.Steps {
			steps[st.Name] += float64(st.Duration.Microseconds()) / 1000
		}
		n++
	}
	for name, ms := range steps {
		b.ReportMetric(ms/float64(n), name+"-ms")
	}
}
