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
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/pki"
)

// CheckOptions say what Check asks beyond the rules every JWKS obeys.
type CheckOptions struct {
	// RequireSigAndEnc: OFM's DC JWKS must hold a "sig" and an "enc" key.
	RequireSigAndEnc bool
}

// Check applies ofmkeys' rules for a published JWKS to a document and
// returns the first violation: JSON with a "keys" array; every key RSA ≥
// 2048 with kty, use, alg (PS256 for sig, RSA-OAEP-256 for enc), a distinct
// kid, no private or symmetric member, an x5c chain whose leaf holds the
// same n/e, and an x5t#S256 (when present) that is the leaf's thumbprint.
func Check(doc []byte, o CheckOptions) error {
	if fs := Lint(doc, LintOptions{RequireSigAndEnc: o.RequireSigAndEnc}); len(fs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidJWKS, fs[0])
	}
	return nil
}

// LintOptions add the rules that need context to Check's.
type LintOptions struct {
	RequireSigAndEnc bool
	// KidPolicy, when set, must be how every kid was derived.
	KidPolicy pki.KidPolicy
	// Now, when set, is the moment certificates must be valid at.
	Now time.Time
	// MinValidity requires 12 months of validity at issue (production).
	MinValidity bool
	// Header holds the HTTP response headers when the JWKS was fetched;
	// then max-age ≤ 900 and the media type are checked too.
	Header http.Header
}

// Finding is one rule a JWKS breaks.
type Finding struct {
	Rule    string `json:"rule"`
	Kid     string `json:"kid,omitempty"`
	Key     int    `json:"key,omitempty"` // 1-based position, 0 for the document
	Message string `json:"message"`
}

func (f Finding) String() string {
	if f.Key == 0 {
		return f.Message
	}
	return fmt.Sprintf("key %d (kid %q): %s", f.Key, f.Kid, f.Message)
}

// privateMembers are JWK members that only private or symmetric keys have.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// rawJWK is a JWK as published, kept as raw members so that the rules see
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

// Lint applies every rule the OpenID FAPI conformance suite applies to a
// client JWKS, with OFM's algorithms, and returns all findings (none: the
// JWKS passes).
func Lint(doc []byte, o LintOptions) []Finding {
	var out []Finding
	add := func(rule string, key int, kid, format string, args ...any) {
		out = append(out, Finding{Rule: rule, Key: key, Kid: kid, Message: fmt.Sprintf(format, args...)})
	}
	if o.Header != nil {
		lintHeaders(o.Header, add)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		add("json", 0, "", "not a JSON object: %v", err)
		return out
	}
	rawKeys, ok := top["keys"]
	if !ok {
		add("json", 0, "", "no \"keys\" member")
		return out
	}
	var keys []rawJWK
	if err := json.Unmarshal(rawKeys, &keys); err != nil {
		add("json", 0, "", "\"keys\" is not an array of objects")
		return out
	}
	seen := map[string]int{}
	uses := map[string]bool{}
	for i, k := range keys {
		n := i + 1
		kid, _ := k.str("kid")
		for _, f := range lintKey(k, o) {
			add(f.Rule, n, kid, "%s", f.Message)
		}
		if first, dup := seen[kid]; dup && kid != "" {
			add("kid-unique", n, kid, "kid %q appears twice (keys %d and %d)", kid, first, n)
		}
		seen[kid] = n
		use, _ := k.str("use")
		uses[use] = true
	}
	if o.RequireSigAndEnc && (!uses["sig"] || !uses["enc"]) {
		add("sig-and-enc", 0, "", "OFM needs a signing (use sig) and an encryption (use enc) key; found uses %v", slices.Sorted(maps.Keys(uses)))
	}
	return out
}

