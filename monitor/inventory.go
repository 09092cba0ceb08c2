// Package monitor watches every certificate a DC depends on and says, before
// anything breaks, what will: the managed keys, PEM certificates in watched
// files and folders, the certificates remote TLS endpoints present, and the
// x5c of remote JWKS (PayNet's). Rules turn what it knows, together with the
// daemon's liveness (rotation, proof, store, self-check), into alerts;
// notifiers send them (webhook, Slack, email); Status and RenderHTML give
// the one-screen answer to "are we OK?".
//
// The package reads certificates only: a file that holds a private key is
// skipped unread past its key block, and nothing it reports carries key
// material.
package monitor

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Source says where a certificate was found.
type Source string

const (
	SourceKeyset Source = "keyset" // a managed key version
	SourceFile   Source = "file"   // a PEM file in a watched path
	SourceTLS    Source = "tls"    // presented by a remote TLS endpoint
	SourceJWKS   Source = "jwks"   // in the x5c of a remote JWKS
)

// Cert is one certificate the monitor knows.
type Cert struct {
	Source Source `json:"source"`
	// Target is the file, URL or keyset the certificate came from.
	Target  string      `json:"target"`
	Purpose pki.Purpose `json:"purpose,omitempty"`
	Kid     string      `json:"kid,omitempty"`
	// State is a managed key version's state.
	State     keyset.State `json:"state,omitempty"`
	Subject   string       `json:"subject"`
	Issuer    string       `json:"issuer"`
	NotBefore time.Time    `json:"not_before"`
	NotAfter  time.Time    `json:"not_after"`
	// X5tS256 identifies the certificate.
	X5tS256 string `json:"x5t#S256"`
}

// DaysLeft is how many whole days the certificate has left at now
// (negative once expired).
func (c Cert) DaysLeft(now time.Time) int {
	d := c.NotAfter.Sub(now)
	if d < 0 {
		return -int((-d + 24*time.Hour - 1) / (24 * time.Hour))
	}
	return int(d / (24 * time.Hour))
}

func certOf(c *x509.Certificate, src Source, target string) Cert {
	sum := sha256.Sum256(c.Raw)
	return Cert{Source: src, Target: target, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		X5tS256: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// KeysetCerts lists the leaf certificates of a keyset's versions that are
// not retired.
func KeysetCerts(ks *keyset.Keyset) []Cert {
	var out []Cert
	for _, v := range ks.Versions {
		if v.State == keyset.Retired {
			continue
		}
		c := Cert{Source: SourceKeyset, Target: ks.DCID, Purpose: v.Purpose, Kid: v.Kid, State: v.State, NotBefore: v.NotBefore, NotAfter: v.NotAfter, X5tS256: v.X5tS256}
		if block, _ := pem.Decode([]byte(v.Chain)); block != nil {
			if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
				c.Subject, c.Issuer = leaf.Subject.String(), leaf.Issuer.String()
			}
		}
		out = append(out, c)
	}
	return out
}
