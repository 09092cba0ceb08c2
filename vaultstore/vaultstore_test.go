package vaultstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/ofmkeys/ofmkeys/internal/vaulttest"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/keystore/keystoretest"
	"github.com/ofmkeys/ofmkeys/vaultstore"
)

var ctx = context.Background()

// fast retries keep fault tests short; the policy is the same.
func config(addr, token string) vaultstore.Config {
	return vaultstore.Config{Address: addr, Token: token, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 2 * time.Second}
}

func open(t *testing.T, cfg vaultstore.Config) *vaultstore.Store {
	t.Helper()
	s, err := vaultstore.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestVaultStoreContract(t *testing.T) {
	v := vaulttest.Start(t)
	var n atomic.Int64
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		cfg := config(v.Addr, v.RootToken)
		cfg.Prefix = fmt.Sprintf("contract/%d", n.Add(1))
		return open(t, cfg)
	})
}

func TestVaultStoreContractOnACasRequiredMount(t *testing.T) {
	v := vaulttest.Start(t)
	if _, err := v.Client(t, "").Logical().Write("secret/config", map[string]any{"cas_required": true}); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		cfg := config(v.Addr, v.RootToken)
		cfg.Prefix = fmt.Sprintf("cas/%d", n.Add(1))
		return open(t, cfg)
	})
}

func TestVaultStoreLayoutIsReadableInVault(t *testing.T) {
	v := vaulttest.Start(t)
	cfg := config(v.Addr, v.RootToken)
	cfg.Mount, cfg.Prefix = "secret", "team-a"
	s := open(t, cfg)
	p, _ := keystore.StatePath("dc1")
	if _, err := s.Put(ctx, p, []byte(`{"ok":true}`), 0); err != nil {
		t.Fatal(err)
	}
	sec, err := v.Client(t, "").Logical().Read("secret/data/team-a/ofmkeys/dc1/state")
	if err != nil || sec == nil {
		t.Fatalf("read through the Vault API: %v", err)
	}
	if got := sec.Data["data"].(map[string]any)["value"]; got != `{"ok":true}` {
		t.Fatalf("value = %v", got)
	}
}

func TestSealedVaultIsUnavailableThenRecovers(t *testing.T) {
	v := vaulttest.Start(t)
	s := open(t, config(v.Addr, v.RootToken))
	p, _ := keystore.StatePath("dc1")
	if _, err := s.Put(ctx, p, []byte(`1`), 0); err != nil {
		t.Fatal(err)
	}
	v.Seal(t)
	if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("Get on a sealed Vault = %v, want ErrUnavailable (sealed)", err)
	}
	if _, err := s.Put(ctx, p, []byte(`2`), 1); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Put on a sealed Vault = %v", err)
	}
	v.Unseal(t)
	if data, ver, err := s.Get(ctx, p); err != nil || string(data) != "1" || ver != 1 {
		t.Fatalf("after unseal: %q v%d %v (the refused write must not have landed)", data, ver, err)
	}
}

func TestPermissionDeniedIsNotRetried(t *testing.T) {
	v := vaulttest.Start(t)
	v.Policy(t, "team-a", `path "secret/data/team-a/*" { capabilities = ["create","read","update"] }
path "secret/metadata/team-a/*" { capabilities = ["list","read","delete"] }`)
	proxy := vaulttest.NewProxy(t, v.Addr)
	cfg := config(proxy.URL, v.Token(t, "team-a"))
	cfg.Prefix = "team-a"
	s := open(t, cfg)
	p, _ := keystore.StatePath("dc1")
	if _, err := s.Put(ctx, p, []byte(`{}`), 0); err != nil {
		t.Fatalf("write inside the policy: %v", err)
	}
	cfg.Prefix = "team-b"
	other := open(t, cfg)
	proxy.Requests()
	_, _, err := other.Get(ctx, p)
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "policy") {
		t.Fatalf("read outside the policy = %v, want ErrPermission", err)
	}
	if reqs := proxy.Requests(); len(reqs) != 1 {
		t.Fatalf("a policy denial was retried: %v", reqs)
	}
}

