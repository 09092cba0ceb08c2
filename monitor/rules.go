package monitor

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Severity is how urgent an alert is.
type Severity string

const (
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Alert is a rule that fires.
type Alert struct {
	// Rule names the rule (also the Prometheus alert of examples/).
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Key tells apart two firings of one rule (a certificate, a target).
	Key     string `json:"key"`
	Summary string `json:"summary"`
	// Since is when the alert started firing (set by the Alerter).
	Since time.Time `json:"since,omitzero"`
}

// ID is the alert's identity across evaluations.
func (a Alert) ID() string { return a.Rule + "/" + a.Key }

// Facts are what the rules look at: the certificates, and the daemon's
// liveness.
type Facts struct {
	Now   time.Time
	Certs []Cert
	// Rotation: the scheduler's state (Enabled false: nobody rotates here).
	Rotation struct {
		Enabled     bool
		LastSuccess time.Time
		LastError   string
		// Halted maps purposes whose rotation stopped to why.
		Halted map[pki.Purpose]string
	}
	// Proof: the last end-to-end proof (Configured false: none runs).
	Proof struct {
		Configured  bool
		Ran         bool
		OK          bool
		FailedStep  string
		At          time.Time
		LastSuccess time.Time
	}
	Store struct {
		OK          bool
		LastSuccess time.Time
		ErrorKind   string
	}
	Lint struct {
		Checked  bool
		OK       bool
		Findings int
	}
	Probes       []ProbeResult
	FileProblems []FileProblem
}

// AddKeyset adds a keyset's facts: its certificates and its halted
// rotations.
func (f *Facts) AddKeyset(ks *keyset.Keyset) {
	f.Certs = append(f.Certs, KeysetCerts(ks)...)
	for _, v := range ks.Versions {
		if v.Halted != "" {
			if f.Rotation.Halted == nil {
				f.Rotation.Halted = map[pki.Purpose]string{}
			}
			f.Rotation.Halted[v.Purpose] = v.Halted
		}
	}
}

// Rules are the thresholds of the built-in alert rules.
type Rules struct {
	// Warning and Critical: how long before a certificate's expiry it
	// warns and turns critical. Defaults 28 and 14 days.
	Warning, Critical time.Duration
	// ProofMaxAge: a proof older than this warns. Default 25 hours.
	ProofMaxAge time.Duration
	// StoreDownFor: an unreachable store alerts after this long. Default
	// 10 minutes.
	StoreDownFor time.Duration
}

// WithDefaults fills in the zero thresholds.
func (r Rules) WithDefaults() Rules {
	if r.Warning <= 0 {
		r.Warning = 28 * 24 * time.Hour
	}
	if r.Critical <= 0 {
		r.Critical = 14 * 24 * time.Hour
	}
	if r.ProofMaxAge <= 0 {
		r.ProofMaxAge = 25 * time.Hour
	}
	if r.StoreDownFor <= 0 {
		r.StoreDownFor = 10 * time.Minute
	}
	return r
}

// Check refuses thresholds that contradict each other.
func (r Rules) Check() error {
	r = r.WithDefaults()
	if r.Critical >= r.Warning {
		return fmt.Errorf("the critical threshold (%v) must be shorter than the warning one (%v)", r.Critical, r.Warning)
	}
	return nil
}

// The rules' names.
const (
	RuleExpired            = "CertificateExpired"
	RuleExpiring           = "CertificateExpiringSoon"
	RuleRegistration       = "TransportRegistrationPending"
	RuleRotationFailing    = "RotationFailing"
	RuleRotationHalted     = "RotationHalted"
	RuleProofFailing       = "ProofFailing"
	RuleProofStale         = "ProofStale"
	RuleStoreUnreachable   = "StoreUnreachable"
	RuleJWKSLint           = "JWKSLintFailing"
	RuleProbeFailing       = "ProbeFailing"
	RuleWatchedFileProblem = "WatchedFileUnreadable"
)

// certName names a certificate in an alert.
func certName(c Cert) string {
	switch c.Source {
	case SourceKeyset:
		return fmt.Sprintf("the %s key %s", c.Purpose, c.Kid)
	case SourceJWKS:
		return fmt.Sprintf("%s (kid %s in %s)", c.Subject, c.Kid, c.Target)
	}
	return fmt.Sprintf("%s (%s %s)", c.Subject, c.Source, c.Target)
}

// watchedForExpiry: a managed key matters while it is (or is about to be)
// the one in use; a retiring one expiring is expected.
func watchedForExpiry(c Cert) bool {
	return c.Source != SourceKeyset || c.State == keyset.Active || c.State == keyset.AwaitingRegistration || c.State == keyset.Published
}

// Evaluate returns the alerts that fire on facts, most severe first.
func (r Rules) Evaluate(f Facts) []Alert {
	r = r.WithDefaults()
	var out []Alert
	add := func(rule string, sev Severity, key, format string, args ...any) {
		out = append(out, Alert{Rule: rule, Severity: sev, Key: key, Summary: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	for _, c := range f.Certs {
		if !watchedForExpiry(c) || seen[c.Source.key(c)] {
			continue
		}
		seen[c.Source.key(c)] = true
		left := c.NotAfter.Sub(f.Now)
		switch {
		case left <= 0:
			add(RuleExpired, Critical, c.Source.key(c), "%s expired %s ago (%s)", certName(c), days(-left), c.NotAfter.UTC().Format(time.RFC3339))
		case left <= r.Critical:
			add(RuleExpiring, Critical, c.Source.key(c), "%s expires in %s (%s)", certName(c), days(left), c.NotAfter.UTC().Format(time.RFC3339))
		case left <= r.Warning:
			add(RuleExpiring, Warning, c.Source.key(c), "%s expires in %s (%s)", certName(c), days(left), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	// A new transport certificate waits for PayNet's registration while
	// the one in use runs out.
	var active *Cert
	for i, c := range f.Certs {
		if c.Source == SourceKeyset && c.Purpose == pki.Transport && c.State == keyset.Active {
			active = &f.Certs[i]
		}
	}
	for _, c := range f.Certs {
		if c.Source != SourceKeyset || c.Purpose != pki.Transport || c.State != keyset.AwaitingRegistration || active == nil {
			continue
		}
		left := active.NotAfter.Sub(f.Now)
		sev := Severity("")
		switch {
		case left <= r.Critical:
			sev = Critical
		case left <= r.Warning:
			sev = Warning
		}
		if sev != "" {
			add(RuleRegistration, sev, c.Kid, "the transport certificate %s awaits registration with PayNet, and the one in use (%s) expires in %s: register it, then run ofmkeys confirm", c.Kid, active.Kid, days(left))
		}
	}
	if f.Rotation.Enabled && f.Rotation.LastError != "" {
		add(RuleRotationFailing, Warning, "all", "rotation passes are failing (%s); last success %s", f.Rotation.LastError, ago(f.Now, f.Rotation.LastSuccess))
	}
	for _, p := range slices.Sorted(maps.Keys(f.Rotation.Halted)) {
		add(RuleRotationHalted, Critical, string(p), "the %s rotation is halted: %s (fix it, then ofmkeys rotate or rollback)", p, f.Rotation.Halted[p])
	}
	if f.Proof.Configured {
		switch {
		case f.Proof.Ran && !f.Proof.OK:
			add(RuleProofFailing, Critical, "proof", "the end-to-end proof fails at %s", f.Proof.FailedStep)
		case f.Now.Sub(f.Proof.LastSuccess) > r.ProofMaxAge:
			add(RuleProofStale, Warning, "proof", "no proof has passed for %s (last %s)", days(f.Now.Sub(f.Proof.LastSuccess)), ago(f.Now, f.Proof.LastSuccess))
		}
	}
	if !f.Store.OK && f.Now.Sub(f.Store.LastSuccess) > r.StoreDownFor {
		add(RuleStoreUnreachable, Critical, "store", "the key store has not answered since %s (%s); the last good JWKS is served", ago(f.Now, f.Store.LastSuccess), orUnknown(f.Store.ErrorKind))
	}
	if f.Lint.Checked && !f.Lint.OK {
		add(RuleJWKSLint, Critical, "jwks", "the public JWKS fails its self-check (%d findings): peers may not use our keys", f.Lint.Findings)
	}
	for _, p := range f.Probes {
		if !p.OK {
			add(RuleProbeFailing, Warning, string(p.Kind)+" "+p.Target, "%s %s: %s", p.Kind, p.Target, p.Problem)
		}
	}
	for _, p := range f.FileProblems {
		add(RuleWatchedFileProblem, Warning, p.Path, "%s", p.Error)
	}
	sortAlerts(out)
	return out
}

// sortAlerts puts the most severe first, then by identity.
func sortAlerts(alerts []Alert) {
	slices.SortStableFunc(alerts, func(a, b Alert) int {
		if a.Severity != b.Severity {
			if a.Severity == Critical {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID(), b.ID())
	})
}

// key identifies a certificate for alerts: a managed key by kid, the rest
// by where they are and their thumbprint.
func (s Source) key(c Cert) string {
	if s == SourceKeyset {
		return "keyset " + c.Kid
	}
	return string(s) + " " + c.Target + " " + c.X5tS256
}

// days says a duration in days (or hours when under two days).
func days(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return days(now.Sub(t)) + " ago"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown error"
	}
	return s
}

// Level is the worst severity of alerts: "ok", "warning" or "critical".
func Level(alerts []Alert) string {
	level := "ok"
	for _, a := range alerts {
		if a.Severity == Critical {
			return "critical"
		}
		level = "warning"
	}
	return level
}
