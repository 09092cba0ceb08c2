package daemon

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The paths the daemon answers; anything else is 404.
const (
	PathWellKnown  = "/.well-known/jwks.json"
	PathJWKS       = "/jwks"
	PathHealth     = "/healthz"
	PathReady      = "/readyz"
	PathMetrics    = "/metrics"
	PathStatus     = "/status"
	PathStatusJSON = "/status.json"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathHealth, s.health)
	mux.HandleFunc(PathReady, s.ready)
	mux.Handle(PathMetrics, promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc(PathStatus, s.statusPage)
	mux.HandleFunc(PathStatusJSON, s.statusPage)
	// The JWKS paths are the hot ones: matched before the mux's patterns.
	return s.metrics.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathWellKnown, PathJWKS:
			s.handler.ServeHTTP(w, r)
		default:
			mux.ServeHTTP(w, r)
		}
	}))
}

// publicURL is the JWKS URL peers use: the configured one, or ours.
func (s *Server) publicURL() string {
	if u := s.config().PublicURL; u != "" {
		return u
	}
	scheme := "http"
	if s.config().TLSCertFile != "" {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: s.Addr(), Path: PathWellKnown}).String()
}

// Health is the /healthz document: what is served, and whether each
// dependency is fine. It carries error kinds, never messages, since it is
// served beside the public JWKS.
type Health struct {
	Status   string       `json:"status"` // ok, degraded, or starting (nothing to serve yet)
	DCID     string       `json:"dc_id,omitempty"`
	Snapshot *HealthSnap  `json:"snapshot,omitempty"`
	Store    HealthStore  `json:"store"`
	Lint     *HealthLint  `json:"lint,omitempty"`
	Proof    *HealthProof `json:"proof,omitempty"`
	Checked  time.Time    `json:"checked_at"`
	Problems []string     `json:"problems,omitempty"`
}

type HealthSnap struct {
	Generation   uint64    `json:"generation"`
	Source       string    `json:"source"`
	ETag         string    `json:"etag"`
	Modified     time.Time `json:"modified"`
	StateVersion int64     `json:"state_version"`
	ServedFor    float64   `json:"served_for_seconds"`
}

type HealthStore struct {
	OK          bool      `json:"ok"`
	ErrorKind   string    `json:"error_kind,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// HealthProof is the last proof against the sandbox OFP.
type HealthProof struct {
	OK          bool      `json:"ok"`
	CheckedAt   time.Time `json:"checked_at"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	FailedStep  string    `json:"failed_step,omitempty"`
	Candidate   string    `json:"candidate_kid,omitempty"`
	Steps       int       `json:"steps"`
}

type HealthLint struct {
	OK        bool          `json:"ok"`
	URL       string        `json:"url"`
	CheckedAt time.Time     `json:"checked_at"`
	Error     string        `json:"error,omitempty"`
	Findings  []lintFinding `json:"findings,omitempty"`
}

// Health reports the daemon's state now.
func (s *Server) Health() Health {
	now := s.clock.Now()
	snap := s.handler.Current()
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	h := Health{Status: "ok", DCID: s.st.dcID, Checked: now,
		Store: HealthStore{OK: s.st.storeOK, ErrorKind: s.st.storeErrKind, LastSuccess: s.st.storeSuccess}}
	if snap == nil {
		h.Status = "starting"
		h.Problems = append(h.Problems, "no JWKS to serve yet")
	} else {
		h.Snapshot = &HealthSnap{Generation: s.st.generation, Source: s.st.source, ETag: snap.ETag, Modified: snap.Modified,
			StateVersion: snap.StateVersion, ServedFor: now.Sub(s.st.servedAt).Seconds()}
	}
	if !s.st.storeOK {
		h.Problems = append(h.Problems, "the store is not answering ("+orDash(s.st.storeErrKind)+"); the last good JWKS is served")
	}
	if l := s.st.lint; !l.checkedAt.IsZero() {
		hl := &HealthLint{OK: l.ok(), URL: l.url, CheckedAt: l.checkedAt, Findings: l.findings}
		if l.err != nil {
			hl.Error = "the public URL could not be fetched"
		}
		h.Lint = hl
		if !hl.OK {
			h.Problems = append(h.Problems, "the self-check of the public JWKS fails")
		}
	}
	if p := s.st.proof; p.report != nil {
		hp := &HealthProof{OK: p.report.OK, CheckedAt: p.at, LastSuccess: p.lastOK, Candidate: p.candidate, Steps: len(p.report.Steps)}
		if !p.report.OK {
			hp.FailedStep = p.report.Steps[len(p.report.Steps)-1].Name
			h.Problems = append(h.Problems, "the last proof failed at "+hp.FailedStep)
		}
		h.Proof = hp
	}
	if h.Status == "ok" && len(h.Problems) > 0 {
		h.Status = "degraded"
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// health answers 200 while the process serves (degraded dependencies are
// reported in the body, not by failing the probe), 503 while starting.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := s.Health()
	code := http.StatusOK
	if h.Status == "starting" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

// ready answers 200 once some valid JWKS is served, 503 until then.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.handler.Current() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no valid JWKS snapshot yet"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, _ := json.MarshalIndent(v, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
