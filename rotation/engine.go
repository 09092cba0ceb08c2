package rotation

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Prover proves that a key works with the platform after a rotation step
// (the end-to-end proof supplies the real one). An error halts the
// purpose's rotation at that version and is reported.
type Prover interface {
	Prove(ctx context.Context, ks *keyset.Keyset, p pki.Purpose, v *keyset.Version) error
}

// NoProof is the Prover until the end-to-end proof exists: it accepts all.
type NoProof struct{}

// Prove implements Prover.
func (NoProof) Prove(context.Context, *keyset.Keyset, pki.Purpose, *keyset.Version) error { return nil }

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Engine performs due transitions on one DC's keyset. Every transition is
// one compare-and-set write of the keyset document, taken under the
// rotation lease; a lost race is a reload and a re-check, never a double
// step. Fields left zero take the defaults their comments name.
type Engine struct {
	Store keystore.Store
	DCID  string
	// Policy; zero fields take DefaultPolicy's values.
	Policy Policy
	// Clock; nil means the real clock.
	Clock Clock
	// Actor identifies this rotator in the lease and the audit log.
	Actor string
	// Prover is called after publish and activate steps; nil means NoProof.
	Prover Prover
	// Log; nil means slog.Default().
	Log *slog.Logger
	// LeaseTTL is how long a taken lease lasts unless renewed; zero means
	// one minute.
	LeaseTTL time.Duration
	// GenerateKey makes new keys; nil means pki.GenerateKey.
	GenerateKey func(bits int) (*rsa.PrivateKey, error)
	// Failpoint, when set, is called at each named point between two
	// writes; crash tests make it exit the process.
	Failpoint func(name string)
	// AutoConfirm switches a transport certificate awaiting registration
	// once Prover proves a handshake with it (for platforms where
	// registration is automatic, like the local sandbox). Without it,
	// `ofmkeys confirm` does.
	AutoConfirm bool
}

func (e *Engine) now() time.Time {
	if e.Clock == nil {
		return time.Now().UTC().Truncate(time.Second)
	}
	return e.Clock.Now().UTC().Truncate(time.Second)
}

func (e *Engine) policy() Policy { return e.Policy.WithDefaults() }

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

func (e *Engine) actor() string {
	if e.Actor == "" {
		return "ofmkeys"
	}
	return e.Actor
}

func (e *Engine) fail(name string) {
	if e.Failpoint != nil {
		e.Failpoint(name)
	}
}

// Result is what a pass did.
type Result struct {
	// Done are the transitions made, in order.
	Done []Step `json:"done"`
	// Next is when the next automatic transition is due (zero: none).
	Next time.Time `json:"next,omitzero"`
	// NextByPurpose is the same per purpose (for metrics).
	NextByPurpose map[pki.Purpose]time.Time `json:"next_by_purpose,omitempty"`
	// Failed are the purposes whose step failed, with why.
	Failed map[pki.Purpose]string `json:"failed,omitempty"`
}

// maxSteps bounds one pass (a few steps per purpose): a bug can never
// turn a pass into a hot loop.
const maxSteps = 24

// Reconcile performs every transition that is due now, one at a time:
// take (or renew) the lease, reload the keyset, pick a due step, re-check
// it is still needed (it is computed from the state just read), write it
// with compare-and-set. The lease is kept for the next pass (Release gives
// it up).
func (e *Engine) Reconcile(ctx context.Context) (Result, error) {
	res := Result{Failed: map[pki.Purpose]string{}}
	pol := e.policy()
	checked := map[string]string{} // active kid → why its key is unusable ("" fine): loaded once per pass
	for range maxSteps {
		if err := e.Acquire(ctx); err != nil {
			return res, err
		}
		ks, version, err := keyset.Load(ctx, e.Store, e.DCID)
		if err != nil {
			return res, err
		}
		now := e.now()
		var step *Step
		for _, s := range e.due(ks, now, pol, e.brokenKeys(ctx, ks, checked)) {
			if _, failed := res.Failed[s.Purpose]; !failed {
				step = &s
				break
			}
		}
		if step == nil {
			plan := Plan(ks, now, pol)
			res.Next = Earliest(plan, now)
			res.NextByPurpose = map[pki.Purpose]time.Time{}
			for _, p := range pki.Purposes {
				var mine []Step
				for _, st := range plan {
					if st.Purpose == p {
						mine = append(mine, st)
					}
				}
				if t := Earliest(mine, now); !t.IsZero() {
					res.NextByPurpose[p] = t
				}
			}
			return res, nil
		}
		err = e.apply(ctx, ks, version, *step, now)
		switch {
		case err == nil:
			res.Done = append(res.Done, *step)
			e.log().Info("rotation step", "dc_id", e.DCID, "purpose", step.Purpose, "action", step.Action, "kid", step.Kid, "reason", step.Reason)
		case errors.Is(err, keystore.ErrConflict):
			// Another writer changed the keyset: reload and decide again.
			continue
		default:
			res.Failed[step.Purpose] = err.Error()
			e.log().Error("rotation step failed", "dc_id", e.DCID, "purpose", step.Purpose, "action", step.Action, "kid", step.Kid, "err", err)
			if errors.Is(err, keystore.ErrUnavailable) || errors.Is(err, ErrLeaseLost) {
				return res, err
			}
		}
	}
	return res, fmt.Errorf("rotation: more than %d steps in one pass; stopping (please report this)", maxSteps)
}