func lintKey(k rawJWK, o LintOptions) []Finding {
	var out []Finding
	bad := func(rule, format string, args ...any) {
		out = append(out, Finding{Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	for _, m := range privateMembers {
		if _, ok := k[m]; ok {
			bad("private-member", "private or symmetric member %q published", m)
		}
	}
	if kty, _ := k.str("kty"); kty != "RSA" {
		bad("kty", "kty %q: OFM keys are RSA", kty)
		return out
	}
	if kid, ok := k.str("kid"); !ok || !ValidKid(kid) {
		bad("kid", "kid missing or not 1-128 characters of A-Z a-z 0-9 . _ : -")
	}
	use, _ := k.str("use")
	alg, _ := k.str("alg")
	switch {
	case use == "sig" && alg == string(SigAlg):
	case use == "enc" && alg == string(KeyAlg):
	case use == "":
		bad("use", "\"use\" missing")
	default:
		bad("alg", "use %q with alg %q: OFM allows sig/PS256 and enc/RSA-OAEP-256", use, alg)
	}
	n, errN := bigMember(k, "n")
	e, errE := bigMember(k, "e")
	for _, err := range []error{errN, errE} {
		if err != nil {
			bad("key", "%v", err)
		}
	}
	if errN != nil || errE != nil {
		return out
	}
	if n.BitLen() < pki.MinRSABits {
		bad("key-size", "RSA-%d: OFM requires at least %d bits", n.BitLen(), pki.MinRSABits)
	}
	var x5c []string
	if raw, ok := k["x5c"]; !ok || json.Unmarshal(raw, &x5c) != nil || len(x5c) == 0 {
		bad("x5c", "x5c missing: OFM peers read the certificate")
		return out
	}
	der, err := base64.StdEncoding.DecodeString(x5c[0])
	if err != nil {
		bad("x5c", "x5c[0] is not standard base64")
		return out
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		bad("x5c", "x5c[0] does not parse: %v", err)
		return out
	}
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.Cmp(n) != 0 || big.NewInt(int64(pub.E)).Cmp(e) != 0 {
		bad("x5c", "x5c[0] certifies another key than n/e")
	}
	if t, ok := k.str("x5t#S256"); ok {
		sum := sha256.Sum256(der)
		got, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !bytes.Equal(got, sum[:]) {
			bad("x5t#S256", "x5t#S256 is not the SHA-256 thumbprint of x5c[0]")
		}
	}
	if o.KidPolicy != "" {
		kid, _ := k.str("kid")
		if want, err := o.KidPolicy.Kid(leaf); err == nil && want != kid {
			bad("kid-policy", "kid is not the %s of the certificate (want %s)", o.KidPolicy, want)
		}
	}
	if !o.Now.IsZero() && (o.Now.Before(leaf.NotBefore) || o.Now.After(leaf.NotAfter)) {
		bad("validity", "certificate valid %s to %s, not now", leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly))
	}
	if o.MinValidity {
		if err := pki.CheckValidity(leaf.NotBefore, leaf.NotAfter, false); err != nil {
			bad("validity", "%v", err)
		}
	}
	return out
}

var maxAgeRE = regexp.MustCompile(`(?i)(?:^|,)\s*max-age\s*=\s*"?([0-9]+)"?`)

func lintHeaders(h http.Header, add func(rule string, key int, kid, format string, args ...any)) {
	cc := h.Get("Cache-Control")
	if m := maxAgeRE.FindStringSubmatch(cc); m == nil {
		add("cache-control", 0, "", "Cache-Control %q has no max-age: OFM consumers cache for up to 900 s", cc)
	} else if age, _ := strconv.Atoi(m[1]); age > int(MaxCacheAge/time.Second) {
		add("cache-control", 0, "", "Cache-Control max-age=%d is over the 900 s OFM consumers cache for", age)
	}
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	if ct = strings.TrimSpace(ct); ct != MediaJWKSet && ct != MediaJSON {
		add("content-type", 0, "", "Content-Type %q: want %s or %s", ct, MediaJWKSet, MediaJSON)
	}
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