func TestRevokedStaticTokenIsAPermissionError(t *testing.T) {
	v := vaulttest.Start(t)
	token := v.Token(t, "root")
	s := open(t, config(v.Addr, token))
	if err := v.Client(t, "").Auth().Token().RevokeTree(token); err != nil {
		t.Fatal(err)
	}
	p, _ := keystore.StatePath("dc1")
	_, _, err := s.Get(ctx, p)
	if !errors.Is(err, keystore.ErrPermission) || !strings.Contains(err.Error(), "expired or revoked") {
		t.Fatalf("Get with a revoked token = %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Fatal("error shows the token")
	}
}

func appRole(t *testing.T, v *vaulttest.Server) (roleFile, secretFile string) {
	t.Helper()
	c := v.Client(t, "")
	v.Policy(t, "kv-all", `path "secret/*" { capabilities = ["create","read","update","delete","list"] }`)
	if _, err := c.Logical().Write("auth/approle/role/ofmkeys", map[string]any{"token_policies": "kv-all", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	role, err := c.Logical().Read("auth/approle/role/ofmkeys/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.Logical().Write("auth/approle/role/ofmkeys/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	roleFile, secretFile = filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	os.WriteFile(roleFile, []byte(role.Data["role_id"].(string)+"\n"), 0o600)
	os.WriteFile(secretFile, []byte(sec.Data["secret_id"].(string)), 0o600)
	return roleFile, secretFile
}

func TestAppRoleLogsInAgainWhenTheTokenIsRevoked(t *testing.T) {
	v := vaulttest.Start(t)
	cfg := config(v.Addr, "")
	cfg.RoleIDFile, cfg.SecretIDFile = appRole(t, v)
	proxy := vaulttest.NewProxy(t, v.Addr)
	cfg.Address = proxy.URL
	s := open(t, cfg)
	p, _ := keystore.StatePath("dc1")
	if _, err := s.Put(ctx, p, []byte(`1`), 0); err != nil {
		t.Fatal(err)
	}
	revokeAll(t, v)
	proxy.Requests()
	if data, _, err := s.Get(ctx, p); err != nil || string(data) != "1" {
		t.Fatalf("Get after revocation = %q, %v; want a new login and success", data, err)
	}
	logins := 0
	for _, r := range proxy.Requests() {
		if strings.HasSuffix(r, "/auth/approle/login") {
			logins++
		}
	}
	if logins != 1 {
		t.Fatalf("%d logins, want exactly 1", logins)
	}
}

// revokeAll revokes every token but root ones, through their accessors.
func revokeAll(t *testing.T, v *vaulttest.Server) {
	t.Helper()
	c := v.Client(t, "")
	sec, err := c.Logical().List("auth/token/accessors")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range sec.Data["keys"].([]any) {
		info, err := c.Auth().Token().LookupAccessor(a.(string))
		if err != nil {
			continue
		}
		if pols, _ := info.TokenPolicies(); slices.Contains(pols, "root") {
			continue
		}
		c.Auth().Token().RevokeAccessor(a.(string))
	}
}

func TestALostWriteResponseIsResolvedByReadingBack(t *testing.T) {
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	s := open(t, config(proxy.URL, v.RootToken))
	p, _ := keystore.StatePath("dc1")
	var dropped atomic.Bool
	proxy.SetFault(func(r *http.Request) vaulttest.Action {
		if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/data/") && dropped.CompareAndSwap(false, true) {
			return vaulttest.DropResponse
		}
		return vaulttest.Forward
	})
	ver, err := s.Put(ctx, p, []byte(`"mine"`), 0)
	if err != nil || ver != 1 {
		t.Fatalf("Put whose first response was lost = %d, %v; want 1, nil", ver, err)
	}
	if !dropped.Load() {
		t.Fatal("the proxy dropped nothing")
	}
	meta, err := v.Client(t, "").KVv2("secret").GetMetadata(ctx, "ofmkeys/dc1/state")
	if err != nil || meta.CurrentVersion != 1 {
		t.Fatalf("Vault holds version %d (%v): the write landed twice", meta.CurrentVersion, err)
	}

	// Someone else's write after a lost response stays a conflict.
	dropped.Store(false)
	proxy.SetFault(func(r *http.Request) vaulttest.Action {
		if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/data/") && dropped.CompareAndSwap(false, true) {
			v.Client(t, "").Logical().Write("secret/data/ofmkeys/dc1/state", map[string]any{"data": map[string]any{"value": `"theirs"`}, "options": map[string]any{"cas": 1}})
			return vaulttest.Status503
		}
		return vaulttest.Forward
	})
	if _, err := s.Put(ctx, p, []byte(`"mine again"`), 1); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("Put that lost to another writer = %v, want ErrConflict", err)
	}
}

func TestTransientFailuresAreRetriedWithinTheBudget(t *testing.T) {
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	s := open(t, config(proxy.URL, v.RootToken))
	p, _ := keystore.StatePath("dc1")
	for _, action := range []vaulttest.Action{vaulttest.Status503, vaulttest.Status412, vaulttest.Status429} {
		var n atomic.Int32
		proxy.SetFault(func(r *http.Request) vaulttest.Action {
			if n.Add(1) <= 2 {
				return action
			}
			return vaulttest.Forward
		})
		if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("action %d: Get = %v, want success after 2 failures (ErrNotFound)", action, err)
		}
	}
	proxy.SetFault(func(*http.Request) vaulttest.Action { return vaulttest.Status503 })
	proxy.Requests()
	if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Get against a Vault that always answers 503 = %v", err)
	}
	if n := len(proxy.Requests()); n != 4 {
		t.Fatalf("%d tries, want 4 (the default budget)", n)
	}
}