// due is plan's due steps, plus the confirmation of a transport
// certificate awaiting registration when AutoConfirm is set.
func (e *Engine) due(ks *keyset.Keyset, now time.Time, pol Policy, broken map[pki.Purpose]string) []Step {
	steps := due(ks, now, pol, broken)
	if !e.AutoConfirm {
		return steps
	}
	if s := successor(ks, pki.Transport); s != nil && s.State == keyset.AwaitingRegistration && s.Halted == "" {
		steps = append(steps, Step{Purpose: pki.Transport, Action: ActConfirm, Kid: s.Kid, At: now, Reason: ReasonInProgress,
			Message: "the proof's handshake with the new certificate succeeded"})
	}
	return steps
}

// brokenKeys loads each active private key and names the purposes whose
// key is missing or does not match its certificate: those rotate to a new
// key (the broken one is kept, never silently replaced in place).
func (e *Engine) brokenKeys(ctx context.Context, ks *keyset.Keyset, checked map[string]string) map[pki.Purpose]string {
	broken := map[pki.Purpose]string{}
	for _, p := range pki.Purposes {
		v := ks.Active(p)
		if v == nil {
			continue
		}
		why, seen := checked[v.Kid]
		if !seen {
			if _, _, err := keyset.LoadKey(ctx, e.Store, ks.DCID, v); errors.Is(err, keyset.ErrIntegrity) {
				why = err.Error()
				e.log().Error("an active key is unusable; rotating to a new one", "purpose", p, "kid", v.Kid, "err", err)
			}
			checked[v.Kid] = why
		}
		if why != "" {
			broken[p] = why
		}
	}
	return broken
}

// apply performs one step on the keyset just loaded at version.
func (e *Engine) apply(ctx context.Context, ks *keyset.Keyset, version int64, st Step, now time.Time) error {
	switch st.Action {
	case ActStage:
		return e.stage(ctx, ks, version, st.Purpose, string(st.Reason), now)
	case ActPublish, ActAwaitRegistration, ActActivate, ActRetire:
		return e.move(ctx, ks, version, st, now)
	case ActConfirm:
		if err := e.prove(ctx, st.Purpose, st.Kid); err != nil {
			return err
		}
		return e.Confirm(ctx, st.Purpose, st.Kid)
	}
	return fmt.Errorf("rotation: no automatic %s step", st.Action)
}

// stage makes the purpose's next key: an orphan left by an earlier stop is
// adopted first; in production a CSR is made for PayNet's CA instead.
func (e *Engine) stage(ctx context.Context, ks *keyset.Keyset, version int64, p pki.Purpose, reason string, now time.Time) error {
	orphans, err := keyset.Orphans(ctx, e.Store, ks, p)
	if err != nil {
		return err
	}
	for _, rec := range orphans {
		v, err := ks.Adopt(rec, keyset.Staged, now)
		if err != nil {
			e.log().Warn("an orphaned key does not adopt; leaving it", "purpose", p, "kid", rec.Kid, "err", err)
			continue
		}
		if !now.Before(v.NotAfter) {
			ks.Versions = ks.Versions[:len(ks.Versions)-1]
			continue
		}
		ks.Record(now, e.actor(), "adopt", p, v.Kid, "key stored by an interrupted rotation")
		_, err = keyset.Save(ctx, e.Store, ks, version, now)
		return err
	}
	if ks.Environment == keyset.Production {
		_, err := keyset.NewCSR(ctx, e.Store, keyset.Settings{DCID: ks.DCID}, p, e.policy().Bits, now)
		if err == nil {
			e.log().Warn("a production key needs its CA certificate: send the CSR to PayNet and run ofmkeys import", "purpose", p)
		}
		return err
	}
	gen := e.GenerateKey
	if gen == nil {
		gen = pki.GenerateKey
	}
	key, err := gen(e.policy().Bits)
	if err != nil {
		return err
	}
	tmpl := pki.Template{Purpose: p, Subject: pki.Subject{Organisation: ks.Organisation, CommonName: ks.CommonName}, Now: now,
		AllowShortValidity: e.policy().AllowShortValidity}
	if d := e.policy().Validity; d > 0 {
		tmpl.NotAfter = now.Add(d)
	}
	cert, err := pki.SelfSign(key, tmpl)
	if err != nil {
		return err
	}
	if _, err := e.policy().RenewalTime(pki.X5tS256(cert), cert.NotBefore, cert.NotAfter); err != nil {
		return fmt.Errorf("the new %s certificate would not rotate in time: %w", p, err)
	}
	e.fail("stage:before-key-write")
	v, err := ks.AddVersion(ctx, e.Store, p, key, []*x509.Certificate{cert}, keyset.SelfSigned, keyset.Staged, now)
	if err != nil {
		return err
	}
	e.fail("stage:after-key-write")
	ks.Record(now, e.actor(), "generate", p, v.Kid, reason)
	_, err = keyset.Save(ctx, e.Store, ks, version, now)
	e.fail("stage:after-save")
	return err
}

