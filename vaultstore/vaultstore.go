// Package vaultstore is the HashiCorp Vault KV v2 backend of keystore.Store,
// the production home of ofmkeys' private keys.
//
// A document at logical path P is the KV v2 secret <mount>/data/<prefix>/P
// with one field, "value", holding the document text. Every write sends
// check-and-set ("cas"), so the mount may have cas_required set. Vault's
// answers are mapped to keystore's sentinels at this one boundary:
//
//	transport error, 5xx, sealed, 412, 429  retried with backoff, then keystore.ErrUnavailable
//	403 "invalid token"                     log in again once (AppRole), then retry once
//	403 otherwise (policy)                  keystore.ErrPermission, never retried
//	400 "check-and-set … did not match"     keystore.ErrConflict (after a lost response:
//	                                        read back; our own write counts as success)
//	404                                     keystore.ErrNotFound
package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/ofmkeys/ofmkeys/keystore"
)

// Config says how to reach Vault. The connection itself (address, TLS,
// namespace, token) comes from the standard Vault environment, read by
// api.DefaultConfig: VAULT_ADDR, VAULT_CACERT, VAULT_CAPATH,
// VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME,
// VAULT_SKIP_VERIFY, VAULT_NAMESPACE, VAULT_TOKEN. Fields set here win.
type Config struct {
	// Address overrides VAULT_ADDR; empty keeps the environment's.
	Address string
	// Token overrides VAULT_TOKEN; empty keeps the environment's. Ignored
	// when AppRole files are given.
	Token string
	// Namespace overrides VAULT_NAMESPACE (Vault Enterprise / HCP).
	Namespace string
	// Mount is the KV v2 mount; empty means "secret".
	Mount string
	// Prefix is put before every ofmkeys path inside the mount; empty
	// means none (documents live at <mount>/data/ofmkeys/…).
	Prefix string
	// RoleIDFile and SecretIDFile, when both set, log in with AppRole.
	RoleIDFile, SecretIDFile string
	// AppRoleMount is the AppRole auth mount; empty means "approle".
	AppRoleMount string
	// Attempts bounds tries of one operation on a retryable failure;
	// zero means 4.
	Attempts int
	// Backoff is the first wait between tries, doubled each time up to
	// MaxBackoff; zero means 250 ms and 4 s.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one HTTP request; zero means 10 s.
	Timeout time.Duration
	// HTTPClient, when set, is used instead of the default one (tests put
	// a fault-injecting transport here).
	HTTPClient *http.Client
}

