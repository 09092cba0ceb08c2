package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// Switch makes the sandbox misbehave in one way, for negative tests: the
// DC side must refuse each answer with the right error.
type Switch string

const (
	Behave            Switch = ""                    // answer correctly
	BadSignature      Switch = "bad-signature"       // the answer's signature is broken
	AlgNone           Switch = "alg-none"            // the answer is an unsigned alg:none JWS
	RS256Answer       Switch = "rs256"               // signed with RS256 where PS256 is required
	UnknownKid        Switch = "unknown-kid"         // signed by a key the platform's JWKS lacks (a rotation the DC has not seen)
	ExpiredAnswer     Switch = "expired"             // claims long expired
	TamperedJWE       Switch = "tampered-jwe"        // one bit of the ciphertext flipped
	StaleEncryption   Switch = "stale-encryption"    // encrypted to a key the DC does not hold
	InnerBadSignature Switch = "inner-bad-signature" // the decrypted payload's own signature is broken
	OtherCertificate  Switch = "other-certificate"   // the token is treated as bound to another certificate
	Oversized         Switch = "oversized"           // a 2 MiB answer
	SlowBody          Switch = "slow-body"           // the answer trickles a byte at a time, past the client's timeout
	RotatedKey        Switch = "rotated-key"         // the platform rotates its signing key at the first data call (the DC must refetch its JWKS once, and accept)
)

// Switches lists every misbehaviour.
var Switches = []Switch{BadSignature, AlgNone, RS256Answer, UnknownKid, ExpiredAnswer, TamperedJWE, StaleEncryption, InnerBadSignature, OtherCertificate, Oversized, SlowBody, RotatedKey}

// Misbehave sets the sandbox's misbehaviour (Behave to stop).
func (s *Server) Misbehave(sw Switch) {
	s.mu.Lock()
	s.misbehave = sw
	s.mu.Unlock()
}

func (s *Server) switchNow() Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.misbehave
}

// misbehaveAnswer turns a correct answer into the switched wrong one.
func (s *Server) misbehaveAnswer(sw Switch, c *Client, to *rsaPublicKey, jti string, now time.Time) (string, error) {
	claims := func(data string, exp time.Time) []byte {
		b, _ := json.Marshal(map[string]any{"iss": "Paynet OFP", "aud": c.DCID, "iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": jti, "data": data})
		return b
	}
	pk := s.signingKey()
	inner, _ := jwks.Sign(pk.key, pk.kid, []byte(`{"data":[{"account_id":"1"}]}`), false)
	jwe, err := jwks.Encrypt(to, "", []byte(inner))
	if err != nil {
		return "", err
	}
	switch sw {
	case BadSignature:
		good, _ := jwks.Sign(pk.key, pk.kid, claims(jwe, now.Add(5*time.Minute)), false)
		parts := strings.Split(good, ".")
		sig := []byte(parts[2])
		if sig[20] == 'A' {
			sig[20] = 'B'
		} else {
			sig[20] = 'A'
		}
		return parts[0] + "." + parts[1] + "." + string(sig), nil
	case AlgNone:
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + PlatformKid + `"}`))
		return head + "." + base64.RawURLEncoding.EncodeToString(claims(jwe, now.Add(5*time.Minute))) + ".", nil
	case RS256Answer:
		return signRS256(pk.key, pk.kid, claims(jwe, now.Add(5*time.Minute)))
	case UnknownKid:
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		return jwks.Sign(other, "sandbox-ofp-next", claims(jwe, now.Add(5*time.Minute)), false)
	case ExpiredAnswer:
		return jwks.Sign(pk.key, pk.kid, claims(jwe, now.Add(-2*time.Hour)), false)
	case TamperedJWE:
		parts := strings.Split(jwe, ".")
		ct, _ := base64.RawURLEncoding.DecodeString(parts[3])
		ct[len(ct)/2] ^= 1
		parts[3] = base64.RawURLEncoding.EncodeToString(ct)
		return jwks.Sign(pk.key, pk.kid, claims(strings.Join(parts, "."), now.Add(5*time.Minute)), false)
	case StaleEncryption:
		stale, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		old, _ := jwks.Encrypt(&stale.PublicKey, "", []byte(inner))
		return jwks.Sign(pk.key, pk.kid, claims(old, now.Add(5*time.Minute)), false)
	case InnerBadSignature:
		parts := strings.Split(inner, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"data":[{"account_id":"forged"}]}`))
		forged, _ := jwks.Encrypt(to, "", []byte(strings.Join(parts, ".")))
		return jwks.Sign(pk.key, pk.kid, claims(forged, now.Add(5*time.Minute)), false)
	case Oversized:
		return strings.Repeat("A", 2<<20), nil
	}
	return "", nil
}
