package daemon

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// Monitor is what the daemon watches besides its keyset, and how it
// alerts.
type Monitor struct {
	// Watch are PEM certificate files and folders.
	Watch []string
	// ProbeTLS are remote TLS endpoints (https://host[:port] or host:port)
	// and ProbeJWKS remote JWKS URLs; ProbeRoots their CAs (nil: the
	// system's).
	ProbeTLS, ProbeJWKS []string
	ProbeRoots          *x509.CertPool
	// Interval: how often the rules are evaluated; zero means 1 minute.
	// ProbeInterval: how often remote targets are probed; zero means 5
	// minutes.
	Interval, ProbeInterval time.Duration
	Rules                   monitor.Rules
	// Repeat: how often a firing alert is notified again; zero means 4 h.
	Repeat    time.Duration
	Notifiers []monitor.Notifier
}

// monitorState is the monitor's latest view.
type monitorState struct {
	mu     sync.Mutex
	status *monitor.Status
	probes []monitor.ProbeResult
	probed time.Time
}

// leader says whether this replica notifies: the rotation lease holder
// does; a daemon that does not rotate notifies on its own.
func (s *Server) leader() bool {
	if !s.config().Rotation.Enabled {
		return true
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.rotation.holder
}

// monitorLoop watches files, probes targets, evaluates the rules and
// notifies, until ctx ends.
func (s *Server) monitorLoop(ctx context.Context) {
	cfg := s.config().Monitor
	interval := cfg.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	var wg sync.WaitGroup
	if s.files != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.files.Watch(ctx); err != nil {
				s.log.Error("watching certificate files stopped; restart to resume", "err", err)
			}
		}()
	}
	workers := s.alerter.Start(ctx)
	defer workers.Wait()
	defer wg.Wait()
	// With watched files, the first evaluation waits for their first scan
	// (it pokes evalNow), so that no alert fires on half the inventory.
	first := time.Duration(0)
	if s.files != nil {
		first = interval
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.evalNow:
		}
		s.safely("monitor", func() { s.evaluate(ctx) })
		timer.Reset(interval)
	}
}

// evaluate gathers the facts, runs the rules and updates the alerts and
// the status.
func (s *Server) evaluate(ctx context.Context) {
	cfg := s.config().Monitor
	now := s.clock.Now()
	probeEvery := cfg.ProbeInterval
	if probeEvery <= 0 {
		probeEvery = 5 * time.Minute
	}
	s.mon.mu.Lock()
	due := len(cfg.ProbeTLS)+len(cfg.ProbeJWKS) > 0 && (s.mon.probed.IsZero() || now.Sub(s.mon.probed) >= probeEvery)
	s.mon.mu.Unlock()
	if due {
		res := s.probes.Run(ctx)
		s.mon.mu.Lock()
		s.mon.probes, s.mon.probed = res, now
		s.mon.mu.Unlock()
	}
	st := s.buildStatus(now)
	s.alerter.SetDCID(st.DCID)
	s.alerter.Update(st.Alerts)
	st.Alerts = s.alerter.Firing()
	st.Level = monitor.Level(st.Alerts)
	s.mon.mu.Lock()
	s.mon.status = st
	s.mon.mu.Unlock()
	s.observe(Event{Kind: EventMonitor, Alerts: len(st.Alerts)})
}

// buildStatus puts together the facts and the status.
func (s *Server) buildStatus(now time.Time) *monitor.Status {
	cfg := s.config()
	var f monitor.Facts
	f.Now = now
	st := &monitor.Status{Generated: now, Alerts: []monitor.Alert{}}
	s.st.mu.Lock()
	dc := s.st.dcID
	f.Store.OK, f.Store.LastSuccess, f.Store.ErrorKind = s.st.storeOK, s.st.storeSuccess, s.st.storeErrKind
	if l := s.st.lint; !l.checkedAt.IsZero() {
		f.Lint.Checked, f.Lint.OK, f.Lint.Findings = true, l.ok(), len(l.findings)
	}
	rot, proof := s.st.rotation, s.st.proof
	s.st.mu.Unlock()
	st.DCID = dc
	f.Rotation.Enabled = cfg.Rotation.Enabled
	f.Rotation.LastSuccess, f.Rotation.LastError = rot.lastSuccess, rot.lastError
	if s.proves() {
		f.Proof.Configured = true
		f.Proof.LastSuccess = proof.lastOK
		if f.Proof.LastSuccess.IsZero() {
			f.Proof.LastSuccess = s.started // give the first proof time to run
		}
	}
	if proof.report != nil {
		f.Proof.Ran, f.Proof.OK, f.Proof.At = true, proof.report.OK, proof.at
		pv := &monitor.ProofView{OK: proof.report.OK, At: proof.at, LastSuccess: proof.lastOK}
		for _, step := range proof.report.Steps {
			pv.Steps = append(pv.Steps, monitor.ProofStep{Name: step.Name, OK: step.OK, Skipped: step.Skipped, Duration: step.Duration, Detail: step.Detail, Error: step.Error})
		}
		if !proof.report.OK {
			f.Proof.FailedStep = proof.report.Steps[len(proof.report.Steps)-1].Name
		}
		st.Proof = pv
	}
	if ks := s.currentKeyset(); ks != nil {
		f.AddKeyset(ks)
		st.Keys = monitor.KeyRows(ks, cfg.Rotation.Policy, now)
		st.Next = rotation.Plan(ks, now, cfg.Rotation.Policy)
	}
	if s.files != nil {
		watched := s.files.Certs()
		f.Certs = append(f.Certs, watched...)
		st.Watched = append(st.Watched, watched...)
		f.FileProblems = s.files.Problems()
		st.FileProblems = f.FileProblems
	}
	s.mon.mu.Lock()
	for _, p := range s.mon.probes {
		f.Certs = append(f.Certs, p.Certs...)
		st.Watched = append(st.Watched, p.Certs...)
	}
	f.Probes = s.mon.probes
	st.Probes = s.mon.probes
	s.mon.mu.Unlock()
	st.Alerts = cfg.Monitor.Rules.Evaluate(f)
	st.Level = monitor.Level(st.Alerts)
	return st
}

// currentKeyset is the keyset last served (nil before the first).
func (s *Server) currentKeyset() *keyset.Keyset {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.keyset
}

// Status is the monitor's latest status (nil before its first evaluation).
func (s *Server) Status() *monitor.Status {
	s.mon.mu.Lock()
	defer s.mon.mu.Unlock()
	return s.mon.status
}

// statusPage serves /status (HTML) and /status.json.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	if st == nil {
		http.Error(w, "the first evaluation has not run yet; try again in a second", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == PathStatusJSON {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	if err := monitor.RenderHTML(w, st); err != nil {
		s.log.Error("rendering the status page", "err", err)
	}
}
