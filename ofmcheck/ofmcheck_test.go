package ofmcheck_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

var (
	now      = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	dcKey    = testkeys.Key(0)
	platKey  = testkeys.Key(1)
	attacker = testkeys.Key(2)
	encKey   = testkeys.Key(3)
)

const (
	clientID = "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
	dcID     = "0123456789abcdef01234567"
	dpID     = "DP9876543210"
	issuer   = "https://ofp.example.my"
)

func set(keys ...jose.JSONWebKey) *jose.JSONWebKeySet { return &jose.JSONWebKeySet{Keys: keys} }

func sigKey(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig", Algorithm: "PS256"}
}

var dcJWKS = set(sigKey(dcKey, "dc-sig"))

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestClientAssertionPassesTheASChecks(t *testing.T) {
	seen := map[string]bool{}
	var mu sync.Mutex
	rules := ofmcheck.AssertionRules{ClientID: clientID, Audiences: []string{issuer}, Now: now, Seen: func(jti string, _ time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		old := seen[jti]
		seen[jti] = true
		return old
	}}
	tok, err := ofmcheck.ClientAssertion(dcKey, "dc-sig", clientID, issuer, now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ofmcheck.CheckClientAssertion(tok, dcJWKS, rules)
	if err != nil {
		t.Fatal(err)
	}
	if c.Iss != clientID || c.Sub != clientID || c.Aud != issuer || c.Exp-c.Iat != 300 || !ofmcheck.IsUUID(c.Jti) {
		t.Fatalf("claims %+v", c)
	}
	if _, err := ofmcheck.CheckClientAssertion(tok, dcJWKS, rules); !errors.Is(err, ofmcheck.ErrReplay) {
		t.Fatalf("a replayed assertion: %v", err)
	}
	// Every attempt gets a new jti.
	jtis := map[string]bool{}
	for range 50 {
		tok, _ := ofmcheck.ClientAssertion(dcKey, "dc-sig", clientID, issuer, now, time.Minute)
		parts := strings.Split(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var c ofmcheck.AssertionClaims
		json.Unmarshal(raw, &c)
		if jtis[c.Jti] {
			t.Fatal("a jti repeated")
		}
		jtis[c.Jti] = true
	}
	if _, err := ofmcheck.ClientAssertion(dcKey, "dc-sig", clientID, issuer, now, 11*time.Minute); err == nil {
		t.Fatal("an 11-minute assertion was made")
	}
}

func TestCheckClientAssertionRefusesEachBrokenRule(t *testing.T) {
	sign := func(claims map[string]any, key *rsa.PrivateKey, kid string) string {
		payload, _ := json.Marshal(claims)
		tok, err := jwks.Sign(key, kid, payload, false)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := func() map[string]any {
		return map[string]any{"iss": clientID, "sub": clientID, "aud": issuer, "iat": now.Unix(), "exp": now.Unix() + 300, "jti": ofmcheck.NewUUID()}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	rules := ofmcheck.AssertionRules{ClientID: clientID, Audiences: []string{issuer}, Now: now}
	for _, tc := range []struct {
		name, tok, words string
	}{
		{"sub differs from iss", sign(with("sub", "other"), dcKey, "dc-sig"), "iss"},
		{"aud is the token endpoint when the issuer is required", sign(with("aud", issuer+"/token"), dcKey, "dc-sig"), "aud"},
		{"expired", sign(with("exp", now.Unix()-1), dcKey, "dc-sig"), "expired"},
		{"iat in the future", sign(with("iat", now.Unix()+600), dcKey, "dc-sig"), "future"},
		{"a lifetime over 600 s", sign(map[string]any{"iss": clientID, "sub": clientID, "aud": issuer, "iat": now.Unix(), "exp": now.Unix() + 601, "jti": ofmcheck.NewUUID()}, dcKey, "dc-sig"), "lifetime"},
		{"a jti that is not a UUID", sign(with("jti", "1"), dcKey, "dc-sig"), "jti"},
		{"signed by another key under our kid", sign(good(), attacker, "dc-sig"), "does not verify"},
		{"an unknown kid", sign(good(), dcKey, "other"), "not a signing key"},
		{"claims of the wrong type", sign(with("exp", "soon"), dcKey, "dc-sig"), "expected types"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ofmcheck.CheckClientAssertion(tc.tok, dcJWKS, rules)
			if !errors.Is(err, ofmcheck.ErrAssertion) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err %v, want ErrAssertion %q", err, tc.words)
			}
		})
	}
}

func requestObject() ofmcheck.RequestObject {
	pk := ofmcheck.NewPKCE()
	return ofmcheck.RequestObject{
		Iss: clientID, Aud: issuer, ClientID: clientID, ResponseType: "code", RedirectURI: "https://dc.example.my/cb",
		Scope: "openid accounts", State: ofmcheck.NewUUID(), Nonce: ofmcheck.NewUUID(), CodeChallenge: pk.Challenge, CodeChallengeMethod: "S256",
		AuthorizationDetails: []ofmcheck.AuthorizationDetail{{Type: ofmcheck.ConsentType, Consent: ofmcheck.Consent{
			DCID: dcID, DPID: dpID, ConsentType: "account_access", ConsentPurpose: "pfm",
			Permissions: []string{"read_accounts", "read_balances", "read_transactions"}, ExpirationDateTime: "2027-12-04T10:00:00+08:00"}}},
	}
}

func TestRequestObjectRoundTripAndRefusals(t *testing.T) {
	rules := ofmcheck.JARRules{ClientID: clientID, Issuer: issuer, RedirectURIs: []string{"https://dc.example.my/cb"}, DCID: dcID, Now: now}
	tok, err := ofmcheck.SignRequestObject(dcKey, "dc-sig", requestObject(), now)
	if err != nil {
		t.Fatal(err)
	}
	if ro, err := ofmcheck.CheckRequestObject(tok, dcJWKS, rules); err != nil || ro.Exp-ro.Nbf != 300 {
		t.Fatalf("CheckRequestObject = %+v, %v", ro, err)
	}
	for _, tc := range []struct {
		name  string
		mod   func(*ofmcheck.RequestObject)
		at    time.Time
		words string
	}{
		{"an unregistered redirect_uri", func(r *ofmcheck.RequestObject) { r.RedirectURI = "https://evil.example/cb" }, now, "redirect_uri"},
		{"plain PKCE", func(r *ofmcheck.RequestObject) { r.CodeChallengeMethod = "plain" }, now, "S256"},
		{"another DC's consent", func(r *ofmcheck.RequestObject) { r.AuthorizationDetails[0].Consent.DCID = "x" }, now, "dc_id"},
		{"no state", func(r *ofmcheck.RequestObject) { r.State = "" }, now, "state"},
		{"the token flow", func(r *ofmcheck.RequestObject) { r.ResponseType = "token" }, now, "response_type"},
		{"checked after it expired", func(*ofmcheck.RequestObject) {}, now.Add(6 * time.Minute), "not valid now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := requestObject()
			tc.mod(&ro)
			tok, _ := ofmcheck.SignRequestObject(dcKey, "dc-sig", ro, now)
			r := rules
			r.Now = tc.at
			if _, err := ofmcheck.CheckRequestObject(tok, dcJWKS, r); !errors.Is(err, ofmcheck.ErrRequestObject) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err %v, want %q", err, tc.words)
			}
		})
	}
	if p := ofmcheck.NewPKCE(); !ofmcheck.ValidVerifier(p.Verifier) || ofmcheck.S256(p.Verifier) != p.Challenge {
		t.Fatal("PKCE pair")
	}
}

