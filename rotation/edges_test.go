package rotation_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

func edgeSetup(t *testing.T) (keystore.Store, *fakeClock, *rotation.Engine) {
	t.Helper()
	s := newStore(t)
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	return s, clock, &rotation.Engine{Store: s, DCID: settings.DCID, Policy: crashPolicy, Clock: clock, Actor: "edge", Log: quiet}
}

func reconcileAt(t *testing.T, e *rotation.Engine, clock *fakeClock, at time.Time) rotation.Result {
	t.Helper()
	clock.t = at
	res, err := e.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func activeSince(t *testing.T, s keystore.Store, p pki.Purpose) (*keyset.Version, *keyset.Keyset) {
	t.Helper()
	ks, _, err := keyset.Load(ctx, s, settings.DCID)
	if err != nil {
		t.Fatal(err)
	}
	return ks.Active(p), ks
}

// The clock jumps: back after publication (no early activation), then
// forward by hours (the windows are measured on stored timestamps).
func TestClockJumpsNeverShortenAWindow(t *testing.T) {
	s, clock, e := edgeSetup(t)
	due := t0.Add(30*24*time.Hour + time.Minute)
	reconcileAt(t, e, clock, due) // stage + publish
	old, _ := activeSince(t, s, pki.Signing)
	reconcileAt(t, e, clock, due.Add(-2*time.Hour)) // backwards
	reconcileAt(t, e, clock, due.Add(10*time.Minute))
	if v, _ := activeSince(t, s, pki.Signing); v.Kid != old.Kid {
		t.Fatal("the new signing key was activated inside its propagation window after a clock jump")
	}
	reconcileAt(t, e, clock, due.Add(5*time.Hour)) // forward: activation and retirement are both due
	v, ks := activeSince(t, s, pki.Signing)
	if v.Kid == old.Kid {
		t.Fatal("no activation after the window")
	}
	if err := rotation.CheckInvariants(ks, crashPolicy); err != nil {
		t.Fatal(err)
	}
}

// Consumers that cache the JWKS longer than assumed: the propagation
// window is a setting, and signing waits for it.
func TestPropagationFollowsTheConfiguredCacheTime(t *testing.T) {
	s, clock, e := edgeSetup(t)
	e.Policy.Propagation = 2 * time.Hour
	due := t0.Add(30*24*time.Hour + time.Minute)
	reconcileAt(t, e, clock, due)
	old, _ := activeSince(t, s, pki.Signing)
	reconcileAt(t, e, clock, due.Add(time.Hour+59*time.Minute))
	if v, _ := activeSince(t, s, pki.Signing); v.Kid != old.Kid {
		t.Fatal("activated before the 2 h propagation window")
	}
	reconcileAt(t, e, clock, due.Add(2*time.Hour+time.Minute))
	if v, _ := activeSince(t, s, pki.Signing); v.Kid == old.Kid {
		t.Fatal("not activated after the 2 h window")
	}
}

// A daemon down past expiry: the expired key protects nobody, so the new
// one is activated at once.
func TestExpiredAtStartRotatesAtOnce(t *testing.T) {
	s, clock, e := edgeSetup(t)
	res := reconcileAt(t, e, clock, t0.Add(61*24*time.Hour))
	v, ks := activeSince(t, s, pki.Signing)
	if !v.NotAfter.After(clock.t) {
		t.Fatalf("the active signing key is still the expired one after the pass (%d steps)", len(res.Done))
	}
	for _, d := range []pki.Purpose{pki.Signing, pki.Encryption} {
		if got := rotation.Decide(ks, d, clock.t, crashPolicy).Reason; got != rotation.ReasonNotDue {
			t.Errorf("%s after the emergency: %s", d, got)
		}
	}
}

// A stored key that no longer matches its certificate is replaced by a
// new key (reason key-mismatch); the broken record is kept.
func TestAKeyMismatchRotatesToANewKey(t *testing.T) {
	s, clock, e := edgeSetup(t)
	v, ks := activeSince(t, s, pki.Signing)
	p, _ := keystore.KeyPath(ks.DCID, string(pki.Signing), v.Kid)
	data, ver, _ := s.Get(ctx, p)
	var rec keyset.KeyRecord
	json.Unmarshal(data, &rec)
	other, _, _ := keyset.Load(ctx, s, settings.DCID)
	encKey, _, _ := keyset.LoadKey(ctx, s, ks.DCID, other.Active(pki.Encryption))
	rec.PrivateKey = string(pki.EncodePrivateKey(encKey))
	bad, _ := json.Marshal(rec)
	if _, err := s.Put(ctx, p, bad, ver); err != nil {
		t.Fatal(err)
	}
	res := reconcileAt(t, e, clock, t0.Add(time.Hour))
	if len(res.Done) == 0 || res.Done[0].Reason != rotation.ReasonMismatch {
		t.Fatalf("steps %v, want a key-mismatch rotation", res.Done)
	}
	if _, _, err := s.Get(ctx, p); err != nil {
		t.Fatal("the broken key record was removed")
	}
}