// Store is a keystore.Store on Vault KV v2.
type Store struct {
	cfg    Config
	client *api.Client

	loginMu sync.Mutex
	watchMu sync.Mutex
	watcher *api.LifetimeWatcher
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ keystore.Store = (*Store)(nil)

// New connects to Vault: it builds the client from the environment and
// cfg, logs in with AppRole when configured, and starts renewing the token
// when it is renewable. It checks that a token is present and the mount is
// reachable, so configuration errors show at start-up. Close stops renewal.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.AppRoleMount == "" {
		cfg.AppRoleMount = "approle"
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 4 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if err := checkMountPath("mount", cfg.Mount); err != nil {
		return nil, err
	}
	if cfg.Prefix != "" {
		if err := checkMountPath("prefix", cfg.Prefix); err != nil {
			return nil, err
		}
	}

	vc := api.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault: environment: %w", vc.Error)
	}
	if cfg.HTTPClient != nil {
		vc.HttpClient = cfg.HTTPClient
	}
	if cfg.Address != "" {
		vc.Address = cfg.Address
	}
	// Retries are ours: vault/api would also retry 5xx, which hides the
	// classification below and multiplies attempts.
	vc.MaxRetries = 0
	vc.Timeout = cfg.Timeout
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if os.Getenv(api.EnvVaultAddress) == "" && cfg.Address == "" {
		return nil, errors.New("vault: no address: set VAULT_ADDR (or vault.address in the config file)")
	}
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	}
	if cfg.Token != "" {
		client.SetToken(cfg.Token)
	}
	s := &Store{cfg: cfg, client: client, stop: make(chan struct{})}
	if s.appRole() {
		client.ClearToken()
		// An unreachable Vault is not a configuration error: operations
		// log in when it answers (a daemon keeps serving meanwhile).
		if err := s.login(ctx); err != nil && !errors.Is(err, keystore.ErrUnavailable) {
			return nil, err
		}
	} else if client.Token() == "" {
		return nil, errors.New("vault: no token: set VAULT_TOKEN, or configure AppRole (role_id and secret_id files)")
	}
	if err := s.checkAccess(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func checkMountPath(what, p string) error {
	for _, seg := range strings.Split(p, "/") {
		if err := keystore.CheckSegment("vault "+what, seg); err != nil {
			return err
		}
	}
	return nil
}

// checkAccess looks the token up so that a bad token or an unreachable
// server is reported at start-up, not at the first write.
func (s *Store) checkAccess(ctx context.Context) error {
	err := s.do(ctx, "token lookup", func(ctx context.Context) error {
		sec, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
		if err != nil {
			return err
		}
		if !s.appRole() {
			if renewable, _ := sec.TokenIsRenewable(); renewable {
				s.watch(&api.Secret{Auth: &api.SecretAuth{ClientToken: s.client.Token(), Renewable: true}})
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, keystore.ErrPermission) && !errors.Is(err, errInvalidToken):
		// A token that cannot look itself up may still hold the KV policy
		// (lookup-self is in Vault's default policy, not in ours).
		return nil
	case errors.Is(err, keystore.ErrUnavailable):
		// Reported by the first operation; not a reason to refuse to start.
		return nil
	}
	return err
}

func (s *Store) appRole() bool { return s.cfg.RoleIDFile != "" && s.cfg.SecretIDFile != "" }

// login authenticates with AppRole from the configured files and starts
// renewing the new token.
func (s *Store) login(ctx context.Context) error {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	roleID, err := readSecretFile("role_id", s.cfg.RoleIDFile)
	if err != nil {
		return err
	}
	secretID, err := readSecretFile("secret_id", s.cfg.SecretIDFile)
	if err != nil {
		return err
	}
	sec, err := s.client.Logical().WriteWithContext(ctx, "auth/"+s.cfg.AppRoleMount+"/login", map[string]any{
		"role_id": roleID, "secret_id": secretID,
	})
	if err != nil {
		return fmt.Errorf("vault: AppRole login at auth/%s: %w", s.cfg.AppRoleMount, classify(err))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return fmt.Errorf("vault: AppRole login at auth/%s returned no token", s.cfg.AppRoleMount)
	}
	s.client.SetToken(sec.Auth.ClientToken)
	s.watch(sec)
	return nil
}

func readSecretFile(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vault: AppRole %s file: %w", what, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("vault: AppRole %s file %s is empty", what, path)
	}
	return v, nil
}

// watch renews the token in the background; when renewal ends (max TTL or
// failure) an AppRole store logs in again before the token expires. A new
// watch replaces the previous one, whose end then triggers nothing.
func (s *Store) watch(sec *api.Secret) {
	if sec.Auth == nil || !sec.Auth.Renewable {
		return
	}
	w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		return
	}
	s.watchMu.Lock()
	old := s.watcher
	s.watcher = w
	s.watchMu.Unlock()
	if old != nil {
		old.Stop()
	}
	current := func() bool {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		return s.watcher == w
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		go w.Start()
		for {
			select {
			case <-s.stop:
				w.Stop()
				return
			case <-w.RenewCh():
			case <-w.DoneCh():
				if s.appRole() && current() {
					ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
					// If this fails, the next operation logs in again.
					_ = s.login(ctx)
					cancel()
				}
				return
			}
		}
	}()
}

// Close stops token renewal. The Store must not be used afterwards.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	return nil
}

func (s *Store) kvPath(kind, p string) string {
	if s.cfg.Prefix != "" {
		p = s.cfg.Prefix + "/" + p
	}
	return s.cfg.Mount + "/" + kind + "/" + p
}

// Get implements keystore.Store.
func (s *Store) Get(ctx context.Context, p string) ([]byte, int64, error) {
	if err := keystore.CheckPath(p); err != nil {
		return nil, 0, err
	}
	var data []byte
	var version int64
	err := s.do(ctx, "read "+p, func(ctx context.Context) error {
		var err error
		data, version, err = s.read(ctx, p)
		return err
	})
	return data, version, err
}

