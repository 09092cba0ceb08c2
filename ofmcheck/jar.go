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

// ConsentType is the authorization_details type of an OFM account-access
// consent (OFM-SPEC §3).
const ConsentType = "urn:openfinance-ml:account-access-consent:v1.2"

// AuthorizationDetail is one authorization_details entry.
type AuthorizationDetail struct {
	Type    string  `json:"type"`
	Consent Consent `json:"consent"`
}

// Consent is what the DC asks the user to allow.
type Consent struct {
	DCID               string   `json:"dc_id"`
	DPID               string   `json:"dp_id"`
	ConsentType        string   `json:"consent_type"`
	ConsentPurpose     string   `json:"consent_purpose"`
	Permissions        []string `json:"permissions"`
	ExpirationDateTime string   `json:"expiration_datetime"`
}

// RequestObject is the JAR the DC pushes with PAR.
type RequestObject struct {
	Iss                  string                `json:"iss"`
	Aud                  string                `json:"aud"`
	ClientID             string                `json:"client_id"`
	Exp                  int64                 `json:"exp"`
	Nbf                  int64                 `json:"nbf"`
	ResponseType         string                `json:"response_type"`
	RedirectURI          string                `json:"redirect_uri"`
	Scope                string                `json:"scope"`
	State                string                `json:"state"`
	Nonce                string                `json:"nonce"`
	CodeChallenge        string                `json:"code_challenge"`
	CodeChallengeMethod  string                `json:"code_challenge_method"`
	MaxAge               int                   `json:"max_age,omitempty"`
	AuthorizationDetails []AuthorizationDetail `json:"authorization_details"`
}

// JARLifetime is exp - nbf of the request objects ofmkeys makes (OFM's
// samples use five minutes).
const JARLifetime = 5 * time.Minute

// SignRequestObject fills nbf/exp from now and signs the JAR with PS256.
func SignRequestObject(key *rsa.PrivateKey, kid string, ro RequestObject, now time.Time) (string, error) {
	ro.Nbf, ro.Exp = now.Unix(), now.Add(JARLifetime).Unix()
	payload, err := json.Marshal(ro)
	if err != nil {
		return "", err
	}
	return jwks.Sign(key, kid, payload, false)
}

// ErrRequestObject: a JAR breaks a rule.
var ErrRequestObject = errors.New("invalid request object")

// JARRules are what the authorization server expects of a JAR.
type JARRules struct {
	ClientID     string
	Issuer       string
	RedirectURIs []string
	DCID         string
	Now          time.Time
}

// CheckRequestObject verifies a JAR as OFP's PAR endpoint does: PS256 by a
// key of keys; iss and client_id the client; aud the issuer; valid now and
// for at most an hour; response_type code; a registered redirect_uri; state,
// nonce and an S256 PKCE challenge; one account-access consent for the DC.
func CheckRequestObject(token string, keys *jose.JSONWebKeySet, r JARRules) (*RequestObject, error) {
	v, err := jwks.Verify(token, nil, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequestObject, err)
	}
	var ro RequestObject
	if err := json.Unmarshal(v.Payload, &ro); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrRequestObject)
	}
	now := r.Now.Unix()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrRequestObject}, args...)...)
	}
	switch {
	case ro.Iss != r.ClientID || ro.ClientID != r.ClientID:
		return nil, bad("iss %q and client_id %q must be the client %q", ro.Iss, ro.ClientID, r.ClientID)
	case ro.Aud != r.Issuer:
		return nil, bad("aud %q is not the issuer %q", ro.Aud, r.Issuer)
	case now < ro.Nbf-60 || now >= ro.Exp:
		return nil, bad("not valid now (nbf %d, exp %d, now %d)", ro.Nbf, ro.Exp, now)
	case ro.Exp-ro.Nbf > 3600:
		return nil, bad("valid for %d s; at most an hour", ro.Exp-ro.Nbf)
	case ro.ResponseType != "code":
		return nil, bad("response_type %q; OFM uses code", ro.ResponseType)
	case !slices.Contains(r.RedirectURIs, ro.RedirectURI):
		return nil, bad("redirect_uri %q is not registered", ro.RedirectURI)
	case ro.State == "" || ro.Nonce == "":
		return nil, bad("state and nonce are required")
	case ro.CodeChallengeMethod != "S256" || len(ro.CodeChallenge) != 43:
		return nil, bad("PKCE S256 is required (method %q)", ro.CodeChallengeMethod)
	case len(ro.AuthorizationDetails) != 1 || ro.AuthorizationDetails[0].Type != ConsentType:
		return nil, bad("one authorization_details entry of type %s is required", ConsentType)
	case ro.AuthorizationDetails[0].Consent.DCID != r.DCID:
		return nil, bad("the consent's dc_id %q is not the client's %q", ro.AuthorizationDetails[0].Consent.DCID, r.DCID)
	case len(ro.AuthorizationDetails[0].Consent.Permissions) == 0:
		return nil, bad("the consent asks for no permission")
	}
	return &ro, nil
}
