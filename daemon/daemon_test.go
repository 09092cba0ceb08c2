package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

var (
	ctx      = context.Background()
	settings = keyset.Settings{DCID: "0123456789abcdef01234567", ClientID: "client-1", Organisation: "Example"}
)

// running is a daemon under test.
type running struct {
	srv    *daemon.Server
	events chan daemon.Event
	base   string
	stop   func()
}

// start runs a daemon on a free loopback port until the test ends.
func start(t *testing.T, s keystore.Store, cfg daemon.Config, opts ...daemon.Option) *running {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	events := make(chan daemon.Event, 4096)
	opts = append(opts, daemon.WithObserver(func(e daemon.Event) {
		select {
		case events <- e:
		default:
		}
	}), daemon.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv, err := daemon.New(s, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	r := &running{srv: srv, events: events}
	e := r.wait(t, "listening", func(e daemon.Event) bool { return e.Kind == daemon.EventListening })
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	r.base = scheme + "://" + e.Addr
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(r.stop)
	return r
}

func (r *running) wait(t *testing.T, what string, match func(daemon.Event) bool) daemon.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-r.events:
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within 10 s", what)
		}
	}
}

// until waits (10 s at most) for cond, checking it after every event the
// daemon reports: the daemon's progress is what can make it true.
func (r *running) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-r.events:
		case <-timeout:
			t.Fatalf("not within 10 s: %s", what)
		}
	}
}

func isSnapshot(e daemon.Event) bool { return e.Kind == daemon.EventSnapshot }

