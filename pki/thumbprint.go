package pki

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// KidPolicy says how a key's kid is derived (OFM-SPEC §2 [choice]).
type KidPolicy string

const (
	// KidX5tS256 is the base64url (unpadded) SHA-256 of the certificate
	// DER: the "certificate thumbprint" of PayNet's guide. The default.
	KidX5tS256 KidPolicy = "x5t#S256"
	// KidJWKThumbprint is the RFC 7638 SHA-256 JWK thumbprint of the key.
	KidJWKThumbprint KidPolicy = "jwk-thumbprint"
	// KidX5t is the base64url SHA-1 of the certificate DER (legacy x5t).
	KidX5t KidPolicy = "x5t"
)

// KidPolicies lists the policies ofmkeys knows.
var KidPolicies = []KidPolicy{KidX5tS256, KidJWKThumbprint, KidX5t}

// ParseKidPolicy accepts a policy name; empty means the default.
func ParseKidPolicy(s string) (KidPolicy, error) {
	if s == "" {
		return KidX5tS256, nil
	}
	for _, p := range KidPolicies {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown kid policy %q: want x5t#S256 (default), jwk-thumbprint or x5t", s)
}

// Kid derives the kid of a certificate under a policy.
func (p KidPolicy) Kid(cert *x509.Certificate) (string, error) {
	switch p {
	case KidX5tS256, "":
		return X5tS256(cert), nil
	case KidX5t:
		return X5t(cert), nil
	case KidJWKThumbprint:
		rk, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return "", fmt.Errorf("%w: a %T key; OFM requires RSA", ErrWeakKey, cert.PublicKey)
		}
		return JWKThumbprint(rk), nil
	}
	return "", fmt.Errorf("unknown kid policy %q", string(p))
}

var b64 = base64.RawURLEncoding

// X5tS256 is the x5t#S256 thumbprint (RFC 7515 §4.1.8, RFC 8705 cnf): the
// unpadded base64url SHA-256 of the certificate DER.
func X5tS256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return b64.EncodeToString(sum[:])
}

// X5t is the legacy x5t thumbprint: unpadded base64url SHA-1 of the DER.
// SHA-1 is only an identifier here, never a signature.
func X5t(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return b64.EncodeToString(sum[:])
}

// JWKThumbprint is the RFC 7638 SHA-256 thumbprint of an RSA public key.
func JWKThumbprint(pub *rsa.PublicKey) string {
	// RFC 7638 §3.2: required members only, lexicographic order, no spaces.
	doc, _ := json.Marshal(struct {
		E   string `json:"e"`
		Kty string `json:"kty"`
		N   string `json:"n"`
	}{
		E:   b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		Kty: "RSA",
		N:   b64.EncodeToString(pub.N.Bytes()),
	})
	sum := sha256.Sum256(doc)
	return b64.EncodeToString(sum[:])
}

// FingerprintSHA256 is the SHA-256 of the DER as colon-separated upper-case
// hex, the form `openssl x509 -fingerprint -sha256` prints.
func FingerprintSHA256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	var sb strings.Builder
	for i, b := range sum {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", b)
	}
	return sb.String()
}
