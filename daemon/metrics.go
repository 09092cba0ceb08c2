package daemon

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ofmkeys/ofmkeys/pki"
)

// metrics are the daemon's Prometheus metrics, in a registry of its own.
// Counters count events; everything about the served keyset is read from
// the current snapshot at scrape time (collect), so it can never drift.
type metrics struct {
	s        *Server
	registry *prometheus.Registry

	requests      *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
	rejected      prometheus.Counter
	sinkRuns      *prometheus.CounterVec
	lintRuns      *prometheus.CounterVec
	panics        *prometheus.CounterVec
	webhookEvents *prometheus.CounterVec

	rotationSteps, rotationFailures                                   *prometheus.CounterVec
	proofStep                                                         *prometheus.GaugeVec
	proofOK, proofLastSuccess                                         *prometheus.Desc
	rotationNext, rotationLastSuccess, rotationLastRun, rotationLease *prometheus.Desc

	generation, modified, servedAge, storeUp, storeSuccess, lintOK, lintFindings, keys, notAfter, notBefore *prometheus.Desc

	proofStepSuccess, alertsFiring, notifications, watchErrors, probeFailures, kidChanges, probeOK, fileProblems, halted *prometheus.Desc
}

func newMetrics(s *Server) *metrics {
	m := &metrics{s: s, registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_http_requests_total", Help: "HTTP requests by path and status code."}, []string{"path", "code"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_store_errors_total", Help: "Failed store reads by kind."}, []string{"kind"})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{Name: "ofmkeys_jwks_snapshots_rejected_total", Help: "Keyset changes or persisted snapshots refused because the JWKS would be invalid."})
	m.sinkRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_sink_runs_total", Help: "File sink updates by result."}, []string{"result"})
	m.lintRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_jwks_lint_runs_total", Help: "Self-checks of the public JWKS by result."}, []string{"result"})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_panics_recovered_total", Help: "Panics recovered in the daemon's loops."}, []string{"loop"})
	m.rotationSteps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_rotation_steps_total", Help: "Rotation transitions made by this replica."}, []string{"purpose", "action"})
	m.rotationFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_rotation_failures_total", Help: "Failed rotation steps (purpose \"all\": the pass itself failed)."}, []string{"purpose"})
	m.rotationNext = prometheus.NewDesc("ofmkeys_rotation_next_transition_timestamp_seconds", "When the purpose's next automatic rotation transition is due.", []string{"purpose"}, nil)
	m.rotationLastSuccess = prometheus.NewDesc("ofmkeys_rotation_last_success_timestamp_seconds", "When a rotation pass last succeeded on this replica.", nil, nil)
	m.rotationLastRun = prometheus.NewDesc("ofmkeys_rotation_last_run_timestamp_seconds", "When the rotation scheduler last ran on this replica.", nil, nil)
	m.rotationLease = prometheus.NewDesc("ofmkeys_rotation_lease_held", "1 when this replica holds the rotation lease.", nil, nil)
	m.proofStep = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ofmkeys_proof_step_duration_seconds", Help: "Duration of each step of the last proof."}, []string{"step"})
	m.proofOK = prometheus.NewDesc("ofmkeys_proof_ok", "1 when the last proof passed.", nil, nil)
	m.proofLastSuccess = prometheus.NewDesc("ofmkeys_proof_last_success_timestamp_seconds", "When a proof last passed.", nil, nil)
	m.generation = prometheus.NewDesc("ofmkeys_jwks_snapshot_generation", "How many different JWKS this process has served.", nil, nil)
	m.modified = prometheus.NewDesc("ofmkeys_jwks_snapshot_modified_timestamp_seconds", "When the served keyset last changed.", []string{"source"}, nil)
	m.servedAge = prometheus.NewDesc("ofmkeys_jwks_snapshot_age_seconds", "How long the served JWKS has been served.", nil, nil)
	m.storeUp = prometheus.NewDesc("ofmkeys_store_up", "1 when the last read of the store succeeded.", nil, nil)
	m.storeSuccess = prometheus.NewDesc("ofmkeys_store_last_success_timestamp_seconds", "When the store last answered.", nil, nil)
	m.lintOK = prometheus.NewDesc("ofmkeys_jwks_lint_ok", "1 when the last self-check of the public JWKS passed.", nil, nil)
	m.lintFindings = prometheus.NewDesc("ofmkeys_jwks_lint_findings", "Findings of the last self-check.", nil, nil)
	m.keys = prometheus.NewDesc("ofmkeys_keys", "Key versions by purpose and state.", []string{"purpose", "state"}, nil)
	certLabels := []string{"source", "target", "purpose", "kid", "state"}
	m.notAfter = prometheus.NewDesc("ofmkeys_certificate_not_after_timestamp_seconds", "Expiry of each certificate: key versions (source keyset), watched files, TLS endpoints and remote JWKS.", certLabels, nil)
	m.notBefore = prometheus.NewDesc("ofmkeys_certificate_not_before_timestamp_seconds", "Start of each certificate (labels as not_after).", certLabels, nil)
	m.proofStepSuccess = prometheus.NewDesc("ofmkeys_proof_step_last_success_timestamp_seconds", "When each step of the proof last passed.", []string{"step"}, nil)
	m.alertsFiring = prometheus.NewDesc("ofmkeys_alerts_firing", "Alerts firing now, by rule and severity.", []string{"rule", "severity"}, nil)
	m.notifications = prometheus.NewDesc("ofmkeys_notifications_total", "Notifications by notifier and result (sent, failed after every retry, dropped on a full queue, retried).", []string{"notifier", "result"}, nil)
	m.watchErrors = prometheus.NewDesc("ofmkeys_watched_file_errors_total", "Watched files that could not be read or parsed.", nil, nil)
	m.probeFailures = prometheus.NewDesc("ofmkeys_probe_failures_total", "Failed probes of remote targets, by kind (tls, jwks).", []string{"kind"}, nil)
	m.probeOK = prometheus.NewDesc("ofmkeys_probe_ok", "1 when the last probe of a remote target passed.", []string{"kind", "target"}, nil)
	m.fileProblems = prometheus.NewDesc("ofmkeys_watched_file_problems", "Watched files and folders that give no certificate now.", nil, nil)
	m.halted = prometheus.NewDesc("ofmkeys_rotation_halted", "1 when the purpose's rotation is halted (a failed proof).", []string{"purpose"}, nil)
	m.kidChanges = prometheus.NewDesc("ofmkeys_remote_jwks_kid_changes_total", "Changes of a remote JWKS's kids seen.", []string{"url"}, nil)
	m.webhookEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ofmkeys_webhook_events_total", Help: "Consent events received, by result (accepted, duplicate, rejected) and consent status."}, []string{"result", "status"})
	m.registry.MustRegister(m.webhookEvents, m.requests, m.storeErrors, m.rejected, m.sinkRuns, m.lintRuns, m.panics, m.rotationSteps, m.rotationFailures, m.proofStep, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.generation, m.modified, m.servedAge, m.storeUp, m.storeSuccess, m.lintOK, m.lintFindings, m.keys, m.notAfter, m.notBefore,
		m.rotationNext, m.rotationLastSuccess, m.rotationLastRun, m.rotationLease, m.proofOK, m.proofLastSuccess,
		m.proofStepSuccess, m.alertsFiring, m.notifications, m.watchErrors, m.probeFailures, m.kidChanges, m.probeOK, m.fileProblems, m.halted} {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the current state.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.s
	snap := s.handler.Current()
	now := s.clock.Now()
	s.st.mu.Lock()
	gen, source, servedAt := s.st.generation, s.st.source, s.st.servedAt
	storeOK, storeSuccess, lint := s.st.storeOK, s.st.storeSuccess, s.st.lint
	rot, proof := s.st.rotation, s.st.proof
	next := make(map[string]time.Time, len(rot.next))
	for p, t := range rot.next {
		next[string(p)] = t
	}
	s.st.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(m.generation, float64(gen))
	gauge(m.storeUp, b2f(storeOK))
	if !storeSuccess.IsZero() {
		gauge(m.storeSuccess, float64(storeSuccess.Unix()))
	}
	if !lint.checkedAt.IsZero() {
		gauge(m.lintOK, b2f(lint.ok()))
		gauge(m.lintFindings, float64(len(lint.findings)))
	}
	if proof.report != nil {
		gauge(m.proofOK, b2f(proof.report.OK))
	}
	if !proof.lastOK.IsZero() {
		gauge(m.proofLastSuccess, float64(proof.lastOK.Unix()))
	}
	if !rot.lastRun.IsZero() {
		gauge(m.rotationLastRun, float64(rot.lastRun.Unix()))
		gauge(m.rotationLease, b2f(rot.holder))
	}
	if !rot.lastSuccess.IsZero() {
		gauge(m.rotationLastSuccess, float64(rot.lastSuccess.Unix()))
	}
	for p, t := range next {
		gauge(m.rotationNext, float64(t.Unix()), p)
	}
	for step, t := range proof.stepOK {
		gauge(m.proofStepSuccess, float64(t.Unix()), step)
	}
	m.collectMonitor(gauge, ch)
	if snap == nil {
		return
	}
	gauge(m.modified, float64(snap.Modified.Unix()), source)
	gauge(m.servedAge, now.Sub(servedAt).Seconds())
	count := map[[2]string]int{}
	for _, k := range snap.Keys {
		count[[2]string{string(k.Purpose), string(k.State)}]++
		gauge(m.notAfter, float64(k.NotAfter.Unix()), "keyset", snap.DCID, string(k.Purpose), k.Kid, string(k.State))
		gauge(m.notBefore, float64(k.NotBefore.Unix()), "keyset", snap.DCID, string(k.Purpose), k.Kid, string(k.State))
	}
	for ps, n := range count {
		gauge(m.keys, float64(n), ps[0], ps[1])
	}
}