func TestSlowVaultTimesOutWithoutLeakingGoroutines(t *testing.T) {
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	cfg := config(proxy.URL, v.RootToken)
	cfg.Timeout, cfg.Attempts = 200*time.Millisecond, 2
	s := open(t, cfg)
	before := runtime.NumGoroutine()
	proxy.SetFault(func(*http.Request) vaulttest.Action { return vaulttest.Hang })
	p, _ := keystore.StatePath("dc1")
	start := time.Now()
	_, _, err := s.Get(ctx, p)
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Get against a hanging Vault = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("gave up after %v", d)
	}
	proxy.SetFault(nil)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling the runtime, not waiting on our code
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("goroutines %d -> %d", before, n)
	}
}

func TestBadSettingsFailAtStartWithAClearMessage(t *testing.T) {
	tls := httptest.NewTLSServer(http.NotFoundHandler())
	defer tls.Close()
	t.Setenv(api.EnvVaultAddress, "")
	t.Setenv(api.EnvVaultToken, "")
	for _, tc := range []struct {
		name  string
		cfg   vaultstore.Config
		words string
	}{
		{"no address", vaultstore.Config{Token: "x"}, "set VAULT_ADDR"},
		{"no token", vaultstore.Config{Address: "http://127.0.0.1:1"}, "set VAULT_TOKEN"},
		{"an untrusted TLS certificate", vaultstore.Config{Address: tls.URL, Token: "x", Attempts: 3}, "VAULT_CACERT"},
		{"a mount with ..", vaultstore.Config{Address: "http://127.0.0.1:1", Token: "x", Mount: "../sys"}, "vault mount"},
		{"missing AppRole files", vaultstore.Config{Address: "http://127.0.0.1:1", RoleIDFile: "/nonexistent/role", SecretIDFile: "/nonexistent/secret"}, "role_id file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vaultstore.New(ctx, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("New = %v, want %q", err, tc.words)
			}
		})
	}
}

func TestDeletedBehindOurBackReadsAsNotFound(t *testing.T) {
	v := vaulttest.Start(t)
	s := open(t, config(v.Addr, v.RootToken))
	p, _ := keystore.KeyPath("dc1", "signing", "kid1")
	s.Put(ctx, p, []byte(`{}`), 0)
	if err := v.Client(t, "").KVv2("secret").Delete(ctx, "ofmkeys/dc1/keys/signing/kid1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("Get of a soft-deleted secret = %v", err)
	}
}

func TestAppRoleLogsInAgainWhenTheTokenReachesItsMaxTTL(t *testing.T) {
	v := vaulttest.Start(t)
	cfg := config(v.Addr, "")
	cfg.RoleIDFile, cfg.SecretIDFile = appRole(t, v)
	if _, err := v.Client(t, "").Logical().Write("auth/approle/role/ofmkeys", map[string]any{
		"token_policies": "kv-all", "token_ttl": "2s", "token_max_ttl": "3s",
	}); err != nil {
		t.Fatal(err)
	}
	proxy := vaulttest.NewProxy(t, v.Addr)
	logins := make(chan struct{}, 8)
	proxy.SetFault(func(r *http.Request) vaulttest.Action {
		if strings.HasSuffix(r.URL.Path, "/auth/approle/login") {
			logins <- struct{}{}
		}
		return vaulttest.Forward
	})
	cfg.Address = proxy.URL
	s := open(t, cfg)
	<-logins // the first login, in New
	select {
	case <-logins:
	case <-time.After(15 * time.Second):
		t.Fatal("no new login before the token's max TTL ran out")
	}
	p, _ := keystore.StatePath("dc1")
	if _, err := s.Put(ctx, p, []byte(`1`), 0); err != nil {
		t.Fatalf("write after the token was replaced: %v", err)
	}
}

// An unreachable Vault does not stop New (a daemon must start and serve
// its persisted JWKS); the operations report it, and an AppRole store logs
// in once Vault answers.
func TestUnreachableVaultAtStartIsAnOperationError(t *testing.T) {
	s, err := vaultstore.New(ctx, vaultstore.Config{Address: "http://127.0.0.1:1", Token: "x", Backoff: time.Millisecond, Attempts: 2})
	if err != nil {
		t.Fatalf("New with nothing listening: %v", err)
	}
	defer s.Close()
	p, _ := keystore.StatePath("dc1")
	if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}

	v := vaulttest.Start(t)
	cfg := config(v.Addr, "")
	cfg.RoleIDFile, cfg.SecretIDFile = appRole(t, v)
	proxy := vaulttest.NewProxy(t, v.Addr)
	proxy.SetFault(func(*http.Request) vaulttest.Action { return vaulttest.Status503 })
	cfg.Address = proxy.URL
	ar := open(t, cfg)
	if _, _, err := ar.Get(ctx, p); !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("AppRole Get while Vault is down = %v", err)
	}
	proxy.SetFault(nil)
	if _, _, err := ar.Get(ctx, p); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("AppRole Get once Vault answers = %v, want a login and ErrNotFound", err)
	}
}
