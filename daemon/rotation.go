package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// Rotation configures the daemon's rotation scheduler.
type Rotation struct {
	// Enabled runs the scheduler; the zero value leaves rotation to the
	// CLI (ofmkeys reconcile from cron).
	Enabled bool
	// Policy is the rotation policy (zero fields: defaults).
	Policy rotation.Policy
	// Interval is the longest wait between two passes (a pass also runs
	// when the next transition is due); zero means one minute.
	Interval time.Duration
	// Actor names this replica in the lease and the audit log; empty
	// means "serve:HOSTNAME:LISTEN", stable across restarts so a restarted
	// replica takes its own lease back at once.
	Actor string
	// Prover checks each new key after publish and activate; nil means
	// rotation.NoProof until the end-to-end proof is wired.
	Prover rotation.Prover
}

// rotationState is what the scheduler last saw, for metrics and health.
type rotationState struct {
	holder      bool
	lastRun     time.Time
	lastSuccess time.Time
	next        map[pki.Purpose]time.Time
	lastError   string
}

// rotationLoop runs the engine whenever a transition is due (and at least
// every Interval). Only the lease holder acts; the others stand by and
// take over when its lease expires.
func (s *Server) rotationLoop(ctx context.Context) {
	cfg := s.config()
	if !cfg.Rotation.Enabled {
		return
	}
	interval := cfg.Rotation.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	actor := cfg.Rotation.Actor
	if actor == "" {
		host, _ := os.Hostname()
		actor = fmt.Sprintf("serve:%s:%s", host, cfg.Listen)
	}
	engine := &rotation.Engine{Store: s.store, Policy: cfg.Rotation.Policy, Clock: s.clock, Actor: actor, Prover: cfg.Rotation.Prover, Log: s.log}
	if s.proves() && engine.Prover == nil {
		// Every step is proven. Against the local sandbox a new transport
		// certificate is also switched once a handshake with it passes
		// (the sandbox registers it); PayNet's waits for ofmkeys confirm.
		engine.Prover, engine.AutoConfirm = envProver{s}, s.ofp != nil
	}
	defer func() {
		if engine.DCID != "" {
			release, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			engine.Release(release)
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0 // consecutive failed passes: retries back off
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := interval
		s.safely("rotation", func() {
			s.st.mu.Lock()
			engine.DCID = s.st.dcID
			s.st.mu.Unlock()
			if engine.DCID == "" {
				wait = time.Second // the store loop has not found the keyset yet
				return
			}
			engine.Policy = s.config().Rotation.Policy // a reload may have changed it
			next, failed := s.rotationPass(ctx, engine)
			if failed {
				failures++
				wait = engine.Policy.WithDefaults().Backoff(failures)
				s.log.Warn("rotation will be retried", "in", wait, "consecutive_failures", failures)
				return
			}
			failures = 0
			if !next.IsZero() {
				if d := next.Sub(s.clock.Now()); d < wait {
					wait = max(d, time.Second)
				}
			}
		})
		timer.Reset(wait)
	}
}

// rotationPass runs one engine pass and records what happened; failed
// says whether anything failed (the lease held by another is no failure).
func (s *Server) rotationPass(ctx context.Context, engine *rotation.Engine) (next time.Time, failed bool) {
	now := s.clock.Now()
	res, err := engine.Reconcile(ctx)
	s.st.mu.Lock()
	rs := &s.st.rotation
	rs.lastRun = now
	rs.holder = !errors.Is(err, rotation.ErrLeaseHeld) && !errors.Is(err, rotation.ErrLeaseLost)
	if err == nil && len(res.Failed) == 0 {
		rs.lastSuccess, rs.lastError = now, ""
	} else if err != nil && !errors.Is(err, rotation.ErrLeaseHeld) {
		rs.lastError = errorKind(err)
	}
	s.st.mu.Unlock()
	for _, st := range res.Done {
		s.metrics.rotationSteps.WithLabelValues(string(st.Purpose), string(st.Action)).Inc()
	}
	for p, msg := range res.Failed {
		s.metrics.rotationFailures.WithLabelValues(string(p)).Inc()
		s.observe(Event{Kind: EventRotation, Err: fmt.Errorf("%s: %s", p, msg)})
	}
	switch {
	case errors.Is(err, rotation.ErrLeaseHeld):
		// Another replica rotates; this one serves and stands by.
	case err != nil:
		s.metrics.rotationFailures.WithLabelValues("all").Inc()
		s.log.Error("rotation pass failed; the JWKS keeps serving", "err", err)
		s.observe(Event{Kind: EventRotation, Err: err})
	}
	if len(res.Done) > 0 {
		poke(s.reload) // serve the new state at once
		poke(s.proofNow)
		s.observe(Event{Kind: EventRotation, Steps: len(res.Done)})
	}
	if res.NextByPurpose != nil {
		s.st.mu.Lock()
		s.st.rotation.next = res.NextByPurpose
		s.st.mu.Unlock()
	}
	failed = len(res.Failed) > 0 || (err != nil && !errors.Is(err, rotation.ErrLeaseHeld))
	return res.Next, failed
}
