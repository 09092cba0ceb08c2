package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

// sandboxRedirect is the redirect URI the daemon registers in its sandbox.
const sandboxRedirect = "https://dc.invalid/callback"

// localOFP is the sandbox the daemon runs with Config.Sandbox.
type localOFP struct {
	sb      *sandbox.Server
	srv     *http.Server
	issuer  string
	roots   *x509.CertPool
	webhook string // the base URL of the receiver the sandbox posts to
	stopWH  func()
}

func (o *localOFP) close() {
	o.srv.Close()
	if o.stopWH != nil {
		o.stopWH()
	}
	o.sb.Close()
}

// startSandbox starts the in-process sandbox OFP on loopback.
func (s *Server) startSandbox() (*localOFP, error) {
	sb, err := sandbox.New(nil)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	srv, issuer := sb.Serve(ln)
	o := &localOFP{sb: sb, srv: srv, issuer: issuer, roots: sb.CAPool()}
	if s.config().Webhook.Listen == "" {
		// The sandbox's events come to a receiver on loopback that trusts
		// the sandbox's CA and keys.
		if o.webhook, o.stopWH, err = sb.LocalReceiver(s.receiver); err != nil {
			o.close()
			return nil, fmt.Errorf("sandbox webhook: %w", err)
		}
	}
	s.log.Info("sandbox OFP running", "issuer", issuer, "webhook", o.webhook+ofmcheck.WebhookPath)
	return o, nil
}

// registerClient (re)registers the keyset's client with the sandbox: its
// jwks_uri is this daemon's public URL, and every transport certificate
// not yet retired is registered.
func (s *Server) registerClient(ks *keyset.Keyset) {
	if s.ofp == nil {
		return
	}
	var transport []string
	for _, v := range ks.Versions {
		if v.Purpose == pki.Transport && v.State != keyset.Retired {
			transport = append(transport, v.Kid)
		}
	}
	s.receiver.SetDCID(ks.DCID)
	s.ofp.sb.Register(sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, JWKSURI: s.publicURL(), Transport: transport, RedirectURIs: []string{sandboxRedirect},
		WebhookURL: s.ofp.webhook})
}

// proves tells whether the daemon proves its keys: against the local
// sandbox, or the configured environment.
func (s *Server) proves() bool { return s.ofp != nil || s.config().ProofEnv != nil }

// proofEnv is the environment the proof runs against: the local sandbox
// (the keyset's client registered on the fly), else the configured one.
// The daemon's webhook receiver awaits the revocation's event when it
// receives the environment's events.
func (s *Server) proofEnv(ks *keyset.Keyset) ofmcheck.Env {
	if s.ofp == nil {
		env := *s.config().ProofEnv
		if env.AwaitEvent == nil && s.config().Webhook.Listen != "" {
			env.AwaitEvent = s.receiver.Await
		}
		return env
	}
	env := ofmcheck.Env{Issuer: s.ofp.issuer, Roots: s.ofp.roots, ClientID: ks.ClientID, DCID: ks.DCID, DPID: "DP9876543210", RedirectURI: sandboxRedirect}
	if s.ofp.webhook != "" {
		env.AwaitEvent = s.receiver.Await
	}
	return env
}

// proofState is the last proof, for health and metrics.
type proofState struct {
	report    *ofmcheck.Report
	at        time.Time
	lastOK    time.Time
	stepOK    map[string]time.Time // when each step last passed
	candidate string               // set when the proof was of a rotation candidate
}

// proofLoop proves the keys work whenever asked (at start, after each
// rotation step): the whole OFM flow against the sandbox or the configured
// environment.
func (s *Server) proofLoop(ctx context.Context) {
	if !s.proves() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.proofNow:
			s.safely("proof", func() { s.prove(ctx) })
		}
	}
}

func (s *Server) prove(ctx context.Context) {
	s.st.mu.Lock()
	dc := s.st.dcID
	s.st.mu.Unlock()
	if dc == "" {
		return
	}
	ks, _, err := keyset.Load(ctx, s.store, dc)
	if err != nil {
		return
	}
	cred, err := ofmcheck.CredentialsFrom(ctx, s.store, ks)
	if err != nil {
		s.log.Error("proof: the keys cannot be loaded", "err", err)
		return
	}
	rep := ofmcheck.Check(ctx, s.proofEnv(ks), cred, nil)
	s.recordProof(rep, "")
}

// recordProof keeps a report (a full proof, or a rotation candidate's).
func (s *Server) recordProof(rep ofmcheck.Report, candidate string) {
	now := s.clock.Now()
	s.st.mu.Lock()
	s.st.proof.report, s.st.proof.at, s.st.proof.candidate = &rep, now, candidate
	if rep.OK {
		s.st.proof.lastOK = now
	}
	if s.st.proof.stepOK == nil {
		s.st.proof.stepOK = map[string]time.Time{}
	}
	for _, st := range rep.Steps {
		if st.OK && !st.Skipped {
			s.st.proof.stepOK[st.Name] = now
		}
	}
	s.st.mu.Unlock()
	for _, st := range rep.Steps {
		s.metrics.proofStep.WithLabelValues(st.Name).Set(st.Duration.Seconds())
	}
	var err error
	if !rep.OK {
		last := rep.Steps[len(rep.Steps)-1]
		err = fmt.Errorf("the proof failed at %s: %s", last.Name, last.Error)
		s.log.Error("proof failed", "step", last.Name, "err", last.Error, "interaction_id", last.InteractionID)
	} else {
		s.log.Info("proof passed", "steps", len(rep.Steps), "duration", rep.Duration.Round(time.Millisecond))
	}
	s.observe(Event{Kind: EventProof, Report: &rep, Err: err})
	poke(s.evalNow)
}

// envProver is the rotation engine's Prover against the proof's
// environment: it records each candidate's report like a full proof. The
// local sandbox registers a new transport certificate itself; PayNet's
// needs an operator (ofmkeys confirm) before its handshake can pass.
type envProver struct{ s *Server }

func (p envProver) Prove(ctx context.Context, ks *keyset.Keyset, purpose pki.Purpose, v *keyset.Version) error {
	s := p.s
	pr := &ofmcheck.Prover{Env: s.proofEnv(ks), Store: s.store}
	if s.ofp != nil {
		pr.RegisterTransport = func(tp string) { s.ofp.sb.AddTransport(ks.ClientID, tp) }
	}
	err := pr.Prove(ctx, ks, purpose, v)
	if pr.Last != nil {
		s.recordProof(*pr.Last, v.Kid)
	}
	return err
}
