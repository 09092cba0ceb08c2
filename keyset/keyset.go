// Package keyset is the DC's keyset: the model of DESIGN.md (a keyset of
// three purposes, each a list of key versions with states) as it is stored
// through keystore, and the operations that make and change it: Create (the
// self-signed sandbox set), NewCSR and Import (CA-issued or existing
// certificates), and the readers (Load, LoadKey) that hand out private keys
// only after re-checking them against their certificates.
//
// The keyset document (keystore.StatePath) holds only public data and is
// written with compare-and-set on its version; private keys live one per
// path (keystore.KeyPath), written once, before the document names them.
package keyset

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/ofmkeys/ofmkeys/pki"
)

// State is where a key version is in its lifecycle (DESIGN.md).
type State string

const (
	Staged               State = "staged"
	AwaitingRegistration State = "awaiting-registration"
	Published            State = "published"
	Active               State = "active"
	Retiring             State = "retiring"
	Retired              State = "retired"
)

// Source says where a version's certificate came from.
type Source string

const (
	SelfSigned Source = "self-signed"
	CAIssued   Source = "ca-issued" // for a key made here (ofmkeys csr)
	Imported   Source = "imported"  // key and certificate made elsewhere
)

// Environment is the OFM environment a keyset is for.
type Environment string

const (
	// Sandbox accepts self-signed and short-lived certificates.
	Sandbox Environment = "sandbox"
	// Production accepts only CA-issued certificates valid ≥ 12 months.
	Production Environment = "production"
)

// ParseEnvironment accepts an environment name; empty means sandbox.
func ParseEnvironment(s string) (Environment, error) {
	switch Environment(s) {
	case "", Sandbox:
		return Sandbox, nil
	case Production:
		return Production, nil
	}
	return "", fmt.Errorf("unknown environment %q: want sandbox or production", s)
}

// Errors of this package.
var (
	// ErrNoKeyset: the store holds no keyset (for that dc_id).
	ErrNoKeyset = errors.New("no keyset")
	// ErrExists: the keyset or the version already exists.
	ErrExists = errors.New("already exists")
	// ErrNoVersion: no version matches a purpose or kid.
	ErrNoVersion = errors.New("no such key version")
	// ErrIntegrity: the store's contents contradict each other (a key
	// named by the keyset is missing or does not match its certificate).
	ErrIntegrity = errors.New("keyset integrity")
)

// FormatVersion is the version of the stored documents' layout.
const FormatVersion = 1

