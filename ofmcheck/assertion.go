package ofmcheck

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime is OFM's ceiling for exp - iat (OFM-SPEC §3).
const MaxAssertionLifetime = 600 * time.Second

// AssertionClaims are a private_key_jwt client assertion's claims.
type AssertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

// ClientAssertion signs a private_key_jwt assertion: iss = sub =
// clientID, aud (the issuer by default in OFM, or the token endpoint),
// iat = now, exp = now + lifetime (at most 600 s), and a new jti on every
// call, so a retried request never reuses one.
func ClientAssertion(key *rsa.PrivateKey, kid, clientID, aud string, now time.Time, lifetime time.Duration) (string, error) {
	if lifetime <= 0 || lifetime > MaxAssertionLifetime {
		return "", fmt.Errorf("client assertion lifetime %v: OFM allows up to %v", lifetime, MaxAssertionLifetime)
	}
	claims := AssertionClaims{Iss: clientID, Sub: clientID, Aud: aud, Iat: now.Unix(), Exp: now.Add(lifetime).Unix(), Jti: NewUUID()}
	payload, _ := json.Marshal(claims)
	return jwks.Sign(key, kid, payload, false)
}

// Sentinel errors of the checks.
var (
	// ErrAssertion: a client assertion breaks a rule.
	ErrAssertion = errors.New("invalid client assertion")
	// ErrReplay: a jti was seen before.
	ErrReplay = errors.New("jti already used")
)

// AssertionRules are what the authorization server expects.
type AssertionRules struct {
	ClientID string
	// Audiences are the acceptable aud values (issuer and/or token endpoint).
	Audiences []string
	Now       time.Time
	// Skew is the tolerated clock difference for iat; zero means 60 s.
	Skew time.Duration
	// Seen reports (and records) a jti; nil disables the replay check.
	Seen func(jti string, until time.Time) bool
}

// CheckClientAssertion applies the authorization server's rules to an
// assertion (FAPI conformance §5.2): PS256 signed by a key of keys, iss =
// sub = client_id, aud acceptable, exp in the future and at most 600 s after
// iat, iat not in the future beyond the skew, a jti (UUID) never seen.
func CheckClientAssertion(token string, keys *jose.JSONWebKeySet, r AssertionRules) (*AssertionClaims, error) {
	v, err := jwks.Verify(token, nil, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAssertion, err)
	}
	var c AssertionClaims
	if err := json.Unmarshal(v.Payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrAssertion)
	}
	skew := r.Skew
	if skew == 0 {
		skew = time.Minute
	}
	now := r.Now.Unix()
	switch {
	case c.Iss != r.ClientID || c.Sub != r.ClientID:
		return nil, fmt.Errorf("%w: iss %q and sub %q must both be the client_id %q", ErrAssertion, c.Iss, c.Sub, r.ClientID)
	case !slices.Contains(r.Audiences, c.Aud):
		return nil, fmt.Errorf("%w: aud %q is not one of %q", ErrAssertion, c.Aud, r.Audiences)
	case c.Exp <= now:
		return nil, fmt.Errorf("%w: expired at %d (now %d)", ErrAssertion, c.Exp, now)
	case c.Iat > now+int64(skew/time.Second):
		return nil, fmt.Errorf("%w: iat %d is in the future (now %d)", ErrAssertion, c.Iat, now)
	case c.Exp-c.Iat > int64(MaxAssertionLifetime/time.Second):
		return nil, fmt.Errorf("%w: lifetime %d s is over OFM's %v", ErrAssertion, c.Exp-c.Iat, MaxAssertionLifetime)
	case !IsUUID(c.Jti):
		return nil, fmt.Errorf("%w: jti %q is not a UUID", ErrAssertion, c.Jti)
	}
	if r.Seen != nil && r.Seen(c.Jti, time.Unix(c.Exp, 0)) {
		return nil, fmt.Errorf("%w: %s", ErrReplay, c.Jti)
	}
	return &c, nil
}
