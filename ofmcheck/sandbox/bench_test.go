package sandbox_test

import (
	"testing"
	"time"

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
	_, env := withReceiver(b, sb, ks, ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect})
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

// BenchmarkDataCall is the sandbox's throughput for signed, encrypted data
// calls, as whole round trips over mutual TLS on loopback: the DC signs the
// x-signature; the sandbox checks the token binding and the signature, and
// signs, encrypts and signs again a page of 25 transactions; the DC
// verifies both signatures and decrypts. Every core is busy (RunParallel).
func BenchmarkDataCall(b *testing.B) {
	d, sb := newDC(b)
	access, _, _ := d.consent()
	platform := sb.PlatformJWKS()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code, out := d.call("GET", "/v1/accounts/1234567890/transactions?page_size=25", access)
			if code != 200 {
				b.Errorf("HTTP %d %v", code, out)
				return
			}
			if _, _, err := ofmcheck.UnwrapResponse([]byte(out["body"].(string)), platform, d.cred.Decryptors, ofmcheck.ResponseRules{Audience: dcID, Now: time.Now()}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
