package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
)

type lintFinding = jwks.Finding

// lintResult is the last self-check of the public JWKS.
type lintResult struct {
	url       string
	checkedAt time.Time
	err       error
	findings  []lintFinding
}

func (l lintResult) ok() bool { return l.err == nil && len(l.findings) == 0 }

// lintLoop runs the self-check whenever the served JWKS changes (and on
// Reload): it fetches the public URL from outside, as a peer would, and
// applies jwks.Lint with the keyset's kid policy and the HTTP headers.
func (s *Server) lintLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.lintNow:
			s.safely("lint", func() { s.selfCheck(ctx) })
		}
	}
}

func (s *Server) selfCheck(ctx context.Context) {
	if s.handler.Current() == nil {
		return
	}
	url := s.publicURL()
	body, hdr, err := jwks.Fetch(ctx, url, s.lintHTTPClient())
	s.st.mu.Lock()
	policy, env := s.st.kidPolicy, s.st.environment
	s.st.mu.Unlock()
	res := lintResult{url: url, checkedAt: s.clock.Now(), err: err}
	if err == nil {
		res.findings = jwks.Lint(body, jwks.LintOptions{
			RequireSigAndEnc: true, KidPolicy: policy, Now: res.checkedAt,
			MinValidity: env == keyset.Production, Header: hdr,
		})
	}
	s.st.mu.Lock()
	s.st.lint = res
	s.st.mu.Unlock()
	switch {
	case err != nil:
		s.metrics.lintRuns.WithLabelValues("unreachable").Inc()
		s.log.Error("self-check: cannot fetch the public JWKS", "url", url, "err", err)
	case len(res.findings) > 0:
		s.metrics.lintRuns.WithLabelValues("findings").Inc()
		for _, f := range res.findings {
			s.log.Warn("self-check finding", "url", url, "rule", f.Rule, "kid", f.Kid, "finding", f.Message)
		}
	default:
		s.metrics.lintRuns.WithLabelValues("ok").Inc()
		s.log.Info("self-check passed", "url", url)
	}
	s.observe(Event{Kind: EventLint, Findings: len(res.findings), Err: err})
	if s.proves() {
		s.st.mu.Lock()
		first := s.st.proof.at.IsZero()
		s.st.mu.Unlock()
		if first {
			poke(s.proofNow) // the first proof, once the JWKS is reachable
		}
	}
}

// lintHTTPClient fetches the public URL: the configured client, or one
// that trusts the system roots and the daemon's own certificate (a check
// of ourselves need not fail on a private CA).
func (s *Server) lintHTTPClient() *http.Client {
	if s.lintClient != nil {
		return s.lintClient
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if cert := s.tls.Load(); cert != nil {
		for _, der := range cert.Certificate {
			if c, err := x509.ParseCertificate(der); err == nil {
				pool.AddCert(c)
			}
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
}
