package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// ErrRotationUnderWay: a rotation of the purpose has started already.
var ErrRotationUnderWay = errors.New("a rotation is under way")

// RotateOptions shape an operator's rotation.
type RotateOptions struct {
	// Emergency is for a compromised key: the new key is published and
	// activated at once and the old one withdrawn at once. Peers that cached
	// the JWKS reject the new signatures until their cache expires.
	Emergency bool
	// DryRun reports the steps without making them.
	DryRun bool
}

// Operator actions (Rotate, Confirm, Rollback) do not take the rotation
// lease: the lease makes one automatic rotator among replicas, and a daemon
// holds it for as long as it runs. Each action is compare-and-set writes
// like every transition, so a race with the rotator ends in a
// keystore.ErrConflict for the operator to re-run, never in a double step.

// Rotate starts a rotation of purpose p now. The steps due at once (stage
// and publish; for transport stage and await-registration) are made here,
// so it works with no daemon running; activation waits for the propagation
// window (Reconcile, or the daemon, makes it). An emergency rotation
// activates at once.
func (e *Engine) Rotate(ctx context.Context, p pki.Purpose, o RotateOptions) ([]Step, error) {
	ks, _, err := keyset.Load(ctx, e.Store, e.DCID)
	if err != nil {
		return nil, err
	}
	now := e.now()
	if s := successor(ks, p); s != nil && !o.Emergency {
		return nil, fmt.Errorf("%w: the %s key %s is %s; `ofmkeys plan` shows what comes next", ErrRotationUnderWay, p, s.Kid, s.State)
	}
	reason := ReasonManual
	if o.Emergency {
		reason = ReasonCompromised
	}
	want := []Action{ActStage, ActPublish}
	if p == pki.Transport {
		want = []Action{ActStage, ActAwaitRegistration}
	}
	if o.Emergency {
		want = append(want, ActActivate)
		if p == pki.Transport {
			want = []Action{ActStage, ActAwaitRegistration}
		}
	}
	if o.DryRun {
		var steps []Step
		for _, a := range want {
			steps = append(steps, Step{Purpose: p, Action: a, Kid: NewKid, At: now, Reason: reason})
		}
		return steps, nil
	}
	var done []Step
	var newKid string
	for _, a := range want {
		ks, version, err := keyset.Load(ctx, e.Store, e.DCID)
		if err != nil {
			return done, err
		}
		now = e.now()
		st := Step{Purpose: p, Action: a, Reason: reason, Kid: newKid, At: now, Message: manualMessage[a]}
		switch a {
		case ActStage:
			if o.Emergency {
				// Whatever was under way is superseded by the new key.
				for i := range ks.Versions {
					if v := &ks.Versions[i]; v.Purpose == p && (v.State == keyset.Staged || v.State == keyset.Published || v.State == keyset.AwaitingRegistration) {
						v.Transition(keyset.Retired, now, "superseded by an emergency rotation")
					}
				}
			}
			before := len(ks.Versions)
			if err := e.stage(ctx, ks, version, p, string(reason), now); err != nil {
				return done, err
			}
			if ks.Environment == keyset.Production {
				return append(done, Step{Purpose: p, Action: ActStage, Kid: NewKid, Reason: ReasonAwaitingCert, At: now, Manual: true,
					Message: "a CSR waits for PayNet's CA: `ofmkeys list` shows it, `ofmkeys import` takes the certificate"}), nil
			}
			if len(ks.Versions) > before {
				newKid = ks.Versions[len(ks.Versions)-1].Kid
			}
			st.Kid = newKid
		case ActActivate:
			if err := e.activateNow(ctx, ks, version, p, newKid, now); err != nil {
				return done, err
			}
			done = append(done, st)
			continue
		default:
			if err := e.move(ctx, ks, version, st, now); err != nil {
				return done, err
			}
		}
		done = append(done, st)
	}
	return done, nil
}