// collectMonitor adds what the monitor knows: watched certificates,
// alerts, notifications, probes.
func (m *metrics) collectMonitor(gauge func(*prometheus.Desc, float64, ...string), ch chan<- prometheus.Metric) {
	s := m.s
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if st := s.Status(); st != nil {
		seen := map[string]bool{}
		for _, c := range st.Watched {
			key := string(c.Source) + c.Target + c.X5tS256
			if seen[key] {
				continue
			}
			seen[key] = true
			gauge(m.notAfter, float64(c.NotAfter.Unix()), string(c.Source), c.Target, string(c.Purpose), c.Kid, "")
			gauge(m.notBefore, float64(c.NotBefore.Unix()), string(c.Source), c.Target, string(c.Purpose), c.Kid, "")
		}
		firing := map[[2]string]int{}
		for _, a := range st.Alerts {
			firing[[2]string{a.Rule, string(a.Severity)}]++
		}
		for k, n := range firing {
			gauge(m.alertsFiring, float64(n), k[0], k[1])
		}
		for _, p := range st.Probes {
			gauge(m.probeOK, b2f(p.OK), string(p.Kind), p.Target)
		}
		halted := map[string]bool{}
		for _, k := range st.Keys {
			if k.Halted != "" {
				halted[string(k.Purpose)] = true
			}
		}
		for _, p := range pki.Purposes {
			gauge(m.halted, b2f(halted[string(p)]), string(p))
		}
	}
	if s.files != nil {
		gauge(m.fileProblems, float64(len(s.files.Problems())))
	}
	for name, st := range s.alerter.Stats() {
		counter(m.notifications, float64(st.Sent), name, "sent")
		counter(m.notifications, float64(st.Failed), name, "failed")
		counter(m.notifications, float64(st.Dropped), name, "dropped")
		counter(m.notifications, float64(st.Retries), name, "retried")
	}
	if s.files != nil {
		counter(m.watchErrors, float64(s.files.Errors()))
	}
	for kind, n := range s.probes.Failures() {
		counter(m.probeFailures, float64(n), kind)
	}
	for url, n := range s.probes.KidChanges() {
		counter(m.kidChanges, float64(n), url)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// instrument counts requests by route (a fixed set, so no label explosion).
// The counters of the routes and common codes are looked up once, not per
// request: label hashing would cost more than serving a 304.
func (m *metrics) instrument(next http.Handler) http.Handler {
	routes := []string{PathWellKnown, PathJWKS, PathHealth, PathReady, PathMetrics, "other"}
	codes := []int{200, 304, 404, 405, 503}
	cached := map[string]map[int]prometheus.Counter{}
	for _, p := range routes {
		cached[p] = map[int]prometheus.Counter{}
		for _, c := range codes {
			cached[p][c] = m.requests.WithLabelValues(p, strconv.Itoa(c))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		byCode, ok := cached[r.URL.Path]
		if !ok {
			byCode = cached["other"]
		}
		if c, ok := byCode[rec.code]; ok {
			c.Inc()
			return
		}
		path := r.URL.Path
		if _, known := cached[path]; !known {
			path = "other"
		}
		m.requests.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
