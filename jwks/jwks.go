// Package jwks is ofmkeys' thin layer over go-jose v4: it builds the DC's
// public JWKS from a keyset (Build, Marshal), checks a JWKS document
// (Check), and does the JOSE operations the CLI and the OFM checks need
// with OFM's algorithms only (Sign, Verify, Encrypt, Decrypt).
//
// Only public keys ever reach a JWKS: Build starts from certificates, never
// from private keys, and Check refuses any private member.
package jwks

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

// OFM's algorithms (OFM-SPEC §1): the only ones ofmkeys signs, verifies,
// encrypts or decrypts with.
const (
	SigAlg = jose.PS256
	KeyAlg = jose.RSA_OAEP_256
	EncAlg = jose.A256GCM
)

// Options shape the published JWKS.
type Options struct {
	// PublishTransport also publishes the transport key (use "sig" is not
	// right for it, so it gets no use/alg). OFM registers transport
	// certificates out of band; the default (false) leaves it out.
	PublishTransport bool
}

// published reports whether a version belongs in the JWKS (DESIGN.md):
// signing keys from publication until withdrawn (retiring keys stay for
// verifiers); encryption keys while peers may encrypt to them.
func published(v *keyset.Version, o Options) bool {
	switch v.Purpose {
	case pki.Signing:
		return v.State == keyset.Published || v.State == keyset.Active || v.State == keyset.Retiring
	case pki.Encryption:
		return v.State == keyset.Published || v.State == keyset.Active
	case pki.Transport:
		return o.PublishTransport && v.State == keyset.Active
	}
	return false
}

// Build makes the public JWKS of a keyset: signing keys (use sig, alg
// PS256), then encryption keys (use enc, alg RSA-OAEP-256), each purpose's
// active key first, since senders encrypt to the first "enc" key they find.
func Build(ks *keyset.Keyset, o Options) (*jose.JSONWebKeySet, error) {
	set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, v := range ks.Sorted() {
		if !published(&v, o) {
			continue
		}
		chain, err := v.Certificates()
		if err != nil {
			return nil, err
		}
		jwk, err := publicJWK(&v, chain)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set, nil
}

func publicJWK(v *keyset.Version, chain []*x509.Certificate) (jose.JSONWebKey, error) {
	pub, ok := chain[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return jose.JSONWebKey{}, fmt.Errorf("%s key %s: %w", v.Purpose, v.Kid, pki.ErrWeakKey)
	}
	sum := sha256.Sum256(chain[0].Raw)
	jwk := jose.JSONWebKey{
		Key:                         pub,
		KeyID:                       v.Kid,
		Certificates:                chain,
		CertificateThumbprintSHA256: sum[:],
	}
	switch v.Purpose {
	case pki.Signing:
		jwk.Use, jwk.Algorithm = "sig", string(SigAlg)
	case pki.Encryption:
		jwk.Use, jwk.Algorithm = "enc", string(KeyAlg)
	}
	return jwk, nil
}

// Marshal renders a keyset's JWKS as indented JSON and checks the result
// with Check before returning it.
func Marshal(ks *keyset.Keyset, o Options) ([]byte, error) {
	set, err := Build(ks, o)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal JWKS: %w", err)
	}
	if err := Check(out, CheckOptions{RequireSigAndEnc: true}); err != nil {
		return nil, fmt.Errorf("the JWKS built from keyset %s fails its own check: %w", ks.DCID, err)
	}
	return append(out, '\n'), nil
}

// ErrInvalidJWKS wraps every reason Check refuses a document.
var ErrInvalidJWKS = errors.New("invalid JWKS")