func TestXSignatureBothProfiles(t *testing.T) {
	u, _ := url.Parse("https://rs.ofp.example.my/v1/accounts/abc/transactions?page_size=10&cursor=x")
	req := ofmcheck.Request{URL: u, Body: []byte(`{"a":1}`), InteractionID: ofmcheck.NewUUID()}
	for _, p := range []ofmcheck.XSigProfile{ofmcheck.XSigClassic, ofmcheck.XSigDetached} {
		t.Run(string(p), func(t *testing.T) {
			s := ofmcheck.XSigner{Key: dcKey, Kid: "dc-sig", DCID: dcID, Profile: p}
			sig, err := s.Sign(req, dpID, now)
			if err != nil {
				t.Fatal(err)
			}
			rules := ofmcheck.XSigRules{Profile: p, DCID: dcID, DPID: dpID, Now: now.Add(4 * time.Minute)}
			if err := ofmcheck.VerifyXSignature(sig, req, dcJWKS, rules); err != nil {
				t.Fatal(err)
			}
			other := req
			other.InteractionID = ofmcheck.NewUUID()
			if err := ofmcheck.VerifyXSignature(sig, other, dcJWKS, rules); !errors.Is(err, ofmcheck.ErrXSignature) {
				t.Fatalf("another interaction id: %v", err)
			}
			late := rules
			late.Now = now.Add(6 * time.Minute)
			if err := ofmcheck.VerifyXSignature(sig, req, dcJWKS, late); !errors.Is(err, ofmcheck.ErrXSignature) {
				t.Fatalf("checked 6 minutes later: %v", err)
			}
		})
	}
	s := ofmcheck.XSigner{Key: dcKey, Kid: "dc-sig", DCID: dcID, Profile: ofmcheck.XSigClassic}
	sig, _ := s.Sign(req, dpID, now)
	moved := req
	moved.URL, _ = url.Parse("https://rs.ofp.example.my/v1/accounts/OTHER/transactions?page_size=10&cursor=x")
	if err := ofmcheck.VerifyXSignature(sig, moved, dcJWKS, ofmcheck.XSigRules{DCID: dcID, DPID: dpID, Now: now}); err == nil || !strings.Contains(err.Error(), "url") {
		t.Fatalf("a signature for another URL: %v", err)
	}
}

