// Package daemon is `ofmkeys serve`: it hosts the DC's JWKS from a
// precomputed snapshot of the keyset, follows the store for changes,
// persists the last good snapshot so that a restart with the store down
// still serves, checks its own public JWKS from outside, writes file sinks,
// and exposes health and Prometheus metrics. Rotation, the end-to-end proof
// and alerting plug into the same lifecycle in later work.
//
// Use New, then Run(ctx): every component starts with Run and has stopped
// when it returns. Time comes from the Clock option.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/pki"
)

// DefaultListen is where the daemon listens unless told: loopback only, so a
// fresh install publishes nothing until someone puts a proxy (or TLS and
// --listen) in front of it.
const DefaultListen = "127.0.0.1:8420"

// Config is the daemon's settings. The zero value of each field means what
// its comment says.
type Config struct {
	// Listen is the TCP address; empty means DefaultListen.
	Listen string
	// PublicURL is where peers fetch the JWKS (the registered jwks_uri);
	// the self-check fetches it. Empty means the listen address.
	PublicURL string
	// DCID selects the keyset; empty means the store's only one.
	DCID string
	// JWKS shapes what is published.
	JWKS jwks.Options
	// Serve shapes the responses; MaxAge zero means 300 s.
	Serve jwks.ServeOptions
	// PollInterval is how often the store's state version is read (stores
	// that can be watched are watched too); zero means 2 s.
	PollInterval time.Duration
	// SnapshotFile, when set, keeps the last good JWKS (public data only)
	// on disk, to serve after a restart while the store is unreachable.
	SnapshotFile string
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS; both files are
	// watched and reloaded when they change.
	TLSCertFile, TLSKeyFile string
	// Sinks are files kept in step with the keyset.
	Sinks Sinks
	// Rotation runs the rotation scheduler (off when not Enabled).
	Rotation Rotation
	// Sandbox runs a local OFP in-process and proves the keys against it at
	// start and after every rotation step (transport certificates are then
	// confirmed by their proof).
	Sandbox bool
	// ProofEnv, without Sandbox, is the environment the keys are proven
	// against at start and after every rotation step (a standalone
	// sandbox, or PayNet's with automatic authorization).
	ProofEnv *ofmcheck.Env
	// Webhook receives PayNet's consent events.
	Webhook Webhook
	// Monitor watches certificates and alerts.
	Monitor Monitor
	// ShutdownTimeout bounds a graceful stop; zero means 10 s.
	ShutdownTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Serve.MaxAge == 0 {
		c.Serve.MaxAge = 300 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if len(c.Sinks.Purposes) == 0 {
		c.Sinks.Purposes = []pki.Purpose{pki.Transport}
	}
}

// Check validates the configuration once, at start and on reload.
func (c *Config) Check() error {
	if c.Serve.MaxAge < 0 || c.Serve.MaxAge > jwks.MaxCacheAge {
		return fmt.Errorf("max-age %v: OFM consumers cache a JWKS for at most %v; use 0-900 s", c.Serve.MaxAge, jwks.MaxCacheAge)
	}
	switch c.Serve.ContentType {
	case "", jwks.MediaJWKSet, jwks.MediaJSON:
	default:
		return fmt.Errorf("content type %q: want %s or %s", c.Serve.ContentType, jwks.MediaJWKSet, jwks.MediaJSON)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("TLS needs both a certificate file and a key file")
	}
	if c.Sandbox && c.ProofEnv != nil {
		return errors.New("prove against the local sandbox or a configured environment, not both")
	}
	if c.ProofEnv != nil && c.ProofEnv.Authorize != nil {
		return errors.New("the daemon proves unattended: the proof environment needs authorization: auto")
	}
	if err := c.Webhook.check(); err != nil {
		return err
	}
	if err := c.Monitor.Rules.Check(); err != nil {
		return err
	}
	return c.Sinks.check()
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// EventKind names what happened.
type EventKind string

const (
	EventListening  EventKind = "listening"   // Addr is set
	EventSnapshot   EventKind = "snapshot"    // a new snapshot is served
	EventRejected   EventKind = "rejected"    // a keyset change would publish a bad JWKS
	EventStoreError EventKind = "store-error" // reading the store failed
	EventStoreOK    EventKind = "store-ok"    // the store answered after failing
	EventLint       EventKind = "lint"        // a self-check finished
	EventSink       EventKind = "sink"        // sinks were written (Err on failure)
	EventTLS        EventKind = "tls"         // the TLS certificate was (re)loaded
	EventRotation   EventKind = "rotation"    // a rotation pass made Steps transitions (Err on failure)
	EventProof      EventKind = "proof"       // a proof ran (Report; Err when it failed)
	EventMonitor    EventKind = "monitor"     // the rules were evaluated (Alerts firing)
)

// Event is what the observer sees; tests wait on them.
type Event struct {
	Kind       EventKind
	Addr       string
	Generation uint64
	ETag       string
	Source     string // "store" or "disk" for snapshots
	Findings   int    // for lint
	Steps      int    // for rotation
	Sandbox    string // the sandbox OFP's issuer, with EventListening
	Webhook    string // the consent event receiver's address, with EventListening
	Report     *ofmcheck.Report
	Alerts     int // for monitor
	Err        error
}

// Option sets a collaborator.
type Option func(*Server)

// WithClock sets the clock (default: the real one).
func WithClock(c Clock) Option { return func(s *Server) { s.clock = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithObserver receives every event, synchronously: keep it quick.
func WithObserver(f func(Event)) Option { return func(s *Server) { s.observe = f } }

// WithLintClient sets the HTTP client of the self-check (default: one that
// trusts the system roots and the daemon's own certificate).
func WithLintClient(c *http.Client) Option { return func(s *Server) { s.lintClient = c } }

// Server is the daemon. Create it with New; run it once with Run.
type Server struct {
	store      keystore.Store
	clock      Clock
	log        *slog.Logger
	observe    func(Event)
	lintClient *http.Client

	cfgMu sync.Mutex
	cfg   Config

	handler     *jwks.Handler
	metrics     *metrics
	tls         atomic.Pointer[tls.Certificate]
	addr        atomic.Value // string: the address actually listened on
	webhookAddr atomic.Value // string: the consent event receiver's address

	// the store loop's state; see state.go
	st state

	reload   chan struct{}
	lintNow  chan struct{}
	proofNow chan struct{}
	sinkLock sync.Mutex

	ofp      *localOFP // the sandbox, with Config.Sandbox
	receiver *ofmcheck.Receiver

	// the monitor (see monitor.go)
	files   *monitor.Files
	probes  *monitor.Probes
	alerter *monitor.Alerter
	mon     monitorState
	evalNow chan struct{}
	started time.Time
}

// New checks cfg and returns a server that has not started.
func New(store keystore.Store, cfg Config, opts ...Option) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	s := &Server{
		store:    store,
		clock:    realClock{},
		log:      slog.Default(),
		observe:  func(Event) {},
		cfg:      cfg,
		handler:  jwks.NewHandler(cfg.Serve),
		reload:   make(chan struct{}, 1),
		lintNow:  make(chan struct{}, 1),
		proofNow: make(chan struct{}, 1),
		evalNow:  make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	s.metrics = newMetrics(s)
	s.receiver = s.newReceiver()
	if len(cfg.Monitor.Watch) > 0 {
		s.files = &monitor.Files{Paths: cfg.Monitor.Watch, OnChange: func() { poke(s.evalNow) }}
	}
	s.probes = &monitor.Probes{TLS: cfg.Monitor.ProbeTLS, JWKS: cfg.Monitor.ProbeJWKS, Roots: cfg.Monitor.ProbeRoots, Now: s.clock.Now}
	s.alerter = &monitor.Alerter{Notifiers: cfg.Monitor.Notifiers, Repeat: cfg.Monitor.Repeat, Leader: s.leader, Now: s.clock.Now, Log: s.log}
	return s, nil
}

func (s *Server) config() Config {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return s.cfg
}

// Addr is the address the server listens on, once EventListening is seen.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

// Handler is the JWKS handler (for tests and embedding).
func (s *Server) Handler() *jwks.Handler { return s.handler }

// Reload applies a new configuration: response options, public URL,
// sinks, poll interval; it re-reads the store and the TLS files at once.
// The listen address cannot change without a restart.
func (s *Server) Reload(cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return err
	}
	s.cfgMu.Lock()
	if cfg.Listen != s.cfg.Listen {
		s.log.Warn("the listen address changes only on restart", "listen", s.cfg.Listen, "wanted", cfg.Listen)
		cfg.Listen = s.cfg.Listen
	}
	// What the monitor watches and whom it tells are set up at start; the
	// thresholds and intervals apply at once.
	old, m := s.cfg.Monitor, &cfg.Monitor
	if !slices.Equal(old.Watch, m.Watch) || !slices.Equal(old.ProbeTLS, m.ProbeTLS) || !slices.Equal(old.ProbeJWKS, m.ProbeJWKS) || len(old.Notifiers) != len(m.Notifiers) {
		s.log.Warn("watched paths, probe targets and notifiers change only on restart; the new thresholds and intervals apply now")
	}
	m.Watch, m.ProbeTLS, m.ProbeJWKS, m.ProbeRoots, m.Notifiers = old.Watch, old.ProbeTLS, old.ProbeJWKS, old.ProbeRoots, old.Notifiers
	s.cfg = cfg
	s.cfgMu.Unlock()
	s.handler.SetOptions(cfg.Serve)
	if cfg.TLSCertFile != "" {
		if err := s.loadTLS(); err != nil {
			s.log.Error("TLS reload failed; the previous certificate stays", "err", err)
		}
	}
	s.sinkLock.Lock()
	s.st.resetSinks()
	s.sinkLock.Unlock()
	poke(s.reload)
	poke(s.lintNow)
	return nil
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run serves until ctx ends, then stops every component and returns. It
// returns an error only when the daemon cannot start (address in use, bad
// TLS files) or stops uncleanly.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.config()
	s.started = s.clock.Now()
	if cfg.TLSCertFile != "" {
		if err := s.loadTLS(); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.TLSCertFile != "" {
		ln = tls.NewListener(ln, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.tls.Load(), nil },
		})
	}
	s.addr.Store(ln.Addr().String())
	if cfg.Sandbox {
		if s.ofp, err = s.startSandbox(); err != nil {
			ln.Close()
			return err
		}
		defer s.ofp.close()
	}
	webhook, err := s.startWebhook()
	if err != nil {
		ln.Close()
		return err
	}
	if webhook != nil {
		defer webhook.srv.Close()
	}
	// Slow clients are bounded by ReadHeaderTimeout (slowloris), IdleTimeout
	// and WriteTimeout (slow readers). No ReadTimeout: no handler reads a
	// body, and it would re-arm a timer on every request of the hot path.
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("serving the JWKS", "addr", ln.Addr().String(), "public_url", s.publicURL(), "tls", cfg.TLSCertFile != "")
	listening := Event{Kind: EventListening, Addr: ln.Addr().String()}
	if s.ofp != nil {
		listening.Sandbox = s.ofp.issuer
	}
	if webhook != nil {
		listening.Webhook = webhook.addr
	} else if s.ofp != nil && s.ofp.webhook != "" {
		listening.Webhook = strings.TrimPrefix(s.ofp.webhook, "https://")
	}
	s.observe(listening)

	loops, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	for _, loop := range []func(context.Context){s.storeLoop, s.lintLoop, s.tlsLoop, s.rotationLoop, s.proofLoop, s.monitorLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(loops)
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("HTTP server: %w", err)
	}
	stop()
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && runErr == nil {
		runErr = fmt.Errorf("graceful shutdown: %w", err)
	}
	wg.Wait()
	s.log.Info("stopped")
	return runErr
}

// safely runs one iteration of a loop, turning a panic into a logged,
// counted error so that the daemon keeps serving.
func (s *Server) safely(loop string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			s.metrics.panics.WithLabelValues(loop).Inc()
			s.log.Error("recovered from a panic", "loop", loop, "panic", fmt.Sprint(r))
		}
	}()
	fn()
}
