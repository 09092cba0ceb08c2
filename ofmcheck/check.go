package ofmcheck

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// Env is the OFM environment a check runs against.
type Env struct {
	// Issuer is the authorization server; everything else comes from its
	// discovery document.
	Issuer string
	// Roots are the CAs the platform's TLS certificates chain to; nil means
	// the system's.
	Roots       *x509.CertPool
	ClientID    string
	DCID        string
	DPID        string
	RedirectURI string
	// Profile is the x-signature profile (classic unless set).
	Profile XSigProfile
	// AssertionAudience is the client assertion's aud; empty means the
	// issuer (every OFM sample), else e.g. the token endpoint.
	AssertionAudience string
}

// Credentials are the DC's keys for the check.
type Credentials struct {
	Transport    tls.Certificate
	TransportKid string
	SigningKey   *rsa.PrivateKey
	SigningKid   string
	Decryptors   []jwks.Decryptor
}

// Step is one step of the proof.
type Step struct {
	Name          string        `json:"name"`
	OK            bool          `json:"ok"`
	Duration      time.Duration `json:"duration_ns"`
	Kid           string        `json:"kid,omitempty"`
	InteractionID string        `json:"interaction_id,omitempty"`
	Detail        string        `json:"detail,omitempty"`
	Error         string        `json:"error,omitempty"`
}

