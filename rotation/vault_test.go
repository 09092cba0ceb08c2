package rotation_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/internal/vaulttest"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
	"github.com/ofmkeys/ofmkeys/vaultstore"
)

var vaultPrefixes atomic.Int64

func vaultStore(t *testing.T, addr, token, prefix string) keystore.Store {
	t.Helper()
	s, err := vaultstore.New(ctx, vaultstore.Config{Address: addr, Token: token, Prefix: prefix,
		Attempts: 2, Backoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Several engines, each with its own Vault client, reconcile the same due
// keyset at the same moment: exactly one new key per purpose.
func TestConcurrentRotatorsOnVaultMakeExactlyOneKeyEach(t *testing.T) {
	v := vaulttest.Start(t)
	for _, engines := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d engines", engines), func(t *testing.T) {
			prefix := fmt.Sprintf("rotators-%d", vaultPrefixes.Add(1))
			setup := vaultStore(t, v.Addr, v.RootToken, prefix)
			if _, err := keyset.Create(ctx, setup, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
				t.Fatal(err)
			}
			due := t0.Add(30*24*time.Hour + time.Minute)
			var wg sync.WaitGroup
			held := atomic.Int32{}
			for i := range engines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e := &rotation.Engine{Store: vaultStore(t, v.Addr, v.RootToken, prefix), DCID: settings.DCID, Policy: crashPolicy,
						Clock: &fakeClock{t: due}, Actor: fmt.Sprintf("replica-%d", i), Log: quiet}
					_, err := e.Reconcile(ctx)
					switch {
					case err == nil:
					case errors.Is(err, rotation.ErrLeaseHeld):
						held.Add(1)
					default:
						t.Errorf("replica %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			if held.Load() != int32(engines-1) {
				t.Errorf("%d engines were turned away by the lease, want %d", held.Load(), engines-1)
			}
			ks, _, err := keyset.Load(ctx, setup, settings.DCID)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pki.Purposes {
				if n := countVersions(ks, p); n != 2 {
					t.Errorf("%s: %d versions, want the old one and exactly one new", p, n)
				}
			}
			if err := rotation.CheckInvariants(ks, crashPolicy); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Without the lease, the compare-and-set write alone keeps two rotators
// from both staging: the loser reloads, sees the new key, and stops.
func TestCompareAndSetAloneKeepsOneStep(t *testing.T) {
	v := vaulttest.Start(t)
	prefix := fmt.Sprintf("cas-%d", vaultPrefixes.Add(1))
	setup := vaultStore(t, v.Addr, v.RootToken, prefix)
	if _, err := keyset.Create(ctx, setup, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(30*24*time.Hour + time.Minute)
	// Operator rotations take no lease: only the keyset's compare-and-set
	// stands between two of them.
	var wg sync.WaitGroup
	results := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &rotation.Engine{Store: vaultStore(t, v.Addr, v.RootToken, prefix), DCID: settings.DCID, Policy: crashPolicy,
				Clock: &fakeClock{t: due}, Actor: "same-replica", LeaseTTL: time.Hour, Log: quiet}
			_, err := e.Rotate(ctx, pki.Signing, rotation.RotateOptions{})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	failed := 0
	for err := range results {
		if err != nil {
			if !errors.Is(err, keystore.ErrConflict) && !errors.Is(err, rotation.ErrRotationUnderWay) && !errors.Is(err, keyset.ErrNoVersion) {
				t.Errorf("unexpected error: %v", err)
			}
			failed++
		}
	}
	ks, _, _ := keyset.Load(ctx, setup, settings.DCID)
	n := 0
	for _, ver := range ks.Versions {
		if ver.Purpose == pki.Signing && ver.State != keyset.Active {
			n++
		}
	}
	if n != 1 || failed != 1 {
		t.Fatalf("%d new signing versions and %d failed rotations, want 1 and 1", n, failed)
	}
}

// Vault going away mid-rotation: no state advances, nothing is deleted,
// and the rotation resumes when it is back.
func TestVaultUnavailableMidRotationResumes(t *testing.T) {
	v := vaulttest.Start(t)
	prefix := fmt.Sprintf("outage-%d", vaultPrefixes.Add(1))
	proxy := vaulttest.NewProxy(t, v.Addr)
	s := vaultStore(t, proxy.URL, v.RootToken, prefix)
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(30*24*time.Hour + time.Minute)
	before, beforeVersion, _ := keyset.Load(ctx, s, settings.DCID)

	// Vault answers reads but every write fails: the first write of the pass
	// (the lease) is refused, so nothing moves.
	proxy.SetFault(func(r *http.Request) vaulttest.Action {
		if r.Method == http.MethodPut || r.Method == http.MethodPost {
			return vaulttest.Status503
		}
		return vaulttest.Forward
	})
	e := &rotation.Engine{Store: s, DCID: settings.DCID, Policy: crashPolicy, Clock: &fakeClock{t: due}, Actor: "r", Log: quiet}
	if _, err := e.Reconcile(ctx); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("reconcile with Vault refusing writes = %v, want ErrUnavailable", err)
	}
	proxy.SetFault(nil)
	after, afterVersion, _ := keyset.Load(ctx, s, settings.DCID)
	if afterVersion != beforeVersion || len(after.Versions) != len(before.Versions) {
		t.Fatal("the keyset changed while Vault refused writes")
	}

	// Vault fails after the first stage's key write: the key is written,
	// the keyset is not; the next pass adopts the key.
	var writes atomic.Int32
	proxy.SetFault(func(r *http.Request) vaulttest.Action {
		if (r.Method == http.MethodPut || r.Method == http.MethodPost) && writes.Add(1) > 2 {
			return vaulttest.Status503
		}
		return vaulttest.Forward
	})
	if _, err := e.Reconcile(ctx); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("reconcile with Vault failing mid-step = %v", err)
	}
	proxy.SetFault(nil)
	res, err := e.Reconcile(ctx)
	if err != nil {
		t.Fatalf("reconcile after Vault is back: %v", err)
	}
	if len(res.Done) == 0 {
		t.Fatal("nothing resumed")
	}
	ks, _, _ := keyset.Load(ctx, s, settings.DCID)
	for _, p := range pki.Purposes {
		if n := countVersions(ks, p); n != 2 {
			t.Errorf("%s: %d versions after resuming, want 2", p, n)
		}
	}
	if err := rotation.CheckInvariants(ks, crashPolicy); err != nil {
		t.Fatal(err)
	}
}

// A lease whose holder died is taken over once it expires, not before.
func TestLeaseTakeoverAfterExpiry(t *testing.T) {
	s := newStore(t)
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, t0); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: t0}
	a := &rotation.Engine{Store: s, DCID: settings.DCID, Clock: clock, Actor: "a", LeaseTTL: time.Minute}
	b := &rotation.Engine{Store: s, DCID: settings.DCID, Clock: clock, Actor: "b", LeaseTTL: time.Minute}
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, rotation.ErrLeaseHeld) {
		t.Fatalf("b while a holds it: %v", err)
	}
	clock.Advance(61 * time.Second)
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("b after a's lease expired: %v", err)
	}
	if err := a.Acquire(ctx); !errors.Is(err, rotation.ErrLeaseHeld) {
		t.Fatalf("a after b took over: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Acquire(ctx); err != nil {
		t.Fatalf("a after b released: %v", err)
	}
}
