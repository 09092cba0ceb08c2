package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/internal/vaulttest"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/vaultstore"
)

// monitorRulesStoreDownAtOnce alerts on the store at its first failure.
var monitorRulesStoreDownAtOnce = monitor.Rules{StoreDownFor: time.Nanosecond}

var prefixes atomic.Int64

func vaultStore(t *testing.T, v *vaulttest.Server, addr, prefix string) keystore.Store {
	t.Helper()
	s, err := vaultstore.New(ctx, vaultstore.Config{Address: addr, Token: v.RootToken, Prefix: prefix,
		Attempts: 2, Backoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVaultGoingAwayWhileRunningKeepsServingAndRecovers(t *testing.T) {
	v := vaulttest.Start(t)
	s := vaultStore(t, v, v.Addr, "")
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	good := r.wait(t, "snapshot", isSnapshot)

	v.Seal(t)
	r.wait(t, "store error", func(e daemon.Event) bool { return e.Kind == daemon.EventStoreError })
	resp, _ := fetch(t, nil, r.base+daemon.PathWellKnown)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != good.ETag {
		t.Fatalf("with Vault sealed: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	h := r.srv.Health()
	if h.Status != "degraded" || h.Store.OK || h.Store.ErrorKind != "unavailable" {
		t.Fatalf("health with Vault sealed: %+v", h)
	}
	_, m := fetch(t, nil, r.base+daemon.PathMetrics)
	if !strings.Contains(string(m), "ofmkeys_store_up 0") || !strings.Contains(string(m), `ofmkeys_store_errors_total{kind="unavailable"}`) {
		t.Error("metrics do not show the store outage")
	}

	v.Unseal(t)
	r.wait(t, "store recovery", func(e daemon.Event) bool { return e.Kind == daemon.EventStoreOK })
	if h := r.srv.Health(); h.Status != "ok" || !h.Store.OK {
		t.Fatalf("health after unseal: %+v", h)
	}
}

func TestVaultDownAtStartServesThePersistedSnapshot(t *testing.T) {
	v := vaulttest.Start(t)
	s := vaultStore(t, v, v.Addr, "")
	createKeyset(t, s, false)
	file := filepath.Join(t.TempDir(), "jwks-snapshot.json")

	first := start(t, s, daemon.Config{SnapshotFile: file})
	good := first.wait(t, "snapshot", isSnapshot)
	first.stop()

	// The store is unreachable at start (every request answers 503).
	proxy := vaulttest.NewProxy(t, v.Addr)
	down := vaultStore(t, v, proxy.URL, "")
	proxy.SetFault(func(*http.Request) vaulttest.Action { return vaulttest.Status503 })
	r := start(t, down, daemon.Config{SnapshotFile: file})
	e := r.wait(t, "snapshot from disk", isSnapshot)
	if e.Source != "disk" || e.ETag != good.ETag {
		t.Fatalf("served %s from %s, want the persisted %s", e.ETag, e.Source, good.ETag)
	}
	if resp, _ := fetch(t, nil, r.base+daemon.PathReady); resp.StatusCode != 200 {
		t.Fatalf("/readyz with a persisted snapshot = %d", resp.StatusCode)
	}
	if h := r.srv.Health(); h.Status != "degraded" || h.Snapshot.Source != "disk" {
		t.Fatalf("health: %+v", h)
	}
	// Vault comes back: the store's keyset replaces the disk copy.
	proxy.SetFault(nil)
	e = r.wait(t, "snapshot from the store", func(e daemon.Event) bool { return isSnapshot(e) && e.Source == "store" })
	if e.ETag != good.ETag || e.Generation != 1 {
		t.Fatalf("after recovery: %s generation %d (same keys: the generation must not move)", e.ETag, e.Generation)
	}
}

func TestACorruptedPersistedSnapshotIsRefused(t *testing.T) {
	v := vaulttest.Start(t)
	s := vaultStore(t, v, v.Addr, "")
	createKeyset(t, s, false)
	file := filepath.Join(t.TempDir(), "jwks-snapshot.json")
	os.WriteFile(file, []byte(`{"format":1,"jwks":{"keys":[{"kty":"RSA","d":"leak`), 0o600)

	proxy := vaulttest.NewProxy(t, v.Addr)
	proxy.SetFault(func(*http.Request) vaulttest.Action { return vaulttest.Status503 })
	r := start(t, vaultStore(t, v, proxy.URL, ""), daemon.Config{SnapshotFile: file})
	e := r.wait(t, "refusal", func(e daemon.Event) bool { return e.Kind == daemon.EventRejected })
	if !strings.Contains(e.Err.Error(), "corrupt") {
		t.Errorf("refused for %v", e.Err)
	}
	if resp, body := fetch(t, nil, r.base+daemon.PathWellKnown); resp.StatusCode != 503 || strings.Contains(string(body), "leak") {
		t.Fatalf("with only a corrupt snapshot: %d %s", resp.StatusCode, body)
	}
	proxy.SetFault(nil)
	if e := r.wait(t, "snapshot from the store", isSnapshot); e.Source != "store" {
		t.Fatalf("source %s", e.Source)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}

// Two daemons on one Vault serve the same JWKS, and both follow a change.
func TestReplicasOnOneVaultConverge(t *testing.T) {
	v := vaulttest.Start(t)
	prefix := fmt.Sprintf("replicas-%d", prefixes.Add(1))
	writer := vaultStore(t, v, v.Addr, prefix)
	createKeyset(t, writer, false)
	a := start(t, vaultStore(t, v, v.Addr, prefix), daemon.Config{})
	b := start(t, vaultStore(t, v, v.Addr, prefix), daemon.Config{})
	ea, eb := a.wait(t, "snapshot a", isSnapshot), b.wait(t, "snapshot b", isSnapshot)
	if ea.ETag != eb.ETag {
		t.Fatalf("replicas serve different JWKS: %s, %s", ea.ETag, eb.ETag)
	}
	createKeyset(t, writer, true)
	na := a.wait(t, "change on a", func(e daemon.Event) bool { return isSnapshot(e) && e.ETag != ea.ETag })
	nb := b.wait(t, "change on b", func(e daemon.Event) bool { return isSnapshot(e) && e.ETag != eb.ETag })
	if na.ETag != nb.ETag {
		t.Fatalf("replicas diverged: %s, %s", na.ETag, nb.ETag)
	}
	ra, _ := fetch(t, nil, a.base+daemon.PathWellKnown)
	rb, _ := fetch(t, nil, b.base+daemon.PathWellKnown)
	if ra.Header.Get("ETag") != rb.Header.Get("ETag") || ra.Header.Get("Last-Modified") != rb.Header.Get("Last-Modified") {
		t.Fatal("replicas answer with different ETag or Last-Modified")
	}
}

// examples/vault-policy.hcl is enough for the whole daemon (serving,
// rotating under its lease, proving against the sandbox, alerting) and no
// more: the same token pointed outside ofmkeys/ is refused, and that shows
// as an alert, not a crash.
func TestTheDaemonRunsWithTheExamplePolicyAndNoMore(t *testing.T) {
	v := vaulttest.Start(t)
	hcl, err := os.ReadFile("../examples/vault-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v.Policy(t, "ofmkeys-example", string(hcl))
	token := v.Token(t, "ofmkeys-example")
	createKeyset(t, vaultStore(t, v, v.Addr, ""), false) // made by an admin
	s, err := vaultstore.New(ctx, vaultstore.Config{Address: v.Addr, Token: token, Attempts: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := start(t, s, daemon.Config{Sandbox: true, Rotation: daemon.Rotation{Enabled: true, Interval: 50 * time.Millisecond, Actor: "policy"},
		Monitor: daemon.Monitor{Interval: 50 * time.Millisecond}})
	r.wait(t, "the proof", func(e daemon.Event) bool { return e.Kind == daemon.EventProof && e.Report != nil && e.Report.OK })
	r.until(t, "the rotation lease and an evaluation with every key", func() bool {
		st := r.srv.Status()
		_, m := fetch(t, nil, r.base+daemon.PathMetrics)
		return st != nil && len(st.Keys) == 3 && strings.Contains(string(m), "ofmkeys_rotation_lease_held 1")
	})
	if st := r.srv.Status(); st.Level != "ok" {
		t.Fatalf("status with the example policy: %+v", st.Alerts)
	}

	// Outside its paths: denied, reported.
	other := fmt.Sprintf("elsewhere-%d", prefixes.Add(1))
	createKeyset(t, vaultStore(t, v, v.Addr, other), false)
	denied, err := vaultstore.New(ctx, vaultstore.Config{Address: v.Addr, Token: token, Prefix: other, Attempts: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer denied.Close()
	d := start(t, denied, daemon.Config{DCID: settings.DCID, Monitor: daemon.Monitor{Interval: 50 * time.Millisecond, Rules: monitorRulesStoreDownAtOnce}})
	d.wait(t, "the denial", func(e daemon.Event) bool { return e.Kind == daemon.EventStoreError })
	if h := d.srv.Health(); h.Store.OK || h.Store.ErrorKind != "permission" {
		t.Fatalf("health outside the policy: %+v", h)
	}
	d.until(t, "the store alert", func() bool {
		st := d.srv.Status()
		return st != nil && len(st.Alerts) == 1 && st.Alerts[0].Rule == monitor.RuleStoreUnreachable && strings.Contains(st.Alerts[0].Summary, "permission")
	})
}
