// Package rotation replaces every key before it expires without breaking
// a peer that caches the JWKS, a token bound to the transport certificate,
// or a JWE in flight. It has three layers:
//
//   - the policy (Policy, RenewalTime, Decide): pure functions of the
//     certificates actually issued and "now", with reason codes;
//   - the plan (Plan): every upcoming transition, when and why;
//   - the Engine: performs the transitions that are due, one
//     compare-and-set write of the keyset document each, under a lease so
//     that one rotator acts among many replicas.
//
// The states and invariants are DESIGN.md's; OFM-SPEC §9 gives the windows.
package rotation

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Policy holds the windows and choices of rotation. Zero fields take the
// defaults of DefaultPolicy (see WithDefaults).
type Policy struct {
	// RenewBefore: renew at the latest this long before expiry (and at 2/3
	// of the lifetime at the latest). Default 30 days.
	RenewBefore time.Duration
	// Propagation: how long a new key is published before it is used
	// (signing) or preferred (encryption): the JWKS max-age, clock skew
	// and a margin. Default 30 minutes (OFM consumers cache 15).
	Propagation time.Duration
	// SigningHold: how long a replaced signing key stays published for
	// verifiers (its assertions live ≤ 10 min, x-signatures ≤ 5 min, plus
	// a cache period). Default 1 hour.
	SigningHold time.Duration
	// EncryptionRetention: how long a replaced encryption key still
	// decrypts (JWEs carry no kid; peers may encrypt to a cached JWKS).
	// Default 7 days.
	EncryptionRetention time.Duration
	// MaxJitter bounds how much earlier than the renewal time a rotation
	// starts, so replicas and keysets do not all renew at once. Default 1
	// hour (never more than a hundredth of the lifetime).
	MaxJitter time.Duration
	// Jitter picks the jitter of a key version in [0, max); nil means a
	// stable hash of the kid, so every replica and every run agrees.
	Jitter func(kid string, max time.Duration) time.Duration
	// Bits is the RSA size of new keys. Default 2048.
	Bits int
	// Validity is the lifetime of new self-signed certificates (sandbox).
	// Default 13 months; under 12 needs AllowShortValidity.
	Validity time.Duration
	// AllowShortValidity permits Validity under 12 months (sandbox only).
	AllowShortValidity bool
	// DestroyRetired deletes a retired encryption key's private key once
	// its retention has passed; the default keeps it (archived).
	DestroyRetired bool
	// BackoffBase and BackoffMax space retries of a failing step
	// (exponential). Defaults 1 minute and 6 hours.
	BackoffBase, BackoffMax time.Duration
}

// DefaultPolicy is the policy with every default.
func DefaultPolicy() Policy { return Policy{}.WithDefaults() }

// WithDefaults fills the zero fields.
func (p Policy) WithDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&p.RenewBefore, 30*24*time.Hour)
	def(&p.Propagation, 30*time.Minute)
	def(&p.SigningHold, time.Hour)
	def(&p.EncryptionRetention, 7*24*time.Hour)
	def(&p.MaxJitter, time.Hour)
	def(&p.BackoffBase, time.Minute)
	def(&p.BackoffMax, 6*time.Hour)
	if p.Bits == 0 {
		p.Bits = pki.DefaultRSABits
	}
	if p.Jitter == nil {
		p.Jitter = hashJitter
	}
	return p
}

// hashJitter is a stable jitter: the same kid always gets the same one.
func hashJitter(kid string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(kid))
	return time.Duration(h.Sum64() % uint64(max))
}

// ErrLifetime is returned when a certificate's lifetime leaves no room for
// the rotation windows: renewing it would loop (the failure cert-manager
// users hit with clamped lifetimes), so it is reported instead.
var ErrLifetime = errors.New("certificate lifetime too short for the rotation windows")