var manualMessage = map[Action]string{
	ActStage:             "made the next key and certificate",
	ActPublish:           "published; it is used once the propagation window has passed (ofmkeys reconcile, or the daemon)",
	ActAwaitRegistration: "register it with PayNet, then ofmkeys confirm --purpose transport --kid KID",
	ActActivate:          "activated at once; the compromised key is withdrawn",
}

// activateNow is the emergency switch: the new key becomes active and the
// compromised one is withdrawn at once (retired; its private key is kept).
func (e *Engine) activateNow(ctx context.Context, ks *keyset.Keyset, version int64, p pki.Purpose, kid string, now time.Time) error {
	var v *keyset.Version
	for _, f := range ks.Find(kid) {
		if f.Purpose == p {
			v = f
		}
	}
	if v == nil {
		return fmt.Errorf("%w: %s key %s", keyset.ErrNoVersion, p, kid)
	}
	if old := ks.Active(p); old != nil {
		old.Transition(keyset.Retired, now, "compromised: withdrawn at once")
		ks.Record(now, e.actor(), "retire", p, old.Kid, "compromised: withdrawn at once")
	}
	v.Transition(keyset.Active, now, string(ReasonCompromised))
	ks.Record(now, e.actor(), "activate", p, v.Kid, "emergency: peers that cached the JWKS reject it until their cache expires")
	_, err := keyset.Save(ctx, e.Store, ks, version, now)
	return err
}

// Confirm switches the transport certificate to kid once PayNet has
// registered it: the old certificate retires, and every token bound to it
// must be fetched again.
func (e *Engine) Confirm(ctx context.Context, p pki.Purpose, kid string) error {
	if p != pki.Transport {
		return fmt.Errorf("only transport certificates wait for registration; %s keys activate after their propagation window", p)
	}
	ks, version, err := keyset.Load(ctx, e.Store, e.DCID)
	if err != nil {
		return err
	}
	now := e.now()
	var v *keyset.Version
	for _, f := range ks.Find(kid) {
		if f.Purpose == p {
			v = f
		}
	}
	if v == nil || v.State != keyset.AwaitingRegistration {
		return fmt.Errorf("%w: no transport key %q awaits registration", keyset.ErrNoVersion, kid)
	}
	retireActive(ks, p, now, e.actor(), "replaced by "+kid+" (registered)")
	v.Transition(keyset.Active, now, "registration confirmed")
	ks.Record(now, e.actor(), "confirm", p, kid, "registered with PayNet; tokens bound to the old certificate must be fetched again")
	_, err = keyset.Save(ctx, e.Store, ks, version, now)
	return err
}

// Rollback makes the previous version of p active again while it is still
// retained (not retired, certificate valid, private key present); the
// current one steps back as a replaced key would.
func (e *Engine) Rollback(ctx context.Context, p pki.Purpose) (string, error) {
	ks, version, err := keyset.Load(ctx, e.Store, e.DCID)
	if err != nil {
		return "", err
	}
	now := e.now()
	var prev *keyset.Version
	for i := range ks.Versions {
		v := &ks.Versions[i]
		ok := v.Purpose == p && (v.State == keyset.Retiring || (p == pki.Transport && v.State == keyset.Retired))
		if ok && now.Before(v.NotAfter) && (prev == nil || v.Since(v.State).After(prev.Since(prev.State))) {
			prev = v
		}
	}
	if prev == nil {
		return "", fmt.Errorf("%w: no previous %s key is still retained and valid", keyset.ErrNoVersion, p)
	}
	if _, _, err := keyset.LoadKey(ctx, e.Store, ks.DCID, prev); err != nil {
		return "", err
	}
	retireActive(ks, p, now, e.actor(), "rolled back to "+prev.Kid)
	prev.Transition(keyset.Active, now, "rollback")
	prev.Halted = ""
	ks.Record(now, e.actor(), "rollback", p, prev.Kid, "re-activated the previous key")
	_, err = keyset.Save(ctx, e.Store, ks, version, now)
	return prev.Kid, err
}