// move makes one state transition of an existing version.
func (e *Engine) move(ctx context.Context, ks *keyset.Keyset, version int64, st Step, now time.Time) error {
	found := ks.Find(st.Kid)
	var v *keyset.Version
	for _, f := range found {
		if f.Purpose == st.Purpose {
			v = f
		}
	}
	if v == nil {
		return fmt.Errorf("%w: %s key %s", keyset.ErrNoVersion, st.Purpose, st.Kid)
	}
	prove := false
	switch st.Action {
	case ActPublish:
		if st.Purpose == pki.Encryption {
			// Peers encrypt to the first enc key they find: publish only a
			// key whose private half is durably stored and reads back.
			if _, _, err := keyset.LoadKey(ctx, e.Store, ks.DCID, v); err != nil {
				return fmt.Errorf("not publishing encryption key %s: %w", v.Kid, err)
			}
		}
		v.Transition(keyset.Published, now, string(st.Reason))
		ks.Record(now, e.actor(), "publish", st.Purpose, v.Kid, st.Message)
		prove = true
	case ActAwaitRegistration:
		v.Transition(keyset.AwaitingRegistration, now, string(st.Reason))
		ks.Record(now, e.actor(), "await-registration", st.Purpose, v.Kid, "register the certificate with PayNet, then ofmkeys confirm")
	case ActActivate:
		retireActive(ks, st.Purpose, now, e.actor(), "replaced by "+v.Kid)
		v.Transition(keyset.Active, now, string(st.Reason))
		ks.Record(now, e.actor(), "activate", st.Purpose, v.Kid, st.Message)
		prove = true
	case ActRetire:
		v.Transition(keyset.Retired, now, st.Message)
		ks.Record(now, e.actor(), "retire", st.Purpose, v.Kid, st.Message)
	}
	e.fail("move:before-save")
	if _, err := keyset.Save(ctx, e.Store, ks, version, now); err != nil {
		return err
	}
	e.fail("move:after-save")
	if st.Action == ActRetire && st.Purpose == pki.Encryption && e.policy().DestroyRetired {
		if err := keyset.DeleteKey(ctx, e.Store, ks.DCID, v); err != nil {
			return fmt.Errorf("destroy retired key %s: %w", v.Kid, err)
		}
	}
	if prove {
		return e.prove(ctx, st.Purpose, v.Kid)
	}
	return nil
}

// retireActive moves the purpose's active version out: retiring for
// signing and encryption (still verifies / still decrypts), retired for
// transport (a TLS session has no overlap).
func retireActive(ks *keyset.Keyset, p pki.Purpose, now time.Time, actor, why string) {
	old := ks.Active(p)
	if old == nil {
		return
	}
	if p == pki.Transport {
		old.Transition(keyset.Retired, now, why)
		ks.Record(now, actor, "retire", p, old.Kid, why)
		return
	}
	old.Transition(keyset.Retiring, now, why)
	ks.Record(now, actor, "retiring", p, old.Kid, why)
}

// prove runs the Prover; a failure halts the version's rotation (one more
// compare-and-set) and is returned.
func (e *Engine) prove(ctx context.Context, p pki.Purpose, kid string) error {
	prover := e.Prover
	if prover == nil {
		prover = NoProof{}
	}
	ks, version, err := keyset.Load(ctx, e.Store, e.DCID)
	if err != nil {
		return err
	}
	var v *keyset.Version
	for _, f := range ks.Find(kid) {
		if f.Purpose == p {
			v = f
		}
	}
	if v == nil {
		return nil
	}
	perr := prover.Prove(ctx, ks, p, v)
	if perr == nil {
		return nil
	}
	now := e.now()
	v.Halted = perr.Error()
	ks.Record(now, e.actor(), "halt", p, kid, "proof failed: "+perr.Error())
	if _, err := keyset.Save(ctx, e.Store, ks, version, now); err != nil {
		return err
	}
	return fmt.Errorf("the %s rotation is halted at %s: the proof failed: %w", p, kid, perr)
}
