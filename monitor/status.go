package monitor

import (
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// Status is the one-screen answer to "are we OK?": every key, its days
// left, state and next transition, the last proof, the alerts firing, and
// the other certificates watched. `ofmkeys status --json`, /status.json
// and the /status page show it.
type Status struct {
	DCID      string          `json:"dc_id"`
	Level     string          `json:"level"` // ok, warning, critical
	Generated time.Time       `json:"generated_at"`
	Keys      []KeyRow        `json:"keys"`
	Next      []rotation.Step `json:"next,omitempty"`
	Proof     *ProofView      `json:"proof,omitempty"`
	Alerts    []Alert         `json:"alerts"`
	// Watched are the certificates of files, TLS endpoints and remote JWKS.
	Watched      []Cert        `json:"watched,omitempty"`
	Probes       []ProbeResult `json:"probes,omitempty"`
	FileProblems []FileProblem `json:"file_problems,omitempty"`
	// Notes say what this status could not see (a daemon not reachable).
	Notes []string `json:"notes,omitempty"`
}

// KeyRow is one key version.
type KeyRow struct {
	Purpose   pki.Purpose         `json:"purpose"`
	Kid       string              `json:"kid"`
	State     keyset.State        `json:"state"`
	NotBefore time.Time           `json:"not_before"`
	NotAfter  time.Time           `json:"not_after"`
	DaysLeft  int                 `json:"days_left"`
	RenewAt   time.Time           `json:"renew_at,omitzero"` // when the rotation policy renews it (active keys)
	Halted    string              `json:"halted,omitempty"`
	History   []keyset.Transition `json:"history,omitempty"`
}

// ProofView is the last proof.
type ProofView struct {
	OK          bool        `json:"ok"`
	At          time.Time   `json:"at"`
	LastSuccess time.Time   `json:"last_success,omitzero"`
	Steps       []ProofStep `json:"steps"`
}

// ProofStep is one step of a proof.
type ProofStep struct {
	Name     string        `json:"name"`
	OK       bool          `json:"ok"`
	Skipped  bool          `json:"skipped,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Detail   string        `json:"detail,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// KeyRows describes a keyset's versions, each with its renewal time under
// pol; retired versions are kept for the timeline.
func KeyRows(ks *keyset.Keyset, pol rotation.Policy, now time.Time) []KeyRow {
	pol = pol.WithDefaults()
	var out []KeyRow
	for _, v := range ks.Versions {
		r := KeyRow{Purpose: v.Purpose, Kid: v.Kid, State: v.State, NotBefore: v.NotBefore, NotAfter: v.NotAfter,
			DaysLeft: Cert{NotAfter: v.NotAfter}.DaysLeft(now), Halted: v.Halted, History: v.History}
		if v.State == keyset.Active {
			r.RenewAt, _ = pol.RenewalTime(v.Kid, v.NotBefore, v.NotAfter)
		}
		out = append(out, r)
	}
	return out
}
