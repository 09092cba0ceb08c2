package daemon_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestTheDaemonRotatesOnScheduleAndServesEachStep(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	s := newFileStore(t)
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	pol := rotation.Policy{RenewBefore: 30 * 24 * time.Hour, Validity: 60 * 24 * time.Hour, AllowShortValidity: true}
	r := start(t, s, daemon.Config{Rotation: daemon.Rotation{Enabled: true, Policy: pol, Interval: 20 * time.Millisecond, Actor: "replica-a"}}, daemon.WithClock(clk))
	r.wait(t, "snapshot", isSnapshot)

	// Not due yet: the scheduler runs and does nothing.
	_, body := fetch(t, nil, r.base+daemon.PathMetrics)
	if strings.Contains(string(body), "ofmkeys_rotation_steps_total{") {
		t.Fatal("rotated before anything was due")
	}

	// Due: stage and publish, served at once.
	due := t0.Add(30*24*time.Hour + time.Minute)
	clk.Set(due)
	var newSig string
	r.until(t, "the new signing key published and served", func() bool {
		ks, _, _ := keyset.Load(ctx, s, settings.DCID)
		for _, v := range ks.Versions {
			if v.Purpose == pki.Signing && v.State == keyset.Published {
				newSig = v.Kid
			}
		}
		cur := r.srv.Handler().Current()
		return newSig != "" && cur != nil && strings.Contains(string(cur.Body), newSig)
	})

	// After the propagation window the new key becomes active.
	clk.Set(due.Add(31 * time.Minute))
	r.until(t, "the new signing key active and counted", func() bool {
		ks, _, _ := keyset.Load(ctx, s, settings.DCID)
		_, body := fetch(t, nil, r.base+daemon.PathMetrics)
		return ks.Active(pki.Signing).Kid == newSig && strings.Contains(string(body), `ofmkeys_rotation_steps_total{action="activate",purpose="signing"} 1`)
	})
	ks, _, _ := keyset.Load(ctx, s, settings.DCID)
	if err := rotation.CheckInvariants(ks, pol); err != nil {
		t.Fatal(err)
	}
	_, body = fetch(t, nil, r.base+daemon.PathMetrics)
	for _, want := range []string{
		`ofmkeys_rotation_lease_held 1`,
		`ofmkeys_rotation_next_transition_timestamp_seconds{purpose="signing"}`,
		`ofmkeys_rotation_last_success_timestamp_seconds`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
