package daemon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/keyset"
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
