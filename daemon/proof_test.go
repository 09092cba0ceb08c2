package daemon_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

func isProof(e daemon.Event) bool { return e.Kind == daemon.EventProof }

func TestWithTheSandboxTheKeysAreProvenAtStartAndAfterRotation(t *testing.T) {
	s := newFileStore(t)
	createKeyset(t, s, false)
	clk := &clock{t: time.Now()}
	r := start(t, s, daemon.Config{Sandbox: true, Rotation: daemon.Rotation{Enabled: true, Interval: 50 * time.Millisecond, Actor: "sb"}}, daemon.WithClock(clk))
	e := r.wait(t, "the first proof", isProof)
	if e.Err != nil || e.Report == nil || !e.Report.OK || len(e.Report.Steps) != 11 || e.Report.Steps[10].Skipped {
		t.Fatalf("the first proof: %v %+v", e.Err, e.Report)
	}
	if h := r.srv.Health(); h.Proof == nil || !h.Proof.OK || h.Status != "ok" {
		t.Fatalf("health after the proof: %+v", h)
	}
	_, body := fetch(t, nil, r.base+daemon.PathMetrics)
	if !strings.Contains(string(body), "ofmkeys_proof_ok 1") || !strings.Contains(string(body), `ofmkeys_proof_step_duration_seconds{step="data-call"}`) {
		t.Fatal("/metrics lacks the proof")
	}
	if !strings.Contains(string(body), `ofmkeys_webhook_events_total{result="accepted",status="revoked"} 1`) {
		t.Fatal("/metrics lacks the proof's consent event")
	}

	// A transport rotation: staged, then switched once the proof's
	// handshake with the new certificate passes (the sandbox registers it).
	ks, _, _ := keyset.Load(ctx, s, settings.DCID)
	old := ks.Active(pki.Transport).Kid
	engine := &rotation.Engine{Store: s, DCID: settings.DCID, Actor: "operator"}
	if _, err := engine.Rotate(ctx, pki.Transport, rotation.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.until(t, "the transport certificate switched by its proof", func() bool {
		ks, _, _ := keyset.Load(ctx, s, settings.DCID)
		return ks.Active(pki.Transport).Kid != old
	})
	proof := r.wait(t, "a proof with the new certificate", isProof)
	if proof.Report == nil || !proof.Report.OK {
		t.Fatalf("proof after the switch: %v", proof.Err)
	}
}

// Proving against a configured environment (here a sandbox of its own, as
// `ofmkeys sandbox` runs, fetching the daemon's jwks_uri): the proof at
// start passes; against the same platform misbehaving it fails, and that
// is a critical alert.
func TestTheKeysAreProvenAgainstAConfiguredEnvironment(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	sb, err := sandbox.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := newSandboxListener(t, sb)
	env := &ofmcheck.Env{Issuer: ln.issuer, Roots: ln.roots, ClientID: ks.ClientID, DCID: ks.DCID, DPID: "DP9876543210", RedirectURI: "https://dc.invalid/cb"}
	for i, misbehave := range []sandbox.Switch{sandbox.Behave, sandbox.AlgNone} {
		port, _ := net.Listen("tcp", "127.0.0.1:0") // the daemon's address, known before it starts
		addr := port.Addr().String()
		port.Close()
		sb.Register(sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, RedirectURIs: []string{env.RedirectURI},
			Transport: []string{ks.Active(pki.Transport).Kid}, JWKSURI: "http://" + addr + daemon.PathWellKnown})
		sb.Misbehave(misbehave)
		r := start(t, s, daemon.Config{Listen: addr, ProofEnv: env, Monitor: daemon.Monitor{Interval: 50 * time.Millisecond}})
		e := r.wait(t, "the proof", isProof)
		switch {
		case i == 0 && (e.Err != nil || len(e.Report.Steps) != 11 || !e.Report.Steps[10].Skipped):
			t.Fatalf("the proof against the environment: %v %+v", e.Err, e.Report)
		case i == 1 && (e.Err == nil || !strings.Contains(e.Err.Error(), "data-call")):
			t.Fatalf("against a misbehaving platform: %v", e.Err)
		}
		if i == 1 {
			r.until(t, "the proof alert", func() bool {
				st := r.srv.Status()
				return st != nil && len(st.Alerts) == 1 && st.Alerts[0].Rule == monitor.RuleProofFailing
			})
		}
		r.stop()
	}
	if _, err := daemon.New(s, daemon.Config{Sandbox: true, ProofEnv: env}); err == nil {
		t.Fatal("both a sandbox and a proof environment were accepted")
	}
}