// Report is a whole check.
type Report struct {
	OK       bool          `json:"ok"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []Step        `json:"steps"`
}

// maxBody bounds every response the check reads.
const maxBody = 1 << 20

// discoveryDoc holds the discovery fields the flow uses.
type discoveryDoc struct {
	Issuer         string   `json:"issuer"`
	Authorization  string   `json:"authorization_endpoint"`
	Token          string   `json:"token_endpoint"`
	PAR            string   `json:"pushed_authorization_request_endpoint"`
	JWKSURI        string   `json:"jwks_uri"`
	Bound          bool     `json:"tls_client_certificate_bound_access_tokens"`
	PKCEMethods    []string `json:"code_challenge_methods_supported"`
	ResourceServer string   `json:"resource_server"`
}

// run is the state one check carries from step to step.
type run struct {
	env      Env
	cred     Credentials
	now      func() time.Time
	tls      *http.Client // mTLS, no redirects followed
	plain    *http.Client // TLS without a client certificate (discovery)
	disc     discoveryDoc
	platform *jose.JSONWebKeySet
	pkce     PKCE
	state    string
	reqURI   string
	code     string
	access   string
	refresh  string
}

// Check runs the DC's OFM flow with the given keys: discovery, the
// platform's JWKS, PAR with a signed request object and private_key_jwt over
// mutual TLS, authorize, the token exchange, a signed data call whose
// answer is verified and decrypted, and a refresh. It stops at the first
// failing step; every step reports its time, the key used and the
// interaction id.
func Check(ctx context.Context, env Env, cred Credentials, now func() time.Time) Report {
	if now == nil {
		now = time.Now
	}
	tlsCfg := &tls.Config{RootCAs: env.Roots, MinVersion: tls.VersionTLS12}
	mtls := tlsCfg.Clone()
	mtls.Certificates = []tls.Certificate{cred.Transport}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := &run{env: env, cred: cred, now: now,
		tls:   &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: mtls}, CheckRedirect: noRedirect},
		plain: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}},
	}
	defer r.tls.CloseIdleConnections()
	defer r.plain.CloseIdleConnections()
	steps := []struct {
		name string
		kid  string
		fn   func(context.Context, *Step) error
	}{
		{"discovery", "", r.discovery},
		{"platform-jwks", "", r.platformJWKS},
		{"par", cred.SigningKid, r.pushAuthorization},
		{"authorize", "", r.authorize},
		{"token", cred.TransportKid, r.exchangeCode},
		{"data-call", cred.SigningKid, r.dataCall},
		{"refresh", cred.TransportKid, r.refreshToken},
	}
	rep := Report{OK: true}
	start := time.Now()
	for _, st := range steps {
		s := Step{Name: st.name, Kid: st.kid}
		t0 := time.Now()
		err := st.fn(ctx, &s)
		s.Duration = time.Since(t0)
		s.OK = err == nil
		if err != nil {
			s.Error = err.Error()
			rep.OK = false
		}
		rep.Steps = append(rep.Steps, s)
		if err != nil {
			break
		}
	}
	rep.Duration = time.Since(start)
	return rep
}

// read reads an answer, bounded.
func read(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("the answer is larger than %d bytes", maxBody)
	}
	return b, nil
}

// oauthFailure describes an OAuth error answer.
func oauthFailure(status int, body []byte) error {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("HTTP %d %s: %s", status, e.Error, e.Description)
	}
	return fmt.Errorf("HTTP %d", status)
}

// get fetches a public document over TLS (no client certificate).
func (r *run) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.plain.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := read(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, oauthFailure(resp.StatusCode, body)
	}
	return body, nil
}

func (r *run) discovery(ctx context.Context, s *Step) error {
	body, err := r.get(ctx, strings.TrimSuffix(r.env.Issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, &r.disc); err != nil {
		return fmt.Errorf("the discovery document is not JSON: %v", err)
	}
	switch {
	case r.disc.Issuer != r.env.Issuer:
		return fmt.Errorf("issuer %q is not the configured %q", r.disc.Issuer, r.env.Issuer)
	case !r.disc.Bound:
		return errors.New("the platform does not bind tokens to certificates")
	case !slices.Contains(r.disc.PKCEMethods, "S256"):
		return errors.New("the platform does not offer PKCE S256")
	case r.disc.PAR == "" || r.disc.Token == "" || r.disc.Authorization == "" || r.disc.JWKSURI == "":
		return errors.New("the discovery document lacks an endpoint")
	}
	if r.disc.ResourceServer == "" {
		r.disc.ResourceServer = r.env.Issuer + "/v1"
	}
	s.Detail = "endpoints from " + r.env.Issuer
	return nil
}

func (r *run) platformJWKS(ctx context.Context, s *Step) error {
	body, err := r.get(ctx, r.disc.JWKSURI)
	if err != nil {
		return err
	}
	if r.platform, err = jwks.ParseSet(body); err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("%d keys", len(r.platform.Keys))
	return nil
}

// post sends a form over mutual TLS with a fresh client assertion.
func (r *run) post(ctx context.Context, endpoint string, form url.Values, s *Step) (*http.Response, []byte, error) {
	aud := r.env.AssertionAudience
	if aud == "" {
		aud = r.env.Issuer
	}
	assertion, err := ClientAssertion(r.cred.SigningKey, r.cred.SigningKid, r.env.ClientID, aud, r.now(), 5*time.Minute)
	if err != nil {
		return nil, nil, err
	}
	form.Set("client_id", r.env.ClientID)
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", assertion)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s.InteractionID = NewUUID()
	req.Header.Set("x-fapi-interaction-id", s.InteractionID)
	resp, err := r.tls.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := read(resp)
	return resp, body, err
}

func (r *run) pushAuthorization(ctx context.Context, s *Step) error {
	r.pkce, r.state = NewPKCE(), NewUUID()
	ro := RequestObject{Iss: r.env.ClientID, Aud: r.env.Issuer, ClientID: r.env.ClientID, ResponseType: "code", RedirectURI: r.env.RedirectURI,
		Scope: "openid accounts", State: r.state, Nonce: NewUUID(), CodeChallenge: r.pkce.Challenge, CodeChallengeMethod: "S256",
		AuthorizationDetails: []AuthorizationDetail{{Type: ConsentType, Consent: Consent{DCID: r.env.DCID, DPID: r.env.DPID,
			ConsentType: "account_access", ConsentPurpose: "pfm", Permissions: []string{"read_accounts", "read_balances", "read_transactions"},
			ExpirationDateTime: r.now().AddDate(0, 1, 0).Format(time.RFC3339)}}}}
	jar, err := SignRequestObject(r.cred.SigningKey, r.cred.SigningKid, ro, r.now())
	if err != nil {
		return err
	}
	resp, body, err := r.post(ctx, r.disc.PAR, url.Values{"request": {jar}}, s)
	if err != nil {
		return err
	}
	if resp.StatusCode != 201 && resp.StatusCode != 200 {
		return oauthFailure(resp.StatusCode, body)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	if json.Unmarshal(body, &par) != nil || !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		return errors.New("the PAR answer has no request_uri")
	}
	r.reqURI = par.RequestURI
	s.Detail = fmt.Sprintf("request_uri valid %d s", par.ExpiresIn)
	return nil
}

func (r *run) authorize(ctx context.Context, s *Step) error {
	u, err := url.Parse(r.disc.Authorization)
	if err != nil {
		return err
	}
	u.RawQuery = url.Values{"client_id": {r.env.ClientID}, "request_uri": {r.reqURI}}.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	resp, err := r.tls.Do(req)
	if err != nil {
		return err
	}
	body, _ := read(resp)
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return fmt.Errorf("authorize answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("authorize redirected to a bad URL: %v", err)
	}
	q := loc.Query()
	switch {
	case q.Get("error") != "":
		return fmt.Errorf("authorize: %s: %s", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != r.state:
		return errors.New("the redirect's state is not the one sent")
	case q.Has("iss") && q.Get("iss") != r.env.Issuer:
		return fmt.Errorf("the redirect's iss %q is not the issuer (mix-up attack?)", q.Get("iss"))
	case q.Get("code") == "":
		return errors.New("the redirect carries no code")
	}
	r.code = q.Get("code")
	s.Detail = "consent approved"
	return nil
}

// tokens reads a token answer.
func (r *run) tokens(resp *http.Response, body []byte) error {
	if resp.StatusCode != 200 {
		return oauthFailure(resp.StatusCode, body)
	}
	var t struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &t) != nil || t.AccessToken == "" || !strings.EqualFold(t.TokenType, "Bearer") {
		return errors.New("the token answer has no Bearer access_token")
	}
	r.access = t.AccessToken
	if t.RefreshToken != "" {
		r.refresh = t.RefreshToken
	}
	return nil
}

func (r *run) exchangeCode(ctx context.Context, s *Step) error {
	resp, body, err := r.post(ctx, r.disc.Token, url.Values{"grant_type": {"authorization_code"}, "code": {r.code},
		"redirect_uri": {r.env.RedirectURI}, "code_verifier": {r.pkce.Verifier}}, s)
	if err != nil {
		return err
	}
	if err := r.tokens(resp, body); err != nil {
		return err
	}
	s.Detail = "certificate-bound access token"
	return nil
}

func (r *run) dataCall(ctx context.Context, s *Step) error {
	u, err := url.Parse(r.disc.ResourceServer + "/accounts?page_size=10")
	if err != nil {
		return err
	}
	s.InteractionID = NewUUID()
	signer := XSigner{Key: r.cred.SigningKey, Kid: r.cred.SigningKid, DCID: r.env.DCID, Profile: r.env.Profile}
	sig, err := signer.Sign(Request{URL: u, InteractionID: s.InteractionID}, r.env.DPID, r.now())
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	req.Header.Set("Authorization", "Bearer "+r.access)
	req.Header.Set("x-fapi-interaction-id", s.InteractionID)
	req.Header.Set("x-signature", sig)
	req.Header.Set("x-dp-id", r.env.DPID)
	resp, err := r.tls.Do(req)
	if err != nil {
		return err
	}
	body, err := read(resp)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return oauthFailure(resp.StatusCode, body)
	}
	if got := resp.Header.Get("x-fapi-interaction-id"); got != s.InteractionID {
		return fmt.Errorf("the answer's x-fapi-interaction-id %q is not ours", got)
	}
	payload, kid, err := UnwrapResponse(body, r.platform, r.cred.Decryptors, ResponseRules{Audience: r.env.DCID, Now: r.now()})
	if err != nil {
		return err
	}
	var data struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(payload, &data) != nil || len(data.Data) == 0 {
		return errors.New("the decrypted answer holds no data")
	}
	s.Detail = "signed request accepted; answer verified and decrypted with " + kid
	return nil
}

func (r *run) refreshToken(ctx context.Context, s *Step) error {
	if r.refresh == "" {
		return errors.New("no refresh token was issued")
	}
	resp, body, err := r.post(ctx, r.disc.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.refresh}}, s)
	if err != nil {
		return err
	}
	if err := r.tokens(resp, body); err != nil {
		return err
	}
	s.Detail = "refreshed"
	return nil
}
