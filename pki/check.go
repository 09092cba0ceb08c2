package pki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinels of CheckCertificate; each error wraps exactly one of them.
var (
	// ErrKeyMismatch: the certificate does not certify the given key.
	ErrKeyMismatch = errors.New("certificate does not match the private key")
	// ErrProfile: key usage, extended key usage or signature algorithm
	// does not fit the purpose.
	ErrProfile = errors.New("certificate does not fit the purpose")
	// ErrChain: the chain is out of order or a link does not verify.
	ErrChain = errors.New("certificate chain is broken")
	// ErrNotValidNow: expired or not yet valid.
	ErrNotValidNow = errors.New("certificate is not valid now")
)

// CheckOptions say what CheckCertificate asks of a chain.
type CheckOptions struct {
	Purpose Purpose
	// Now is the moment of the check.
	Now time.Time
	// Key, when set, must be the leaf's key.
	Key *rsa.PrivateKey
	// AllowShortValidity skips the 12-month floor (sandbox only).
	AllowShortValidity bool
}

// CheckCertificate applies OFM's rules to a chain (leaf first) before it is
// stored: RSA size, key match, the purpose's profile, chain order and
// signatures, validity at Now, lifetime at issue. Policy is ours, not
// x509.Verify's: Verify would accept 1024-bit keys and knows no purposes.
func CheckCertificate(chain []*x509.Certificate, o CheckOptions) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificate", ErrChain)
	}
	leaf := chain[0]
	if err := CheckPublicKey(leaf.PublicKey); err != nil {
		return fmt.Errorf("certificate %s: %w", describe(leaf), err)
	}
	if o.Key != nil && !o.Key.PublicKey.Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: certificate %s certifies another key", ErrKeyMismatch, describe(leaf))
	}
	if len(chain) > 1 && leaf.IsCA {
		return fmt.Errorf("%w: certificate 1 (%s) is a CA certificate: give the chain leaf first, each certificate followed by its issuer", ErrChain, describe(leaf))
	}
	if err := CheckProfile(leaf, o.Purpose); err != nil {
		return err
	}
	for i, c := range chain {
		if o.Now.Before(c.NotBefore) {
			return fmt.Errorf("%w: certificate %d (%s) is not valid before %s", ErrNotValidNow, i+1, describe(c), c.NotBefore.UTC().Format(time.RFC3339))
		}
		if o.Now.After(c.NotAfter) {
			return fmt.Errorf("%w: certificate %d (%s) expired on %s", ErrNotValidNow, i+1, describe(c), c.NotAfter.UTC().Format(time.RFC3339))
		}
		if i == 0 {
			continue
		}
		child := chain[i-1]
		if !bytes.Equal(child.RawIssuer, c.RawSubject) {
			return fmt.Errorf("%w: certificate %d (%s) is not the issuer of certificate %d (issued by %s): give the chain leaf first, each certificate followed by its issuer",
				ErrChain, i+1, describe(c), i, child.Issuer)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return fmt.Errorf("%w: certificate %d (%s) is not a CA certificate", ErrChain, i+1, describe(c))
		}
		if err := child.CheckSignatureFrom(c); err != nil {
			return fmt.Errorf("%w: certificate %d (%s) did not sign certificate %d: %v", ErrChain, i+1, describe(c), i, err)
		}
	}
	return CheckValidity(leaf.NotBefore, leaf.NotAfter, o.AllowShortValidity)
}

// CheckProfile checks a leaf certificate against a purpose's profile.
func CheckProfile(c *x509.Certificate, p Purpose) error {
	prof := ProfileOf(p)
	switch c.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
	default:
		return fmt.Errorf("%w: certificate %s is signed with %s; OFM requires SHA-256 or stronger", ErrProfile, describe(c), c.SignatureAlgorithm)
	}
	// A CA certificate is no leaf, except a self-signed one: openssl's
	// default `req -x509` marks its output CA:TRUE, and sandbox starter
	// packs are made that way.
	if c.BasicConstraintsValid && c.IsCA && !SelfSigned(c) {
		return fmt.Errorf("%w: certificate %s is a CA certificate, not a %s certificate", ErrProfile, describe(c), p)
	}
	if c.KeyUsage != 0 && c.KeyUsage&prof.RequiredKeyUsage != prof.RequiredKeyUsage {
		return fmt.Errorf("%w: a %s certificate needs key usage %s; %s has %s",
			ErrProfile, p, keyUsageString(prof.RequiredKeyUsage), describe(c), keyUsageString(c.KeyUsage))
	}
	for _, want := range prof.ExtKeyUsage {
		if !slices.Contains(c.ExtKeyUsage, want) {
			return fmt.Errorf("%w: a %s certificate needs extended key usage %s; %s has %s",
				ErrProfile, p, extKeyUsageName(want), describe(c), extKeyUsagesString(c.ExtKeyUsage))
		}
	}
	return nil
}

func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q", c.Subject.String())
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageClientAuth:
		return "TLS Web Client Authentication"
	case x509.ExtKeyUsageServerAuth:
		return "TLS Web Server Authentication"
	case x509.ExtKeyUsageAny:
		return "Any Extended Key Usage"
	}
	return fmt.Sprintf("EKU(%d)", u)
}

func extKeyUsagesString(us []x509.ExtKeyUsage) string {
	if len(us) == 0 {
		return "none"
	}
	return strings.Join(ExtKeyUsageNames(us), ", ")
}

// SelfSigned reports whether c is signed by its own key under its own name.
// (Not CheckSignatureFrom: it refuses a parent that is not a CA, and a
// self-signed leaf is not one.)
func SelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
