package monitor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/pki"
)

func day(n float64) time.Duration { return time.Duration(n * float64(24*time.Hour)) }

func key(p pki.Purpose, kid string, st keyset.State, left time.Duration) monitor.Cert {
	return monitor.Cert{Source: monitor.SourceKeyset, Target: "dc", Purpose: p, Kid: kid, State: st, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.Add(left)}
}

// healthy are facts on which nothing fires.
func healthy() monitor.Facts {
	var f monitor.Facts
	f.Now = now
	f.Certs = []monitor.Cert{key(pki.Transport, "t1", keyset.Active, day(200)), key(pki.Signing, "s1", keyset.Active, day(200)),
		key(pki.Encryption, "e1", keyset.Active, day(200)), key(pki.Encryption, "e0", keyset.Retiring, day(3))}
	f.Rotation.Enabled, f.Rotation.LastSuccess = true, now.Add(-time.Minute)
	f.Proof.Configured, f.Proof.Ran, f.Proof.OK, f.Proof.At, f.Proof.LastSuccess = true, true, true, now.Add(-time.Hour), now.Add(-time.Hour)
	f.Store.OK, f.Store.LastSuccess = true, now
	f.Lint.Checked, f.Lint.OK = true, true
	return f
}

func TestTheRulesFireAtTheirThresholds(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *monitor.Facts)
		want   string // "rule severity[,…]", or "" for nothing
	}{
		{"healthy (a retiring key near its end is expected)", func(f *monitor.Facts) {}, ""},
		{"active key 28 days and a minute left", func(f *monitor.Facts) { f.Certs[1].NotAfter = now.Add(day(28) + time.Minute) }, ""},
		{"active key 28 days left", func(f *monitor.Facts) { f.Certs[1].NotAfter = now.Add(day(28)) }, "CertificateExpiringSoon warning"},
		{"active key 14 days left", func(f *monitor.Facts) { f.Certs[1].NotAfter = now.Add(day(14)) }, "CertificateExpiringSoon critical"},
		{"active key expired", func(f *monitor.Facts) { f.Certs[1].NotAfter = now.Add(-time.Second) }, "CertificateExpired critical"},
		{"watched file expiring", func(f *monitor.Facts) {
			f.Certs = append(f.Certs, monitor.Cert{Source: monitor.SourceFile, Target: "/etc/ssl/x.pem", Subject: "CN=x", NotAfter: now.Add(day(20))})
		}, "CertificateExpiringSoon warning"},
		{"transport awaiting registration, the active one 20 days from expiry", func(f *monitor.Facts) {
			f.Certs[0].NotAfter = now.Add(day(40)) // not yet alerting on its own
			f.Certs = append(f.Certs, key(pki.Transport, "t2", keyset.AwaitingRegistration, day(400)))
			f.Certs[0].NotAfter = now.Add(day(20))
		}, "CertificateExpiringSoon warning,TransportRegistrationPending warning"}, // the second says what to do
		{"rotation failing", func(f *monitor.Facts) { f.Rotation.LastError = "unavailable" }, "RotationFailing warning"},
		{"rotation failing while rotation is off", func(f *monitor.Facts) { f.Rotation.LastError, f.Rotation.Enabled = "unavailable", false }, ""},
		{"rotation halted", func(f *monitor.Facts) {
			f.Rotation.Halted = map[pki.Purpose]string{pki.Signing: "the proof failed at par"}
		}, "RotationHalted critical"},
		{"proof failing", func(f *monitor.Facts) { f.Proof.OK, f.Proof.FailedStep = false, "data-call" }, "ProofFailing critical"},
		{"proof stale", func(f *monitor.Facts) { f.Proof.LastSuccess = now.Add(-26 * time.Hour) }, "ProofStale warning"},
		{"store down 5 minutes", func(f *monitor.Facts) { f.Store.OK, f.Store.LastSuccess = false, now.Add(-5*time.Minute) }, ""},
		{"store down 11 minutes", func(f *monitor.Facts) { f.Store.OK, f.Store.LastSuccess = false, now.Add(-11*time.Minute) }, "StoreUnreachable critical"},
		{"JWKS lint failing", func(f *monitor.Facts) { f.Lint.OK, f.Lint.Findings = false, 2 }, "JWKSLintFailing critical"},
		{"a probe failing", func(f *monitor.Facts) {
			f.Probes = []monitor.ProbeResult{{Kind: monitor.SourceTLS, Target: "ofp:443", Problem: "untrusted"}}
		}, "ProbeFailing warning"},
		{"an unreadable watched file", func(f *monitor.Facts) {
			f.FileProblems = []monitor.FileProblem{{Path: "/x", Error: "/x: not a PEM file"}}
		}, "WatchedFileUnreadable warning"},
	}
	for _, tc := range cases {
		f := healthy()
		tc.change(&f)
		alerts := monitor.Rules{}.Evaluate(f)
		var got []string
		for _, a := range alerts {
			got = append(got, a.Rule+" "+string(a.Severity))
		}
		switch {
		case tc.want == "" && len(got) != 0:
			t.Errorf("%s: fired %v", tc.name, got)
		case tc.want != "" && strings.Join(got, ",") != tc.want:
			t.Errorf("%s: fired %v, want %s", tc.name, got, tc.want)
		}
		for _, a := range alerts {
			if a.Summary == "" || a.Key == "" {
				t.Errorf("%s: alert without a summary or key: %+v", tc.name, a)
			}
		}
	}
}

func TestAlertsAreOrderedAndLevelled(t *testing.T) {
	f := healthy()
	f.Certs[1].NotAfter = now.Add(day(20))
	f.Proof.OK, f.Proof.FailedStep = false, "par"
	alerts := monitor.Rules{Warning: day(30), Critical: day(10)}.Evaluate(f)
	if len(alerts) != 2 || alerts[0].Severity != monitor.Critical || monitor.Level(alerts) != "critical" || monitor.Level(alerts[1:]) != "warning" || monitor.Level(nil) != "ok" {
		t.Fatalf("alerts %+v", alerts)
	}
	if !strings.Contains(alerts[1].Summary, "the signing key s1 expires in 20 days") {
		t.Fatalf("summary %q", alerts[1].Summary)
	}
	if err := (monitor.Rules{Warning: day(10), Critical: day(14)}).Check(); err == nil {
		t.Fatal("a critical threshold longer than the warning one was accepted")
	}
}
