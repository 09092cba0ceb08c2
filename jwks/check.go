package jwks

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
)

// CheckOptions say what Check asks beyond the rules every JWKS obeys.
type CheckOptions struct {
	// RequireSigAndEnc: OFM's DC JWKS must hold a "sig" and an "enc" key.
	RequireSigAndEnc bool
}

// privateMembers are JWK members that only private or symmetric keys have.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// rawJWK is a JWK as published, kept as raw members so that Check sees
// exactly what peers see.
type rawJWK map[string]json.RawMessage

func (k rawJWK) str(name string) (string, bool) {
	raw, ok := k[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Check applies ofmkeys' rules for a published JWKS to a document: JSON
// with a "keys" array; every key RSA ≥ 2048 with kty, use, alg (PS256 for
// sig, RSA-OAEP-256 for enc), a distinct kid, no private or symmetric
// member, an x5c chain whose leaf holds the same n/e, and an x5t#S256 (when
// present) that is the leaf's thumbprint.
func Check(doc []byte, o CheckOptions) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return fmt.Errorf("%w: not a JSON object: %v", ErrInvalidJWKS, err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return fmt.Errorf("%w: no \"keys\" member", ErrInvalidJWKS)
	}
	var keys []rawJWK
	if err := json.Unmarshal(rawKeys, &keys); err != nil {
		return fmt.Errorf("%w: \"keys\" is not an array of objects", ErrInvalidJWKS)
	}
	seen := map[string]bool{}
	uses := map[string]bool{}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			kid, _ := k.str("kid")
			return fmt.Errorf("%w: key %d (kid %q): %v", ErrInvalidJWKS, i+1, kid, err)
		}
		kid, _ := k.str("kid")
		if seen[kid] {
			return fmt.Errorf("%w: kid %q appears twice", ErrInvalidJWKS, kid)
		}
		seen[kid] = true
		use, _ := k.str("use")
		uses[use] = true
	}
	if o.RequireSigAndEnc && (!uses["sig"] || !uses["enc"]) {
		return fmt.Errorf("%w: OFM needs a signing (use sig) and an encryption (use enc) key; found uses %v", ErrInvalidJWKS, slices.Sorted(maps.Keys(uses)))
	}
	return nil
}

func checkKey(k rawJWK) error {
	for _, m := range privateMembers {
		if _, ok := k[m]; ok {
			return fmt.Errorf("private or symmetric member %q published", m)
		}
	}
	if kty, _ := k.str("kty"); kty != "RSA" {
		return fmt.Errorf("kty %q: OFM keys are RSA", kty)
	}
	kid, ok := k.str("kid")
	if !ok || !ValidKid(kid) {
		return fmt.Errorf("kid missing or not 1-128 characters of A-Z a-z 0-9 . _ : -")
	}
	use, _ := k.str("use")
	alg, _ := k.str("alg")
	switch {
	case use == "sig" && alg == string(SigAlg):
	case use == "enc" && alg == string(KeyAlg):
	case use == "":
		return fmt.Errorf("\"use\" missing")
	default:
		return fmt.Errorf("use %q with alg %q: OFM allows sig/PS256 and enc/RSA-OAEP-256", use, alg)
	}
	n, err := bigMember(k, "n")
	if err != nil {
		return err
	}
	e, err := bigMember(k, "e")
	if err != nil {
		return err
	}
	if n.BitLen() < 2048 {
		return fmt.Errorf("RSA-%d: OFM requires at least 2048 bits", n.BitLen())
	}
	var x5c []string
	if raw, ok := k["x5c"]; !ok || json.Unmarshal(raw, &x5c) != nil || len(x5c) == 0 {
		return fmt.Errorf("x5c missing: OFM peers read the certificate")
	}
	der, err := base64.StdEncoding.DecodeString(x5c[0])
	if err != nil {
		return fmt.Errorf("x5c[0] is not standard base64")
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("x5c[0] does not parse: %v", err)
	}
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.Cmp(n) != 0 || big.NewInt(int64(pub.E)).Cmp(e) != 0 {
		return fmt.Errorf("x5c[0] certifies another key than n/e")
	}
	if t, ok := k.str("x5t#S256"); ok {
		sum := sha256.Sum256(der)
		got, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !bytes.Equal(got, sum[:]) {
			return fmt.Errorf("x5t#S256 is not the SHA-256 thumbprint of x5c[0]")
		}
	}
	return nil
}

func bigMember(k rawJWK, name string) (*big.Int, error) {
	s, ok := k.str(name)
	if !ok || s == "" {
		return nil, fmt.Errorf("%q missing", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not unpadded base64url", name)
	}
	return new(big.Int).SetBytes(b), nil
}
