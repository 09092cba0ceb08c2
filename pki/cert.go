package pki

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"go.step.sm/crypto/x509util"
)

// Backdate is how far before "now" a certificate's notBefore is set, so
// that a peer whose clock runs a little behind accepts it at once.
const Backdate = 5 * time.Minute

// MinValidity is OFM's floor for a certificate's lifetime at issue.
const MinValidityMonths = 12

// DefaultValidityMonths is the lifetime of a self-signed certificate when
// none is asked for: OFM's 12 months plus a month of margin.
const DefaultValidityMonths = 13

// ErrShortValidity is returned for a certificate whose lifetime is under
// MinValidityMonths where OFM requires it.
var ErrShortValidity = errors.New("certificate validity too short")

// Subject is the distinguished name of the DC's certificates.
type Subject struct {
	// Organisation is O, the DC's legal name. Required.
	Organisation string
	// CommonName is CN; ofmkeys sets it to the client_id unless configured.
	CommonName string
	// Country is C, two letters; empty means none.
	Country string
}

func (s Subject) name() (pkix.Name, error) {
	if s.Organisation == "" {
		return pkix.Name{}, errors.New("certificate subject needs an organisation (O)")
	}
	if s.CommonName == "" {
		return pkix.Name{}, errors.New("certificate subject needs a common name (CN)")
	}
	n := pkix.Name{Organization: []string{s.Organisation}, CommonName: s.CommonName}
	if s.Country != "" {
		n.Country = []string{s.Country}
	}
	return n, nil
}

// Template describes a certificate to make for a key.
type Template struct {
	Purpose Purpose
	Subject Subject
	// Now is the moment of issue; notBefore is Now - Backdate.
	Now time.Time
	// NotAfter ends the validity. Zero means Now + DefaultValidityMonths.
	NotAfter time.Time
	// AllowShortValidity permits a lifetime under MinValidityMonths
	// (sandbox only: OFM's sandbox accepts shorter certificates).
	AllowShortValidity bool
}

// ValidityEnd is the notAfter a template yields.
func (t Template) ValidityEnd() time.Time {
	if t.NotAfter.IsZero() {
		return t.Now.UTC().Truncate(time.Second).AddDate(0, DefaultValidityMonths, 0)
	}
	return t.NotAfter.UTC().Truncate(time.Second)
}

// CheckValidity refuses a lifetime under OFM's 12 months unless allowed.
func CheckValidity(notBefore, notAfter time.Time, allowShort bool) error {
	if !notAfter.After(notBefore) {
		return fmt.Errorf("%w: notAfter %s is not after notBefore %s", ErrShortValidity, notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	if allowShort {
		return nil
	}
	if min := notBefore.AddDate(0, MinValidityMonths, 0); notAfter.Before(min) {
		return fmt.Errorf("%w: valid until %s, under the %d months OFM requires (from %s); sandbox only: allow shorter validity explicitly",
			ErrShortValidity, notAfter.Format(time.DateOnly), MinValidityMonths, notBefore.Format(time.DateOnly))
	}
	return nil
}

// SelfSign makes a self-signed certificate for key with the purpose's
// profile, as OFM's sandbox accepts. The result is re-parsed and checked.
func SelfSign(key *rsa.PrivateKey, t Template) (*x509.Certificate, error) {
	if err := CheckPublicKey(&key.PublicKey); err != nil {
		return nil, err
	}
	name, err := t.Subject.name()
	if err != nil {
		return nil, err
	}
	notBefore := t.Now.UTC().Truncate(time.Second).Add(-Backdate)
	notAfter := t.ValidityEnd()
	if err := CheckValidity(notBefore, notAfter, t.AllowShortValidity); err != nil {
		return nil, err
	}
	prof := ProfileOf(t.Purpose)
	tmpl := &x509.Certificate{
		Subject:               name,
		Issuer:                name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              prof.KeyUsage,
		ExtKeyUsage:           prof.ExtKeyUsage,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	// x509util draws a 128-bit random serial and the subject key id.
	cert, err := x509util.CreateCertificate(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create %s certificate: %w", t.Purpose, err)
	}
	if err := CheckProfile(cert, t.Purpose); err != nil {
		return nil, fmt.Errorf("self-signed %s certificate: %w", t.Purpose, err)
	}
	return cert, nil
}

// CreateCSR makes a PKCS#10 request for key with the purpose's profile,
// for a CA (PayNet in production) to sign. It returns the DER.
func CreateCSR(key *rsa.PrivateKey, purpose Purpose, subject Subject) ([]byte, error) {
	if err := CheckPublicKey(&key.PublicKey); err != nil {
		return nil, err
	}
	name, err := subject.name()
	if err != nil {
		return nil, err
	}
	exts, err := profileExtensions(ProfileOf(purpose))
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{
		Subject:            name,
		SignatureAlgorithm: x509.SHA256WithRSA,
		ExtraExtensions:    exts,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create %s CSR: %w", purpose, err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("re-parse %s CSR: %w", purpose, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("re-check %s CSR: %w", purpose, err)
	}
	return der, nil
}

// profileExtensions encodes a profile's key usage and EKU as request
// extensions, so the CA sees what the DC asks for.
func profileExtensions(p Profile) ([]pkix.Extension, error) {
	ku, err := x509util.KeyUsage(p.KeyUsage).Extension()
	if err != nil {
		return nil, fmt.Errorf("encode key usage: %w", err)
	}
	exts := []pkix.Extension{toPKIX(ku)}
	if len(p.ExtKeyUsage) > 0 {
		eku, err := x509util.ExtKeyUsage(p.ExtKeyUsage).Extension(nil)
		if err != nil {
			return nil, fmt.Errorf("encode extended key usage: %w", err)
		}
		exts = append(exts, toPKIX(eku))
	}
	return exts, nil
}

func toPKIX(e x509util.Extension) pkix.Extension {
	return pkix.Extension{Id: asn1.ObjectIdentifier(e.ID), Critical: e.Critical, Value: e.Value}
}
