package ofmcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// ErrResponse: a data response fails verification or decryption. The
// plaintext of a response that fails any check is never returned.
var ErrResponse = errors.New("invalid data response")

// ResponseClaims are the outer JWS's claims of a data response (OFM-SPEC §5).
type ResponseClaims struct {
	Iss  string          `json:"iss"`
	Aud  json.RawMessage `json:"aud"`
	Iat  int64           `json:"iat"`
	Nbf  int64           `json:"nbf"`
	Exp  int64           `json:"exp"`
	Jti  string          `json:"jti"`
	Data string          `json:"data"`
}

// ResponseRules are what the DC expects of a data response.
type ResponseRules struct {
	// Audience is the DC's id, which the aud must name.
	Audience string
	Now      time.Time
	// Skew tolerates clock difference; zero means 5 minutes.
	Skew time.Duration
}

// UnwrapResponse verifies and opens a data response: the body is a PS256
// JWS by a key of the platform's JWKS whose claims are current and name the
// DC, carrying in data a JWE (RSA-OAEP-256/A256GCM) to one of the DC's
// encryption keys; a plaintext that is itself a compact JWS is verified
// with the platform's keys too and its payload returned. kid is the DC key
// that opened the JWE.
func UnwrapResponse(body []byte, platform *jose.JSONWebKeySet, keys []jwks.Decryptor, r ResponseRules) (payload []byte, kid string, err error) {
	outer, err := jwks.Verify(string(body), nil, platform)
	if err != nil {
		return nil, "", fmt.Errorf("%w: outer signature: %v", ErrResponse, err)
	}
	var c ResponseClaims
	if err := json.Unmarshal(outer.Payload, &c); err != nil {
		return nil, "", fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrResponse)
	}
	skew := r.Skew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	now, s := r.Now.Unix(), int64(skew/time.Second)
	switch {
	case c.Exp != 0 && c.Exp < now-s:
		return nil, "", fmt.Errorf("%w: expired at %d (now %d)", ErrResponse, c.Exp, now)
	case c.Iat > now+s || (c.Iat != 0 && c.Iat < now-3600):
		return nil, "", fmt.Errorf("%w: iat %d is outside the accepted window (now %d)", ErrResponse, c.Iat, now)
	case c.Nbf > now+s:
		return nil, "", fmt.Errorf("%w: not valid before %d", ErrResponse, c.Nbf)
	case !audienceHas(c.Aud, r.Audience):
		return nil, "", fmt.Errorf("%w: aud does not name the DC %q", ErrResponse, r.Audience)
	case c.Data == "":
		return nil, "", fmt.Errorf("%w: no encrypted data", ErrResponse)
	}
	plain, kid, err := jwks.Decrypt(c.Data, keys)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrResponse, err)
	}
	if strings.Count(strings.TrimSpace(string(plain)), ".") == 2 {
		inner, err := jwks.Verify(string(plain), nil, platform)
		if err != nil {
			return nil, "", fmt.Errorf("%w: inner signature: %v", ErrResponse, err)
		}
		return inner.Payload, kid, nil
	}
	return plain, kid, nil
}

func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return slices.Contains(many, want)
	}
	return false
}