func (s *Store) read(ctx context.Context, p string) ([]byte, int64, error) {
	sec, err := s.client.Logical().ReadWithContext(ctx, s.kvPath("data", p))
	if err != nil {
		return nil, 0, err
	}
	if sec == nil || sec.Data == nil {
		return nil, 0, fmt.Errorf("%s: %w", p, keystore.ErrNotFound)
	}
	payload, _ := sec.Data["data"].(map[string]any)
	if payload == nil {
		// A soft-deleted or destroyed latest version reads as data: null.
		return nil, 0, fmt.Errorf("%s: %w (latest version deleted in Vault)", p, keystore.ErrNotFound)
	}
	value, ok := payload["value"].(string)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s: the Vault secret has no string field \"value\" (written by something else?)", keystore.ErrCorrupt, p)
	}
	meta, _ := sec.Data["metadata"].(map[string]any)
	version, err := number(meta["version"])
	if err != nil || version < 1 {
		return nil, 0, fmt.Errorf("%w: %s: Vault metadata has no version", keystore.ErrCorrupt, p)
	}
	return []byte(value), version, nil
}

func number(v any) (int64, error) {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		return n.Int64()
	case float64:
		return int64(n), nil
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

// Put implements keystore.Store. Every write carries cas=version.
func (s *Store) Put(ctx context.Context, p string, data []byte, version int64) (int64, error) {
	if err := keystore.CheckPath(p); err != nil {
		return 0, err
	}
	var next int64
	lostResponse := false
	err := s.do(ctx, "write "+p, func(ctx context.Context) error {
		sec, err := s.client.Logical().WriteWithContext(ctx, s.kvPath("data", p), map[string]any{
			"data":    map[string]any{"value": string(data)},
			"options": map[string]any{"cas": version},
		})
		if err != nil {
			if isTransport(err) {
				lostResponse = true
			}
			if lostResponse && errors.Is(classify(err), keystore.ErrConflict) {
				// An earlier try may have committed before its response was
				// lost: if what is stored now is our write, it succeeded.
				got, v, rerr := s.read(ctx, p)
				if rerr == nil && v == version+1 && string(got) == string(data) {
					next = v
					return nil
				}
			}
			return err
		}
		if sec == nil || sec.Data == nil {
			return fmt.Errorf("vault: write %s: empty response", p)
		}
		n, err := number(sec.Data["version"])
		if err != nil {
			return fmt.Errorf("vault: write %s: response has no version", p)
		}
		next = n
		return nil
	})
	return next, err
}

// List implements keystore.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := keystore.CheckPath(prefix); err != nil {
		return nil, err
	}
	var names []string
	err := s.do(ctx, "list "+prefix, func(ctx context.Context) error {
		sec, err := s.client.Logical().ListWithContext(ctx, s.kvPath("metadata", prefix))
		if err != nil {
			return err
		}
		names = nil
		if sec == nil || sec.Data == nil {
			return nil
		}
		keys, _ := sec.Data["keys"].([]any)
		for _, k := range keys {
			if name, ok := k.(string); ok {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		return nil
	})
	return names, err
}

// Delete implements keystore.Store: it deletes the metadata, destroying
// every version.
func (s *Store) Delete(ctx context.Context, p string) error {
	if err := keystore.CheckPath(p); err != nil {
		return err
	}
	return s.do(ctx, "delete "+p, func(ctx context.Context) error {
		_, err := s.client.Logical().DeleteWithContext(ctx, s.kvPath("metadata", p))
		return err
	})
}

var _ keystore.Versioner = (*Store)(nil)

// Version implements keystore.Versioner: one metadata read, no payload.
func (s *Store) Version(ctx context.Context, p string) (int64, error) {
	if err := keystore.CheckPath(p); err != nil {
		return 0, err
	}
	var version int64
	err := s.do(ctx, "read metadata of "+p, func(ctx context.Context) error {
		sec, err := s.client.Logical().ReadWithContext(ctx, s.kvPath("metadata", p))
		if err != nil {
			return err
		}
		if sec == nil || sec.Data == nil {
			return fmt.Errorf("%s: %w", p, keystore.ErrNotFound)
		}
		v, err := number(sec.Data["current_version"])
		if err != nil {
			return fmt.Errorf("%w: %s: Vault metadata has no current_version", keystore.ErrCorrupt, p)
		}
		version = v
		return nil
	})
	return version, err
}