// Keyset is the state document of one DC.
type Keyset struct {
	Format       int           `json:"format"`
	DCID         string        `json:"dc_id"`
	ClientID     string        `json:"client_id"`
	Organisation string        `json:"organisation"`
	CommonName   string        `json:"common_name"`
	Environment  Environment   `json:"environment"`
	KidPolicy    pki.KidPolicy `json:"kid_policy"`
	Versions     []Version     `json:"versions"`
	Pending      []Pending     `json:"pending,omitempty"`
	// Audit is the append-only event log. It lives in the keyset document
	// so that every event is written in the same compare-and-set as the
	// change it records: no change without its event, no event without it.
	Audit     []AuditEvent `json:"audit,omitempty"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// AuditEvent records who changed what, when and why.
type AuditEvent struct {
	Seq     int64       `json:"seq"`
	At      time.Time   `json:"at"`
	Actor   string      `json:"actor"`
	Action  string      `json:"action"` // generate, import, publish, activate, retire, destroy, confirm, rollback, …
	Purpose pki.Purpose `json:"purpose,omitempty"`
	Kid     string      `json:"kid,omitempty"`
	Reason  string      `json:"reason,omitempty"`
}

// Record appends an audit event.
func (ks *Keyset) Record(at time.Time, actor, action string, p pki.Purpose, kid, reason string) {
	var seq int64 = 1
	if n := len(ks.Audit); n > 0 {
		seq = ks.Audit[n-1].Seq + 1
	}
	ks.Audit = append(ks.Audit, AuditEvent{Seq: seq, At: at.UTC(), Actor: actor, Action: action, Purpose: p, Kid: kid, Reason: reason})
}

// Version is one key version: public facts only.
type Version struct {
	Kid       string      `json:"kid"`
	Purpose   pki.Purpose `json:"purpose"`
	State     State       `json:"state"`
	Source    Source      `json:"source"`
	NotBefore time.Time   `json:"not_before"`
	NotAfter  time.Time   `json:"not_after"`
	X5tS256   string      `json:"x5t#S256"`
	// Chain is the certificate chain as PEM, leaf first.
	Chain     string       `json:"chain"`
	CreatedAt time.Time    `json:"created_at"`
	History   []Transition `json:"history"`
	// Halted, when set, stops the rotation at this version: why (a failed
	// proof). A new rotation or a rollback clears it.
	Halted string `json:"halted,omitempty"`
}

// Transition records a state change.
type Transition struct {
	State  State     `json:"state"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Pending is a key waiting for its CA-issued certificate.
type Pending struct {
	// ID is the RFC 7638 thumbprint of the public key.
	ID        string      `json:"id"`
	Purpose   pki.Purpose `json:"purpose"`
	CreatedAt time.Time   `json:"created_at"`
	// CSR is the request as PEM, to hand to the CA again if needed.
	CSR string `json:"csr"`
}

// Since is when the version last entered state st (zero if never).
func (v *Version) Since(st State) time.Time {
	for i := len(v.History) - 1; i >= 0; i-- {
		if v.History[i].State == st {
			return v.History[i].At
		}
	}
	return time.Time{}
}

// Transition moves v to st at now, recording why.
func (v *Version) Transition(st State, now time.Time, reason string) {
	v.State = st
	v.History = append(v.History, Transition{State: st, At: now.UTC(), Reason: reason})
}

// Certificates parses the version's chain.
func (v *Version) Certificates() ([]*x509.Certificate, error) {
	chain, err := pki.ParseCertificates([]byte(v.Chain))
	if err != nil {
		return nil, fmt.Errorf("%w: %s key %s: stored chain: %v", ErrIntegrity, v.Purpose, v.Kid, err)
	}
	return chain, nil
}

// DaysLeft is the whole days until NotAfter at now (negative once expired).
func (v *Version) DaysLeft(now time.Time) int {
	return int(v.NotAfter.Sub(now).Hours() / 24)
}

// Active returns the purpose's active version, or nil.
func (ks *Keyset) Active(p pki.Purpose) *Version {
	for i := range ks.Versions {
		if v := &ks.Versions[i]; v.Purpose == p && v.State == Active {
			return v
		}
	}
	return nil
}

// Find returns the versions whose kid is kid. Kids can repeat across
// purposes under some policies, so it returns a slice.
func (ks *Keyset) Find(kid string) []*Version {
	var out []*Version
	for i := range ks.Versions {
		if ks.Versions[i].Kid == kid {
			out = append(out, &ks.Versions[i])
		}
	}
	return out
}

// Select finds one version by purpose (its active version) or by kid.
func (ks *Keyset) Select(purposeOrKid string) (*Version, error) {
	if p, err := pki.ParsePurpose(purposeOrKid); err == nil {
		if v := ks.Active(p); v != nil {
			return v, nil
		}
		return nil, fmt.Errorf("%w: the %s purpose has no active key", ErrNoVersion, p)
	}
	found := ks.Find(purposeOrKid)
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no purpose or kid %q in keyset %s", ErrNoVersion, purposeOrKid, ks.DCID)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("kid %q names %d versions: select by purpose instead", purposeOrKid, len(found))
}

// Decryptors lists the encryption versions whose private keys may still
// open a JWE, preferred first: active, then retiring (recently replaced),
// then published (about to become preferred).
func (ks *Keyset) Decryptors() []*Version {
	var out []*Version
	for _, st := range []State{Active, Retiring, Published} {
		for i := range ks.Versions {
			if v := &ks.Versions[i]; v.Purpose == pki.Encryption && v.State == st {
				out = append(out, v)
			}
		}
	}
	return out
}

// Sorted returns the versions in display order: by purpose, then active,
// published, staged…, then newest first.
func (ks *Keyset) Sorted() []Version {
	rank := map[State]int{Active: 0, Published: 1, AwaitingRegistration: 2, Staged: 3, Retiring: 4, Retired: 5}
	out := slices.Clone(ks.Versions)
	slices.SortStableFunc(out, func(a, b Version) int {
		if a.Purpose != b.Purpose {
			return slices.Index(pki.Purposes, a.Purpose) - slices.Index(pki.Purposes, b.Purpose)
		}
		if rank[a.State] != rank[b.State] {
			return rank[a.State] - rank[b.State]
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return out
}

// EarliestExpiry is the version in use (not retired) that expires first:
// OFM-SPEC §9.4, always report the earliest deadline.
func (ks *Keyset) EarliestExpiry() *Version {
	var first *Version
	for i := range ks.Versions {
		v := &ks.Versions[i]
		if v.State == Retired {
			continue
		}
		if first == nil || v.NotAfter.Before(first.NotAfter) {
			first = v
		}
	}
	return first
}

// Settings describe the DC a keyset belongs to.
type Settings struct {
	DCID         string
	ClientID     string
	Organisation string
	// CommonName of the certificates; empty means ClientID.
	CommonName  string
	Environment Environment
	KidPolicy   pki.KidPolicy
}

var (
	// dcIDRE: OFM's dc_id is 24 hex characters; we accept any id that is a
	// safe path segment, and warn elsewhere about unusual shapes.
	dcIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
)

// Check validates settings before anything is made.
func (s *Settings) Check() error {
	if !dcIDRE.MatchString(s.DCID) {
		return fmt.Errorf("dc_id %q: want 1-64 characters of A-Z a-z 0-9 _ - (OFM's are 24 hex characters)", s.DCID)
	}
	if s.ClientID == "" || len(s.ClientID) > 256 {
		return errors.New("client_id is required (OFM's are UUIDs)")
	}
	if s.Organisation == "" {
		return errors.New("organisation is required: it becomes O= in every certificate")
	}
	if s.CommonName == "" {
		s.CommonName = s.ClientID
	}
	var err error
	if s.Environment, err = ParseEnvironment(string(s.Environment)); err != nil {
		return err
	}
	if s.KidPolicy, err = pki.ParseKidPolicy(string(s.KidPolicy)); err != nil {
		return err
	}
	return nil
}

func (ks *Keyset) subject() pki.Subject {
	return pki.Subject{Organisation: ks.Organisation, CommonName: ks.CommonName}
}
