package ofmcheck

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// PaynetAudience is the second audience of a classic x-signature.
const PaynetAudience = "Paynet OFP"

// XSigProfile names PayNet's two x-signature profiles (OFM-SPEC §4).
type XSigProfile string

const (
	// XSigClassic: a compact JWS whose claims describe the request.
	XSigClassic XSigProfile = "classic"
	// XSigDetached: a detached JWS over the body, claims in the header (v1.2).
	XSigDetached XSigProfile = "detached"
)

// MaxXSigLifetime bounds exp - iat of a classic x-signature.
const MaxXSigLifetime = 300 * time.Second

// XSigSkew is how far iat may be from the receiver's clock (±5 minutes).
const XSigSkew = 5 * time.Minute

// ErrXSignature: an x-signature breaks a rule.
var ErrXSignature = errors.New("invalid x-signature")

// XSigClaims are a classic x-signature's claims.
type XSigClaims struct {
	Iss string            `json:"iss"`
	Sub string            `json:"sub"`
	Aud []string          `json:"aud"`
	Iat int64             `json:"iat"`
	Nbf int64             `json:"nbf"`
	Exp int64             `json:"exp"`
	Jti string            `json:"jti"`
	Qpm map[string]string `json:"qpm"`
	URL string            `json:"url"`
}

// Request is what an x-signature covers.
type Request struct {
	URL  *url.URL
	Body []byte
	// InteractionID is the x-fapi-interaction-id (the jti).
	InteractionID string
}

func (r Request) qpm() map[string]string {
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = strings.Join(v, ",")
	}
	return q
}

func (r Request) base() string {
	return r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
}

// XSigner makes x-signatures for one DC.
type XSigner struct {
	Key     *rsa.PrivateKey
	Kid     string
	DCID    string
	Profile XSigProfile
	// Sub is the classic profile's sub: the dc_id unless set (OFM-SPEC §4
	// [choice]: the samples use the consent_id).
	Sub string
}

// Sign makes the x-signature header value of a request to dpID.
func (s XSigner) Sign(req Request, dpID string, now time.Time) (string, error) {
	switch s.Profile {
	case XSigClassic, "":
		sub := s.Sub
		if sub == "" {
			sub = s.DCID
		}
		claims := XSigClaims{Iss: s.DCID, Sub: sub, Aud: []string{dpID, PaynetAudience}, Iat: now.Unix(), Nbf: now.Unix(),
			Exp: now.Add(MaxXSigLifetime).Unix(), Jti: req.InteractionID, Qpm: req.qpm(), URL: req.base()}
		payload, _ := json.Marshal(claims)
		return jwks.Sign(s.Key, s.Kid, payload, false)
	case XSigDetached:
		return signDetached(s.Key, detachedHeader{Alg: "PS256", Kid: s.Kid, Iss: s.DCID, Jti: req.InteractionID, Iat: now.Unix(), Crit: detachedCrit}, req.Body)
	}
	return "", fmt.Errorf("unknown x-signature profile %q: want classic or detached", s.Profile)
}

// detachedCrit is exactly what the detached profile marks critical.
var detachedCrit = []string{"iss", "jti", "iat"}

type detachedHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Iss  string   `json:"iss"`
	Jti  string   `json:"jti"`
	Iat  int64    `json:"iat"`
	Crit []string `json:"crit"`
}