// detached builds a detached x-signature with a handmade header.
func detached(t *testing.T, header string, body []byte, key *rsa.PrivateKey) string {
	t.Helper()
	input := b64(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		t.Fatal(err)
	}
	return b64(header) + ".." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestDetachedXSignatureStrictHeaderRules(t *testing.T) {
	u, _ := url.Parse("https://rs.ofp.example.my/v1/accounts")
	jti := ofmcheck.NewUUID()
	body := []byte(`{"x":1}`)
	req := ofmcheck.Request{URL: u, Body: body, InteractionID: jti}
	rules := ofmcheck.XSigRules{Profile: ofmcheck.XSigDetached, DCID: dcID, DPID: dpID, Now: now}
	hdr := func(extra string) string {
		return `{"alg":"PS256","kid":"dc-sig","iss":"` + dcID + `","jti":"` + jti + `","iat":` + "1796378400" + extra + `}`
	}
	good := hdr(`,"crit":["iss","jti","iat"]`)
	if err := ofmcheck.VerifyXSignature(detached(t, good, body, dcKey), req, dcJWKS, rules); err != nil {
		t.Fatalf("the handmade good header: %v", err)
	}
	attached, _ := jwks.Sign(dcKey, "dc-sig", body, false)
	for _, tc := range []struct{ name, sig, words string }{
		{"b64 false not in crit", detached(t, hdr(`,"crit":["iss","jti","iat"],"b64":false`), body, dcKey), "b64"},
		{"b64 as the string false", detached(t, hdr(`,"crit":["iss","jti","iat","b64"],"b64":"false"`), body, dcKey), "b64"},
		{"an empty crit", detached(t, hdr(`,"crit":[]`), body, dcKey), "crit"},
		{"an unknown crit name", detached(t, hdr(`,"crit":["iss","jti","iat","exp"],"exp":1`), body, dcKey), "crit"},
		{"no crit", detached(t, hdr(``), body, dcKey), "crit"},
		{"a duplicate alg", detached(t, `{"alg":"none","alg":"PS256","kid":"dc-sig","iss":"`+dcID+`","jti":"`+jti+`","iat":1796378400,"crit":["iss","jti","iat"]}`, body, dcKey), "twice"},
		{"alg none", detached(t, strings.Replace(good, "PS256", "none", 1), body, dcKey), "PS256 only"},
		{"RS256", detached(t, strings.Replace(good, "PS256", "RS256", 1), body, dcKey), "PS256 only"},
		{"a body that differs by one space", detached(t, good, []byte(`{"x": 1}`), dcKey), "does not verify"},
		{"an attached JWS", attached, "not detached"},
		{"an attacker's key under our kid", detached(t, good, body, attacker), "does not verify"},
		{"trailing garbage after the header", detached(t, good+`x`, body, dcKey), "trailing data"},
		{"a kid with a path", detached(t, strings.Replace(good, "dc-sig", "../../x", 1), body, dcKey), "kid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ofmcheck.VerifyXSignature(tc.sig, req, dcJWKS, rules)
			if !errors.Is(err, ofmcheck.ErrXSignature) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err %v, want %q", err, tc.words)
			}
		})
	}
}