// RenewalTime is when the rotation of a key version starts: at 2/3 of its
// certificate's lifetime or RenewBefore before its expiry, whichever is
// earlier, minus the version's jitter. It is a function of the certificate
// actually issued, never of the lifetime asked for. It returns ErrLifetime
// when the renewal would start before the certificate does, or too late to
// finish publication (Propagation) before it expires.
func (p Policy) RenewalTime(kid string, notBefore, notAfter time.Time) (time.Time, error) {
	p = p.WithDefaults()
	life := notAfter.Sub(notBefore)
	if life <= 0 {
		return time.Time{}, fmt.Errorf("%w: notAfter %s is not after notBefore %s", ErrLifetime, notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	at := notBefore.Add(life * 2 / 3)
	if byBefore := notAfter.Add(-p.RenewBefore); byBefore.Before(at) {
		at = byBefore
	}
	maxJitter := min(p.MaxJitter, life/100)
	at = at.Add(-p.Jitter(kid, maxJitter))
	switch {
	case at.Before(notBefore):
		return time.Time{}, fmt.Errorf("%w: a lifetime of %v is shorter than renew-before %v: the renewal would be due at issue", ErrLifetime, life.Round(time.Second), p.RenewBefore)
	case !at.Add(p.Propagation).Before(notAfter):
		return time.Time{}, fmt.Errorf("%w: a lifetime of %v leaves no room for the %v publication window", ErrLifetime, life.Round(time.Second), p.Propagation)
	}
	return at.UTC(), nil
}

// Reason says why a purpose needs (or does not need) a new key. The codes
// are what `ofmkeys plan` and `status` print.
type Reason string

const (
	ReasonMissing      Reason = "missing-key"          // no active key and no rotation under way
	ReasonMismatch     Reason = "key-mismatch"         // the stored private key does not match its certificate
	ReasonInProgress   Reason = "in-progress"          // a successor exists: keep going
	ReasonProfileDrift Reason = "profile-drift"        // the key or certificate no longer fits the settings
	ReasonExpired      Reason = "expired"              // the active certificate has expired
	ReasonBadLifetime  Reason = "bad-lifetime"         // the lifetime leaves no room: report, do not loop
	ReasonDue          Reason = "due-for-renewal"      // the renewal time has come
	ReasonNotDue       Reason = "not-due"              // nothing to do before At
	ReasonManual       Reason = "manual"               // an operator asked (ofmkeys rotate)
	ReasonCompromised  Reason = "compromised"          // an operator asked for an emergency rotation
	ReasonAwaitingCert Reason = "awaiting-certificate" // production: a CSR waits for its certificate
)

// Decision is the verdict of the policy chain for one purpose.
type Decision struct {
	Purpose pki.Purpose `json:"purpose"`
	Reason  Reason      `json:"reason"`
	Message string      `json:"message"`
	// Act is true when a new key must be made now.
	Act bool `json:"act"`
	// At is when the decision changes: the renewal time when not due.
	At time.Time `json:"at,omitzero"`
}

// rule is one named policy of the chain: it decides, or passes (ok false).
type rule func(ks *keyset.Keyset, p pki.Purpose, now time.Time, pol Policy) (Decision, bool)

// chain is the ordered list of rules; the first that decides wins.
var chain = []rule{ruleInProgress, ruleMissing, ruleProfileDrift, ruleExpired, ruleLifetime, ruleDue}

// Decide runs the policy chain for one purpose.
func Decide(ks *keyset.Keyset, p pki.Purpose, now time.Time, pol Policy) Decision {
	pol = pol.WithDefaults()
	for _, r := range chain {
		if d, ok := r(ks, p, now, pol); ok {
			d.Purpose = p
			return d
		}
	}
	panic("rotation: the policy chain decided nothing") // ruleDue always decides
}

// successor is the newest version of p that is on its way to active.
func successor(ks *keyset.Keyset, p pki.Purpose) *keyset.Version {
	var s *keyset.Version
	for i := range ks.Versions {
		v := &ks.Versions[i]
		if v.Purpose != p {
			continue
		}
		switch v.State {
		case keyset.Staged, keyset.Published, keyset.AwaitingRegistration:
			if s == nil || v.CreatedAt.After(s.CreatedAt) {
				s = v
			}
		}
	}
	return s
}

func ruleInProgress(ks *keyset.Keyset, p pki.Purpose, _ time.Time, _ Policy) (Decision, bool) {
	if s := successor(ks, p); s != nil {
		return Decision{Reason: ReasonInProgress, Message: fmt.Sprintf("key %s is %s", s.Kid, s.State)}, true
	}
	for _, pk := range ks.Pending {
		if pk.Purpose == p {
			return Decision{Reason: ReasonAwaitingCert, Message: fmt.Sprintf("key %s waits for its CA certificate (ofmkeys import --purpose %s)", pk.ID, p)}, true
		}
	}
	return Decision{}, false
}

func ruleMissing(ks *keyset.Keyset, p pki.Purpose, _ time.Time, _ Policy) (Decision, bool) {
	if ks.Active(p) == nil {
		return Decision{Reason: ReasonMissing, Message: "no active key", Act: true}, true
	}
	return Decision{}, false
}

func ruleProfileDrift(ks *keyset.Keyset, p pki.Purpose, _ time.Time, pol Policy) (Decision, bool) {
	v := ks.Active(p)
	chain, err := v.Certificates()
	if err != nil {
		return Decision{Reason: ReasonProfileDrift, Message: err.Error(), Act: true}, true
	}
	if err := pki.CheckProfile(chain[0], p); err != nil {
		return Decision{Reason: ReasonProfileDrift, Message: err.Error(), Act: true}, true
	}
	if kid, err := ks.KidPolicy.Kid(chain[0]); err == nil && kid != v.Kid {
		return Decision{Reason: ReasonProfileDrift, Message: fmt.Sprintf("the kid policy is now %s", ks.KidPolicy), Act: true}, true
	}
	if bits := rsaBits(chain[0]); bits < pol.Bits {
		return Decision{Reason: ReasonProfileDrift, Message: fmt.Sprintf("RSA-%d is below the configured %d bits", bits, pol.Bits), Act: true}, true
	}
	return Decision{}, false
}

func ruleExpired(ks *keyset.Keyset, p pki.Purpose, now time.Time, _ Policy) (Decision, bool) {
	if v := ks.Active(p); !now.Before(v.NotAfter) {
		return Decision{Reason: ReasonExpired, Message: fmt.Sprintf("expired on %s", v.NotAfter.Format(time.RFC3339)), Act: true}, true
	}
	return Decision{}, false
}

func ruleLifetime(ks *keyset.Keyset, p pki.Purpose, _ time.Time, pol Policy) (Decision, bool) {
	v := ks.Active(p)
	if _, err := pol.RenewalTime(v.Kid, v.NotBefore, v.NotAfter); err != nil {
		return Decision{Reason: ReasonBadLifetime, Message: err.Error()}, true
	}
	return Decision{}, false
}

func ruleDue(ks *keyset.Keyset, p pki.Purpose, now time.Time, pol Policy) (Decision, bool) {
	v := ks.Active(p)
	at, _ := pol.RenewalTime(v.Kid, v.NotBefore, v.NotAfter)
	if !now.Before(at) {
		return Decision{Reason: ReasonDue, Message: fmt.Sprintf("renewal time %s reached; expires %s", at.Format(time.RFC3339), v.NotAfter.Format(time.RFC3339)), Act: true, At: at}, true
	}
	return Decision{Reason: ReasonNotDue, Message: fmt.Sprintf("renew at %s", at.Format(time.RFC3339)), At: at}, true
}

// Backoff is the wait before retry n (1-based) of a failing step.
func (p Policy) Backoff(n int) time.Duration {
	d := p.BackoffBase
	for i := 1; i < n && d < p.BackoffMax; i++ {
		d *= 2
	}
	return min(d, p.BackoffMax)
}