// signDetached signs body with PS256 under header and returns the detached
// compact form (RFC 7515 appendix F). It is done here, not with go-jose,
// because go-jose refuses any crit name but b64 on verification.
func signDetached(key *rsa.PrivateKey, h detachedHeader, body []byte) (string, error) {
	head, _ := json.Marshal(h)
	input := b64(head) + "." + b64(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", err
	}
	return b64(head) + ".." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// XSigRules are what the receiver expects.
type XSigRules struct {
	Profile XSigProfile
	DCID    string
	DPID    string
	Now     time.Time
}

// VerifyXSignature checks an x-signature against the DC's JWKS and the
// request as received (the exact bytes: never a re-serialised body).
func VerifyXSignature(sig string, req Request, keys *jose.JSONWebKeySet, r XSigRules) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrXSignature}, args...)...)
	}
	now := r.Now.Unix()
	skew := int64(XSigSkew / time.Second)
	switch r.Profile {
	case XSigClassic, "":
		v, err := jwks.Verify(sig, nil, keys)
		if err != nil {
			return bad("%v", err)
		}
		var c XSigClaims
		if err := json.Unmarshal(v.Payload, &c); err != nil {
			return bad("claims are not a JSON object of the expected types")
		}
		switch {
		case c.Iss != r.DCID:
			return bad("iss %q is not the DC %q", c.Iss, r.DCID)
		case !slices.Contains(c.Aud, r.DPID) || !slices.Contains(c.Aud, PaynetAudience):
			return bad("aud %q must hold %q and %q", c.Aud, r.DPID, PaynetAudience)
		case c.Iat < now-skew || c.Iat > now+skew:
			return bad("iat %d is outside ±%v of now (%d)", c.Iat, XSigSkew, now)
		case c.Exp <= now || c.Exp-c.Iat > int64(MaxXSigLifetime/time.Second):
			return bad("exp %d: expired or more than %v after iat", c.Exp, MaxXSigLifetime)
		case c.Nbf > now+skew:
			return bad("not valid before %d", c.Nbf)
		case c.Jti != req.InteractionID:
			return bad("jti %q is not the x-fapi-interaction-id %q", c.Jti, req.InteractionID)
		case c.URL != req.base():
			return bad("url %q is not the request's %q", c.URL, req.base())
		case !maps.Equal(c.Qpm, req.qpm()):
			return bad("qpm %v does not match the query %v", c.Qpm, req.qpm())
		}
		return nil
	case XSigDetached:
		h, err := verifyDetached(sig, req.Body, keys)
		if err != nil {
			return bad("%v", err)
		}
		switch {
		case h.Iss != r.DCID:
			return bad("iss %q is not the DC %q", h.Iss, r.DCID)
		case h.Iat < now-skew || h.Iat > now+skew:
			return bad("iat %d is outside ±%v of now (%d)", h.Iat, XSigSkew, now)
		case h.Jti != req.InteractionID:
			return bad("jti %q is not the x-fapi-interaction-id %q", h.Jti, req.InteractionID)
		}
		return nil
	}
	return bad("unknown profile %q", r.Profile)
}

// verifyDetached applies the exact rule for the detached profile:
// "header..signature"; a header that is one JSON object without duplicate
// members; alg exactly PS256; crit exactly iss, jti, iat (each present);
// no b64 member (unencoded payloads are not used); a kid of a signing key of
// keys; a PS256 signature over the body bytes as received.
func verifyDetached(sig string, body []byte, keys *jose.JSONWebKeySet) (*detachedHeader, error) {
	parts := strings.Split(sig, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	if parts[1] != "" {
		return nil, errors.New("the payload is not detached")
	}
	head, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("header is not base64url")
	}
	members, err := objectMembers(head)
	if err != nil {
		return nil, err
	}
	if _, ok := members["b64"]; ok {
		return nil, errors.New("b64 is not used by this profile")
	}
	var h detachedHeader
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, errors.New("header members of the wrong types")
	}
	want := slices.Clone(detachedCrit)
	got := slices.Clone(h.Crit)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return nil, fmt.Errorf("crit %q: this profile marks exactly %q critical", h.Crit, detachedCrit)
	}
	for _, name := range detachedCrit {
		if _, ok := members[name]; !ok {
			return nil, fmt.Errorf("critical member %q missing", name)
		}
	}
	if h.Alg != "PS256" {
		return nil, fmt.Errorf("unexpected alg %q: PS256 only", truncate(h.Alg))
	}
	if !jwks.ValidKid(h.Kid) {
		return nil, errors.New("kid missing or malformed")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + b64(body)))
	tried := 0
	for _, k := range keys.Key(h.Kid) { // kids can repeat during a rotation
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || (k.Use != "" && k.Use != "sig") {
			continue
		}
		tried++
		if rsa.VerifyPSS(pub, crypto.SHA256, sum[:], raw, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil {
			return &h, nil
		}
	}
	if tried == 0 {
		return nil, fmt.Errorf("kid %q is not a signing key of the JWKS", h.Kid)
	}
	return nil, errors.New("the signature does not verify over the body as received")
}

// objectMembers parses a JSON object's member names, refusing duplicates
// (encoding/json would silently keep the last "alg").
func objectMembers(doc []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("header is not a JSON object")
	}
	names := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("header is not valid JSON")
		}
		name := t.(string)
		if names[name] {
			return nil, fmt.Errorf("header member %q appears twice", truncate(name))
		}
		names[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, errors.New("header is not valid JSON")
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("header is not valid JSON")
	}
	if len(bytes.TrimSpace(doc[dec.InputOffset():])) > 0 {
		return nil, errors.New("trailing data after the header")
	}
	return names, nil
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