// response builds a data response: a JWS by the platform around a JWE to
// the DC, optionally wrapping a signed inner payload.
func response(t *testing.T, claims map[string]any, signer *rsa.PrivateKey, innerSigned bool, innerKey *rsa.PrivateKey) []byte {
	t.Helper()
	plain := []byte(`{"accounts":[{"id":"1234"}]}`)
	if innerSigned {
		s, err := jwks.Sign(innerKey, "platform", plain, false)
		if err != nil {
			t.Fatal(err)
		}
		plain = []byte(s)
	}
	jwe, err := jwks.Encrypt(&encKey.PublicKey, "", plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["data"]; !ok {
		claims["data"] = jwe
	}
	payload, _ := json.Marshal(claims)
	s, err := jwks.Sign(signer, "platform", payload, false)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

func TestUnwrapResponse(t *testing.T) {
	platform := set(sigKey(platKey, "platform"))
	keys := []jwks.Decryptor{{Kid: "dc-enc", Key: encKey}}
	rules := ofmcheck.ResponseRules{Audience: dcID, Now: now}
	claims := func() map[string]any {
		return map[string]any{"iss": "Paynet OFP", "aud": dcID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Unix() + 300, "jti": ofmcheck.NewUUID()}
	}
	for _, inner := range []bool{false, true} {
		got, kid, err := ofmcheck.UnwrapResponse(response(t, claims(), platKey, inner, platKey), platform, keys, rules)
		if err != nil || string(got) != `{"accounts":[{"id":"1234"}]}` || kid != "dc-enc" {
			t.Fatalf("inner signed %v: %q %q %v", inner, got, kid, err)
		}
	}
	with := func(k string, v any) map[string]any { c := claims(); c[k] = v; return c }
	for _, tc := range []struct {
		name  string
		body  []byte
		words string
	}{
		{"signed by another key", response(t, claims(), attacker, false, nil), "outer signature"},
		{"expired long ago", response(t, with("exp", now.Unix()-3600), platKey, false, nil), "expired"},
		{"for another DC", response(t, with("aud", "someone-else"), platKey, false, nil), "aud"},
		{"an inner signature by another key", response(t, claims(), platKey, true, attacker), "inner signature"},
		{"a JWE to a key the DC does not hold", response(t, with("data", mustEncrypt(t, &attacker.PublicKey)), platKey, false, nil), "cannot decrypt"},
		{"no data", response(t, with("data", ""), platKey, false, nil), "no encrypted data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := ofmcheck.UnwrapResponse(tc.body, platform, keys, rules)
			if !errors.Is(err, ofmcheck.ErrResponse) || !strings.Contains(err.Error(), tc.words) || got != nil {
				t.Fatalf("UnwrapResponse = %q, %v; want no plaintext and %q", got, err, tc.words)
			}
		})
	}
}

func mustEncrypt(t *testing.T, pub *rsa.PublicKey) string {
	s, err := jwks.Encrypt(pub, "", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
