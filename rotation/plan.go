package rotation

import (
	"fmt"
	"slices"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Action is one kind of transition.
type Action string

const (
	ActStage             Action = "stage"              // make the next key (sandbox: self-signed; production: a CSR)
	ActPublish           Action = "publish"            // put it in the JWKS
	ActAwaitRegistration Action = "await-registration" // transport: hand it to PayNet
	ActActivate          Action = "activate"           // sign with it / prefer it; the old key starts retiring
	ActConfirm           Action = "confirm"            // transport: registered; switch (an operator, or the proof)
	ActRetire            Action = "retire"             // withdraw the old key (signing) / stop decrypting with it
)

// NewKid stands for the kid of a key not made yet, in plans.
const NewKid = "(new)"

// Step is one transition: what, of which key, when, and why.
type Step struct {
	Purpose pki.Purpose `json:"purpose"`
	Action  Action      `json:"action"`
	Kid     string      `json:"kid"`
	At      time.Time   `json:"at,omitzero"`
	Reason  Reason      `json:"reason"`
	Message string      `json:"message"`
	// Manual steps wait for an operator (ofmkeys confirm, ofmkeys import).
	Manual bool `json:"manual,omitempty"`
	// Problem, when set, is why the step cannot happen (it is reported,
	// never retried in a loop).
	Problem string `json:"problem,omitempty"`
}

func (s Step) String() string {
	at := "when an operator acts"
	if !s.At.IsZero() {
		at = s.At.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s %s %s at %s (%s: %s)", s.Purpose, s.Action, s.Kid, at, s.Reason, s.Message)
}

// next lists the transitions that come next for one purpose, each with
// the time it is due (now or later); the follow-on steps of a rotation not
// started yet are projected too, so a plan shows the whole rotation.
func next(ks *keyset.Keyset, p pki.Purpose, now time.Time, pol Policy, broken map[pki.Purpose]string) []Step {
	var out []Step
	hold := pol.SigningHold
	if p == pki.Encryption {
		hold = pol.EncryptionRetention
	}
	// Keys on their way out.
	for i := range ks.Versions {
		v := &ks.Versions[i]
		if v.Purpose == p && v.State == keyset.Retiring {
			at := v.Since(keyset.Retiring).Add(hold)
			msg := "withdraw from the JWKS: its signatures and every cached JWKS have expired"
			if p == pki.Encryption {
				msg = "stop decrypting with it: its retention period is over"
			}
			out = append(out, Step{Purpose: p, Action: ActRetire, Kid: v.Kid, At: at, Reason: ReasonDue, Message: msg})
		}
	}
	active := ks.Active(p)
	oldKid := ""
	if active != nil {
		oldKid = active.Kid
	}
	// The rest of a rotation from its current point: start is when the
	// successor entered its state (or will be made).
	follow := func(from Action, kid string, at time.Time, reason Reason) {
		steps := []Action{ActStage, ActPublish, ActActivate}
		if p == pki.Transport {
			steps = []Action{ActStage, ActAwaitRegistration, ActConfirm}
		}
		started := false
		for _, a := range steps {
			if a == from {
				started = true
			}
			if !started {
				continue
			}
			st := Step{Purpose: p, Action: a, Kid: kid, At: at, Reason: reason}
			switch a {
			case ActStage:
				st.Message = "make the next key and certificate"
			case ActPublish:
				st.Message = "publish it in the JWKS"
				if p == pki.Encryption {
					st.Message = "publish it once its private key is stored and read back"
				}
			case ActAwaitRegistration:
				st.Message = "register the new transport certificate with PayNet"
			case ActActivate:
				// Wait out the propagation window while the current key
				// still works; an expired (or missing) one protects nobody.
				if active != nil && at.Add(pol.Propagation).Before(active.NotAfter) {
					at = at.Add(pol.Propagation)
				}
				st.At = at
				st.Message = fmt.Sprintf("use it: published %v earlier, longer than any peer caches the JWKS", pol.Propagation)
				if p == pki.Encryption {
					st.Message = fmt.Sprintf("prefer it: published %v earlier", pol.Propagation)
				}
			case ActConfirm:
				st.At, st.Manual = time.Time{}, true
				st.Message = "switch once PayNet has it: `ofmkeys confirm --purpose transport --kid KID`"
				if active != nil {
					st.Message += fmt.Sprintf(" (the current certificate expires %s)", active.NotAfter.Format(time.RFC3339))
				}
			}
			out = append(out, st)
		}
		if oldKid != "" && p != pki.Transport {
			out = append(out, Step{Purpose: p, Action: ActRetire, Kid: oldKid, At: at.Add(hold), Reason: reason,
				Message: "the replaced key leaves: " + map[pki.Purpose]string{pki.Signing: "withdrawn from the JWKS", pki.Encryption: "no longer decrypts"}[p]})
		}
	}
	if s := successor(ks, p); s != nil {
		if s.Halted != "" {
			return append(out, Step{Purpose: p, Action: ActActivate, Kid: s.Kid, Reason: ReasonInProgress, Problem: "halted: " + s.Halted})
		}
		switch s.State {
		case keyset.Staged:
			if p == pki.Transport {
				follow(ActAwaitRegistration, s.Kid, s.Since(keyset.Staged), ReasonInProgress)
			} else {
				follow(ActPublish, s.Kid, s.Since(keyset.Staged), ReasonInProgress)
			}
		case keyset.Published:
			follow(ActActivate, s.Kid, s.Since(keyset.Published), ReasonInProgress)
		case keyset.AwaitingRegistration:
			follow(ActConfirm, s.Kid, time.Time{}, ReasonInProgress)
		}
		return out
	}
	d := Decide(ks, p, now, pol)
	if msg, ok := broken[p]; ok && (d.Reason == ReasonNotDue || d.Reason == ReasonDue) {
		d = Decision{Purpose: p, Reason: ReasonMismatch, Message: msg, Act: true}
	}
	switch d.Reason {
	case ReasonAwaitingCert:
		out = append(out, Step{Purpose: p, Action: ActStage, Kid: NewKid, Reason: d.Reason, Message: d.Message, Manual: true})
	case ReasonBadLifetime:
		out = append(out, Step{Purpose: p, Action: ActStage, Kid: NewKid, Reason: d.Reason, Problem: d.Message})
	case ReasonNotDue:
		follow(ActStage, NewKid, d.At, d.Reason)
	default:
		follow(ActStage, NewKid, now, d.Reason)
	}
	return out
}

// Plan is every upcoming transition of the keyset, earliest first; steps
// that wait for an operator come last.
func Plan(ks *keyset.Keyset, now time.Time, pol Policy) []Step {
	pol = pol.WithDefaults()
	var out []Step
	for _, p := range pki.Purposes {
		out = append(out, next(ks, p, now, pol, nil)...)
	}
	slices.SortStableFunc(out, func(a, b Step) int {
		switch {
		case a.At.IsZero() && !b.At.IsZero():
			return 1
		case !a.At.IsZero() && b.At.IsZero():
			return -1
		}
		return a.At.Compare(b.At)
	})
	return out
}

// due is the first automatic step of each purpose that is due at now:
// only the first, since each step changes what comes next.
// broken names purposes whose active private key is unusable (the engine
// finds out by loading it; Plan, which reads no private keys, passes nil).
func due(ks *keyset.Keyset, now time.Time, pol Policy, broken map[pki.Purpose]string) []Step {
	var out []Step
	for _, p := range pki.Purposes {
		for _, st := range next(ks, p, now, pol, broken) {
			if st.Manual || st.Problem != "" || st.At.IsZero() || st.At.After(now) {
				continue
			}
			if st.Kid == NewKid && st.Action != ActStage {
				continue // follow-on of a stage not done yet
			}
			out = append(out, st)
			break
		}
	}
	return out
}

// Earliest is the time of the first automatic step after now (zero: none).
func Earliest(steps []Step, now time.Time) time.Time {
	var t time.Time
	for _, s := range steps {
		if s.Manual || s.Problem != "" || s.At.IsZero() || !s.At.After(now) {
			continue
		}
		if t.IsZero() || s.At.Before(t) {
			t = s.At
		}
	}
	return t
}