func newFileStore(t testing.TB) keystore.Store {
	t.Helper()
	s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func createKeyset(t testing.TB, s keystore.Store, force bool) *keyset.Keyset {
	t.Helper()
	ks, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, Force: force}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func fetch(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestServesTheKeysetAndFollowsChangesToTheFileStore(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	first := r.wait(t, "snapshot", isSnapshot)

	want, _ := jwks.Marshal(ks, jwks.Options{})
	for _, path := range []string{daemon.PathWellKnown, daemon.PathJWKS} {
		resp, body := fetch(t, nil, r.base+path)
		if resp.StatusCode != 200 || string(body) != string(want) {
			t.Fatalf("GET %s = %d, body as built: %v", path, resp.StatusCode, string(body) == string(want))
		}
		if resp.Header.Get("Cache-Control") != "public, max-age=300" || resp.Header.Get("ETag") != first.ETag {
			t.Errorf("GET %s headers %v", path, resp.Header)
		}
	}
	if resp, _ := fetch(t, nil, r.base+daemon.PathReady); resp.StatusCode != 200 {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, nil, r.base+"/nothing-here"); resp.StatusCode != 404 {
		t.Errorf("an unknown path = %d", resp.StatusCode)
	}

	// A change made by the CLI's code path is served without a restart.
	ks2 := createKeyset(t, s, true)
	e := r.wait(t, "snapshot after the change", func(e daemon.Event) bool { return isSnapshot(e) && e.ETag != first.ETag })
	if e.Generation != 2 || e.Source != "store" {
		t.Errorf("after the change: generation %d, source %s", e.Generation, e.Source)
	}
	_, body := fetch(t, nil, r.base+daemon.PathWellKnown)
	if !strings.Contains(string(body), ks2.Active(pki.Signing).Kid) || strings.Contains(string(body), ks.Active(pki.Signing).Kid) {
		t.Fatal("the served JWKS does not hold the new signing key only")
	}
	var h daemon.Health
	_, hb := fetch(t, nil, r.base+daemon.PathHealth)
	if err := json.Unmarshal(hb, &h); err != nil || h.Status != "ok" || !h.Store.OK || h.Snapshot.Generation != 2 {
		t.Fatalf("/healthz = %s", hb)
	}
}

func TestABadKeysetIsRejectedAndTheLastGoodJWKSStays(t *testing.T) {
	s := newFileStore(t)
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	good := r.wait(t, "snapshot", isSnapshot)

	// Someone withdraws the encryption key by hand: OFM needs one published.
	p, _ := keystore.StatePath(settings.DCID)
	data, v, _ := s.Get(ctx, p)
	var doc map[string]any
	json.Unmarshal(data, &doc)
	for _, ver := range doc["versions"].([]any) {
		if m := ver.(map[string]any); m["purpose"] == "encryption" {
			m["state"] = "staged"
		}
	}
	bad, _ := json.Marshal(doc)
	if _, err := s.Put(ctx, p, bad, v); err != nil {
		t.Fatal(err)
	}
	e := r.wait(t, "rejection", func(e daemon.Event) bool { return e.Kind == daemon.EventRejected })
	if !strings.Contains(e.Err.Error(), "use enc") {
		t.Errorf("rejected for %v", e.Err)
	}
	resp, _ := fetch(t, nil, r.base+daemon.PathWellKnown)
	if resp.Header.Get("ETag") != good.ETag {
		t.Fatal("the bad keyset replaced the served JWKS")
	}
	_, metrics := fetch(t, nil, r.base+daemon.PathMetrics)
	if !strings.Contains(string(metrics), "ofmkeys_jwks_snapshots_rejected_total 1") {
		t.Error("the rejection is not counted once")
	}
}

func TestMetricsDescribeTheServedKeys(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	r.wait(t, "snapshot", isSnapshot)
	r.wait(t, "lint", func(e daemon.Event) bool { return e.Kind == daemon.EventLint }) // its fetch counts too
	fetch(t, nil, r.base+daemon.PathWellKnown)
	fetch(t, nil, r.base+"/nope")
	_, body := fetch(t, nil, r.base+daemon.PathMetrics)
	m := string(body)
	sig := ks.Active(pki.Signing)
	for _, want := range []string{
		`ofmkeys_certificate_not_after_timestamp_seconds{kid="` + sig.Kid + `",purpose="signing",source="keyset",state="active",target="` + settings.DCID + `"} ` + sci(sig.NotAfter.Unix()),
		`ofmkeys_certificate_not_before_timestamp_seconds{kid="` + sig.Kid + `",purpose="signing",source="keyset",state="active",target="` + settings.DCID + `"} ` + sci(sig.NotBefore.Unix()),
		`ofmkeys_keys{purpose="transport",state="active"} 1`,
		`ofmkeys_http_requests_total{code="200",path="/.well-known/jwks.json"} 2`,
		`ofmkeys_http_requests_total{code="404",path="other"} 1`,
		`ofmkeys_jwks_snapshot_generation 1`,
		`ofmkeys_store_up 1`,
		`ofmkeys_jwks_snapshot_age_seconds`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// sci formats a value the way the Prometheus text format does.
func sci(v int64) string { return strconv.FormatFloat(float64(v), 'g', -1, 64) }

func TestSelfCheckFetchesThePublicURLAndReportsFindings(t *testing.T) {
	s := newFileStore(t)
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	r.wait(t, "snapshot", isSnapshot)
	e := r.wait(t, "lint", func(e daemon.Event) bool { return e.Kind == daemon.EventLint })
	if e.Err != nil || e.Findings != 0 {
		t.Fatalf("self-check of our own JWKS: %d findings, %v", e.Findings, e.Err)
	}

	// A public URL (a misconfigured CDN in front of us) serving something else.
	cdn := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=86400")
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(`{"keys":[]}`))
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go cdn.Serve(ln)
	defer cdn.Close()
	cfg := daemon.Config{PublicURL: "http://" + ln.Addr().String() + "/jwks.json", Listen: "127.0.0.1:0"}
	r.srv.Reload(cfg)
	e = r.wait(t, "lint", func(e daemon.Event) bool { return e.Kind == daemon.EventLint })
	if e.Findings < 3 {
		t.Fatalf("a bad public JWKS gave %d findings", e.Findings)
	}
	h := r.srv.Health()
	if h.Status != "degraded" || h.Lint.OK || len(h.Lint.Findings) != e.Findings {
		t.Fatalf("health after a failed self-check: %+v", h)
	}
	_, body := fetch(t, nil, r.base+daemon.PathMetrics)
	if !strings.Contains(string(body), "ofmkeys_jwks_lint_ok 0") {
		t.Error("metrics do not show the failed self-check")
	}
}

func TestReloadChangesResponseOptions(t *testing.T) {
	s := newFileStore(t)
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	r.wait(t, "snapshot", isSnapshot)
	if err := r.srv.Reload(daemon.Config{Listen: "127.0.0.1:0", Serve: jwks.ServeOptions{MaxAge: 60 * time.Second, ContentType: jwks.MediaJSON}}); err != nil {
		t.Fatal(err)
	}
	resp, _ := fetch(t, nil, r.base+daemon.PathJWKS)
	if resp.Header.Get("Cache-Control") != "public, max-age=60" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("after reload: %v", resp.Header)
	}
	if err := r.srv.Reload(daemon.Config{Serve: jwks.ServeOptions{MaxAge: time.Hour}}); err == nil {
		t.Fatal("a max-age over 900 s was accepted")
	}
}

func TestSlowAndHalfOpenConnectionsDoNotStopService(t *testing.T) {
	s := newFileStore(t)
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{})
	r.wait(t, "snapshot", isSnapshot)
	addr := strings.TrimPrefix(r.base, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /jwks HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns = append(conns, c)
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, body := fetch(t, client, r.base+daemon.PathWellKnown)
	if resp.StatusCode != 200 || len(body) == 0 {
		t.Fatalf("with 200 half-open connections: %d", resp.StatusCode)
	}
	// A header larger than MaxHeaderBytes is refused.
	req, _ := http.NewRequest(http.MethodGet, r.base+daemon.PathJWKS, nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if resp, err := client.Do(req); err == nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 64 KiB header: %d", resp.StatusCode)
	}
}

func TestNotReadyAndNoJWKSBeforeAnySnapshot(t *testing.T) {
	s := newFileStore(t) // empty: no keyset
	r := start(t, s, daemon.Config{})
	r.wait(t, "store error", func(e daemon.Event) bool { return e.Kind == daemon.EventStoreError })
	if resp, body := fetch(t, nil, r.base+daemon.PathWellKnown); resp.StatusCode != 503 || strings.Contains(string(body), "keys") {
		t.Fatalf("JWKS with nothing to serve: %d %s", resp.StatusCode, body)
	}
	if resp, _ := fetch(t, nil, r.base+daemon.PathReady); resp.StatusCode != 503 {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, nil, r.base+daemon.PathHealth); resp.StatusCode != 503 {
		t.Fatalf("/healthz while starting = %d", resp.StatusCode)
	}
	createKeyset(t, s, false)
	r.wait(t, "snapshot once the keyset exists", isSnapshot)
	if resp, _ := fetch(t, nil, r.base+daemon.PathReady); resp.StatusCode != 200 {
		t.Fatalf("/readyz after = %d", resp.StatusCode)
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	for _, cfg := range []daemon.Config{
		{Serve: jwks.ServeOptions{MaxAge: 901 * time.Second}},
		{Serve: jwks.ServeOptions{ContentType: "text/html"}},
		{TLSCertFile: "cert.pem"},
		{Sinks: daemon.Sinks{Command: "true"}},
		{Sinks: daemon.Sinks{Dir: "x", Purposes: []pki.Purpose{"billing"}}},
	} {
		if _, err := daemon.New(newFileStore(t), cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, _ := daemon.New(newFileStore(t), daemon.Config{Listen: ln.Addr().String()})
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Run on a taken port = %v", err)
	}
}
