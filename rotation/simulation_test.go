package rotation_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

var settings = keyset.Settings{DCID: "0123456789abcdef01234567", ClientID: "client-1", Organisation: "Example"}

// fakeClock is the simulation's time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t testing.TB) keystore.Store {
	t.Helper()
	s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// simulate runs the engine for three years of fake time, an operator
// confirming transport registrations a day after they are asked for, and
// checks every invariant at every tick.
func simulate(t *testing.T, validity time.Duration, pol rotation.Policy, tick time.Duration) (rotations int) {
	s := newStore(t)
	clock := &fakeClock{t: t0}
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(validity), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	pol.Validity = validity
	pol.AllowShortValidity = true
	e := &rotation.Engine{Store: s, DCID: settings.DCID, Policy: pol, Clock: clock, Actor: "sim", LeaseTTL: 7 * 24 * time.Hour, Log: quiet}
	pol = pol.WithDefaults()

	everPublished := map[string]bool{}
	preferredUntil := map[string]time.Time{} // encryption kid → when it stopped being preferred
	sealed := map[string]string{}            // encryption kid → a JWE made while it was preferred
	end := t0.AddDate(3, 0, 0)
	lastDay := t0
	for now := t0; now.Before(end); now = now.Add(tick) {
		clock.t = now
		if _, err := e.Reconcile(ctx); err != nil {
			t.Fatalf("%s: reconcile: %v", now, err)
		}
		ks, _, err := keyset.Load(ctx, s, settings.DCID)
		if err != nil {
			t.Fatal(err)
		}
		// The operator registers new transport certificates a day later.
		for _, v := range ks.Versions {
			if v.State == keyset.AwaitingRegistration && now.Sub(v.Since(keyset.AwaitingRegistration)) >= 24*time.Hour {
				if err := e.Confirm(ctx, pki.Transport, v.Kid); err != nil {
					t.Fatalf("%s: confirm: %v", now, err)
				}
				rotations++
				if ks, _, err = keyset.Load(ctx, s, settings.DCID); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		if err := rotation.CheckInvariants(ks, pol); err != nil {
			t.Fatalf("%s: %v", now, err)
		}
		for _, p := range pki.Purposes {
			v := ks.Active(p)
			if v == nil {
				t.Fatalf("%s: no active %s key", now, p)
			}
			if !now.Before(v.NotAfter) {
				t.Fatalf("%s: the active %s key %s expired at %s", now, p, v.Kid, v.NotAfter)
			}
		}
		set, err := jwks.Build(ks, jwks.Options{})
		if err != nil {
			t.Fatalf("%s: JWKS: %v", now, err)
		}
		sig := ks.Active(pki.Signing)
		if len(set.Key(sig.Kid)) != 1 {
			t.Fatalf("%s: the active signing key is not in the JWKS", now)
		}
		if pub := sig.Since(keyset.Published); !pub.IsZero() && sig.Since(keyset.Active).Before(pub.Add(pol.Propagation)) {
			t.Fatalf("%s: signing key %s signs before its propagation window", now, sig.Kid)
		}
		for _, v := range ks.Versions {
			if v.State == keyset.Published || v.State == keyset.Active {
				everPublished[string(v.Purpose)+"/"+v.Kid] = true
			}
			if v.Purpose == pki.Encryption && v.State == keyset.Retiring {
				if _, ok := preferredUntil[v.Kid]; !ok {
					preferredUntil[v.Kid] = v.Since(keyset.Retiring)
				}
			}
		}
		enc := ks.Active(pki.Encryption)
		if _, ok := sealed[enc.Kid]; !ok {
			chain, _ := enc.Certificates()
			jwe, err := jwks.Encrypt(chain[0].PublicKey.(*rsaPublicKey), "", []byte("data for "+enc.Kid))
			if err != nil {
				t.Fatal(err)
			}
			sealed[enc.Kid] = jwe
			rotations++
		}
		// Once a day: every JWE to a key preferred within its retention
		// still opens, and no key ever published is missing.
		if now.Sub(lastDay) >= 24*time.Hour {
			lastDay = now
			var keys []jwks.Decryptor
			for _, v := range ks.Decryptors() {
				k, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
				if err != nil {
					t.Fatalf("%s: %v", now, err)
				}
				keys = append(keys, jwks.Decryptor{Kid: v.Kid, Key: k})
			}
			for kid, jwe := range sealed {
				stopped, replaced := preferredUntil[kid]
				if replaced && !now.Before(stopped.Add(pol.EncryptionRetention)) {
					continue
				}
				if pt, _, err := jwks.Decrypt(jwe, keys); err != nil || string(pt) != "data for "+kid {
					t.Fatalf("%s: a JWE to %s (preferred until %v) no longer opens: %v", now, kid, stopped, err)
				}
			}
			for id := range everPublished {
				p, kid := pki.Purpose(id[:len(id)-len(kidOf(id))-1]), kidOf(id)
				found := false
				for _, v := range ks.Find(kid) {
					found = found || v.Purpose == p
				}
				path, _ := keystore.KeyPath(ks.DCID, string(p), kid)
				if _, _, err := s.Get(ctx, path); err != nil || !found {
					t.Fatalf("%s: published %s key %s lost (in keyset: %v): %v", now, p, kid, found, err)
				}
			}
		}
	}
	return rotations
}

func kidOf(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '/' {
			return id[i+1:]
		}
	}
	return id
}

func TestThreeYearsOfShortLivedSandboxCertificates(t *testing.T) {
	t.Parallel()
	n := simulate(t, 60*24*time.Hour, rotation.Policy{RenewBefore: 20 * 24 * time.Hour}, 6*time.Hour)
	if n < 40 {
		t.Fatalf("only %d rotations in three years of 60-day certificates", n)
	}
	t.Logf("%d rotations", n)
}

func TestThreeYearsOfThirteenMonthCertificates(t *testing.T) {
	t.Parallel()
	n := simulate(t, 396*24*time.Hour, rotation.Policy{}, 12*time.Hour)
	if n < 6 {
		t.Fatalf("only %d rotations in three years of 13-month certificates", n)
	}
	t.Logf("%d rotations", n)
}
