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
	// issuer (every OFM sample), AudienceTokenEndpoint the discovered token
	// endpoint (the guide's reading), anything else is sent as is.
	AssertionAudience string
	// Timeout bounds each call; zero means OFM's 5-second synchronous
	// timeout.
	Timeout time.Duration
	// Authorize, when set, gets the user's consent out of band: it is
	// given the authorize URL and returns the URL the user was redirected
	// to (PayNet's sandbox, where a person logs in at the DP). Nil means
	// the platform approves on its own (the local sandbox) and the check
	// follows the redirect itself.
	Authorize func(ctx context.Context, authorizeURL string) (redirected string, err error)
	// AwaitEvent, when set, waits for the consent webhook event that the
	// revocation causes (the DC's receiver); nil skips that step.
	AwaitEvent func(ctx context.Context, consentID, status string) (ConsentEvent, error)
}

// AudienceTokenEndpoint, as Env.AssertionAudience, sends the token
// endpoint's URL as the client assertion's aud.
const AudienceTokenEndpoint = "token_endpoint"

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
	// Skipped steps pass: their precondition (a webhook receiver) is not
	// configured.
	Skipped bool `json:"skipped,omitempty"`
}

// Report is a whole check.
type Report struct {
	OK       bool          `json:"ok"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []Step        `json:"steps"`
}

// BCP195Suites are the TLS 1.2 cipher suites BCP 195 (RFC 9325)
// recommends: ECDHE with an AEAD. The DC offers only these (TLS 1.3's
// suites are all fine and not configurable).
var BCP195Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
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
	platform *jwks.Cache
	pkce     PKCE
	state    string
	reqURI   string
	code     string
	access   string
	refresh  string
	consent  string
	account  string
	service  string // a client_credentials token
}

// Check runs the DC's OFM flow with the given keys (DESIGN.md's end-to-end
// proof): discovery, the platform's JWKS, PAR with a signed request object
// and private_key_jwt over mutual TLS, authorize, the token exchange, a
// signed data call whose answer is verified and decrypted, every page of a
// paginated one, a refresh, the providers list and a consent revocation
// with a client-credentials token, and the webhook event the revocation
// causes. It stops at the first failing step; every step reports its time,
// the key used and the interaction id.
func Check(ctx context.Context, env Env, cred Credentials, now func() time.Time) Report {
	if now == nil {
		now = time.Now
	}
	if env.Timeout <= 0 {
		env.Timeout = 5 * time.Second
	}
	tlsCfg := &tls.Config{RootCAs: env.Roots, MinVersion: tls.VersionTLS12, CipherSuites: BCP195Suites}
	mtls := tlsCfg.Clone()
	mtls.Certificates = []tls.Certificate{cred.Transport}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := &run{env: env, cred: cred, now: now,
		tls:   &http.Client{Timeout: env.Timeout, Transport: &http.Transport{TLSClientConfig: mtls}, CheckRedirect: noRedirect},
		plain: &http.Client{Timeout: env.Timeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}},
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
		{"data-pages", cred.SigningKid, r.dataPages},
		{"refresh", cred.TransportKid, r.refreshToken},
		{"providers", cred.SigningKid, r.providers},
		{"consent-revoke", cred.TransportKid, r.revokeConsent},
		{"webhook", "", r.webhook},
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
	// A timeout while the body arrives can look like a clean end to the
	// reader (the server stops once the connection closes): the request's
	// own deadline tells a cut-off answer from a whole one.
	if resp.Request != nil && resp.Request.Context().Err() != nil {
		return nil, fmt.Errorf("the answer was cut off after %d bytes: %w (Client.Timeout)", len(b), resp.Request.Context().Err())
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

// platformJWKS reads the platform's keys into a cache that refetches (at
// most once a minute) when an answer names a kid it lacks: the platform
// may rotate its key in the middle of a run.
func (r *run) platformJWKS(ctx context.Context, s *Step) error {
	r.platform = &jwks.Cache{URL: r.disc.JWKSURI, Client: r.plain, Now: r.now}
	set, err := r.platform.Keys(ctx)
	if err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("%d key(s)", len(set.Keys))
	return nil
}

// post sends a form over mutual TLS with a fresh client assertion.
func (r *run) post(ctx context.Context, endpoint string, form url.Values, s *Step) (*http.Response, []byte, error) {
	aud := r.env.AssertionAudience
	switch aud {
	case "":
		aud = r.env.Issuer
	case AudienceTokenEndpoint:
		aud = r.disc.Token
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
	var location string
	if r.env.Authorize != nil {
		if location, err = r.env.Authorize(ctx, u.String()); err != nil {
			return err
		}
	} else {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		resp, err := r.tls.Do(req)
		if err != nil {
			return err
		}
		body, _ := read(resp)
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			return fmt.Errorf("authorize answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		location = resp.Header.Get("Location")
	}
	loc, err := url.Parse(location)
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
	if r.env.Authorize != nil {
		s.Detail += " by the user"
	}
	return nil
}

// tokenAnswer is what the check reads of a token response.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	Details      []struct {
		ConsentID string   `json:"consent_id"`
		Accounts  []string `json:"accounts"`
	} `json:"authorization_details"`
}

// tokens reads a token answer.
func tokens(resp *http.Response, body []byte) (*tokenAnswer, error) {
	if resp.StatusCode != 200 {
		return nil, oauthFailure(resp.StatusCode, body)
	}
	var t tokenAnswer
	if json.Unmarshal(body, &t) != nil || t.AccessToken == "" || !strings.EqualFold(t.TokenType, "Bearer") {
		return nil, errors.New("the token answer has no Bearer access_token")
	}
	return &t, nil
}

func (r *run) exchangeCode(ctx context.Context, s *Step) error {
	resp, body, err := r.post(ctx, r.disc.Token, url.Values{"grant_type": {"authorization_code"}, "code": {r.code},
		"redirect_uri": {r.env.RedirectURI}, "code_verifier": {r.pkce.Verifier}}, s)
	if err != nil {
		return err
	}
	t, err := tokens(resp, body)
	if err != nil {
		return err
	}
	r.access, r.refresh = t.AccessToken, t.RefreshToken
	for _, d := range t.Details {
		if d.ConsentID != "" {
			r.consent = d.ConsentID
			if len(d.Accounts) > 0 {
				r.account = d.Accounts[0]
			}
		}
	}
	s.Detail = "certificate-bound access token"
	if r.consent != "" {
		s.Detail += " for consent " + r.consent
	}
	return nil
}

// signedGet is a resource call: mutual TLS, the bearer token, an
// x-signature over the URL, the interaction id checked on the way back.
func (r *run) signedGet(ctx context.Context, rawURL, token string, s *Step) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	s.InteractionID = NewUUID()
	signer := XSigner{Key: r.cred.SigningKey, Kid: r.cred.SigningKid, DCID: r.env.DCID, Profile: r.env.Profile}
	sig, err := signer.Sign(Request{URL: u, InteractionID: s.InteractionID}, r.env.DPID, r.now())
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-fapi-interaction-id", s.InteractionID)
	req.Header.Set("x-signature", sig)
	req.Header.Set("x-dp-id", r.env.DPID)
	resp, err := r.tls.Do(req)
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
	if got := resp.Header.Get("x-fapi-interaction-id"); got != s.InteractionID {
		return nil, fmt.Errorf("the answer's x-fapi-interaction-id %q is not ours", got)
	}
	return body, nil
}

// listPage is one page of a list answer.
type listPage struct {
	Data []json.RawMessage `json:"data"`
	Meta struct {
		Total int `json:"total"`
	} `json:"meta"`
	Next string `json:"next_page_params"`
}

// dataGet is a data call: signed, and its answer verified (against the
// platform's keys, refetched once for a kid not yet seen) and decrypted.
// It returns the plaintext and the DC key that opened it.
func (r *run) dataGet(ctx context.Context, rawURL string, s *Step) (*listPage, string, error) {
	body, err := r.signedGet(ctx, rawURL, r.access, s)
	if err != nil {
		return nil, "", err
	}
	platform, err := r.platform.KeysFor(ctx, KidOf(string(body)))
	if err != nil {
		return nil, "", err
	}
	payload, kid, err := UnwrapResponse(body, platform, r.cred.Decryptors, ResponseRules{Audience: r.env.DCID, Now: r.now()})
	if err != nil {
		return nil, "", err
	}
	var page listPage
	if json.Unmarshal(payload, &page) != nil || len(page.Data) == 0 {
		return nil, "", errors.New("the decrypted answer holds no data")
	}
	return &page, kid, nil
}

func (r *run) dataCall(ctx context.Context, s *Step) error {
	page, kid, err := r.dataGet(ctx, r.disc.ResourceServer+"/accounts?page_size=10", s)
	if err != nil {
		return err
	}
	if r.account == "" {
		var first struct {
			ID string `json:"account_id"`
		}
		json.Unmarshal(page.Data[0], &first)
		r.account = first.ID
	}
	s.Detail = "signed request accepted; answer verified and decrypted with " + kid
	return nil
}

// maxPages bounds how far a paginated list is followed.
const maxPages = 50

// eachPage reads a cursor-paginated list from base (which has a query):
// every page, following next_page_params, checking the count the platform
// gives; it returns the items and pages read.
func eachPage(base string, get func(url string) (*listPage, error)) (items, pages int, err error) {
	next := ""
	for {
		u := base
		if next != "" {
			u += "&next_page_params=" + url.QueryEscape(next)
		}
		page, err := get(u)
		if err != nil {
			return items, pages, fmt.Errorf("page %d: %w", pages+1, err)
		}
		pages++
		items += len(page.Data)
		if page.Next == "" {
			if page.Meta.Total != 0 && items != page.Meta.Total {
				return items, pages, fmt.Errorf("%d items over %d pages, but the platform counts %d", items, pages, page.Meta.Total)
			}
			return items, pages, nil
		}
		if pages == maxPages {
			return items, pages, fmt.Errorf("more than %d pages: the cursor does not advance", maxPages)
		}
		next = page.Next
	}
}

// dataPages reads every page of the first account's transactions,
// following the platform's cursor.
func (r *run) dataPages(ctx context.Context, s *Step) error {
	if r.account == "" {
		return errors.New("the consent covers no account")
	}
	base := r.disc.ResourceServer + "/accounts/" + url.PathEscape(r.account) + "/transactions?page_size=25"
	items, pages, err := eachPage(base, func(u string) (*listPage, error) {
		page, _, err := r.dataGet(ctx, u, s)
		return page, err
	})
	if err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("%d transactions in %d signed, encrypted pages", items, pages)
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
	t, err := tokens(resp, body)
	if err != nil {
		return err
	}
	r.access = t.AccessToken
	if t.RefreshToken != "" {
		r.refresh = t.RefreshToken
	}
	s.Detail = "refreshed"
	return nil
}

// providers gets a client-credentials token and reads the whole providers
// list.
func (r *run) providers(ctx context.Context, s *Step) error {
	resp, body, err := r.post(ctx, r.disc.Token, url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}}, s)
	if err != nil {
		return err
	}
	t, err := tokens(resp, body)
	if err != nil {
		return fmt.Errorf("client_credentials: %w", err)
	}
	r.service = t.AccessToken
	n, pages, err := eachPage(r.disc.ResourceServer+"/providers?page_size=5", func(u string) (*listPage, error) {
		body, err := r.signedGet(ctx, u, r.service, s)
		if err != nil {
			return nil, err
		}
		var page listPage
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("the providers list is not JSON: %v", err)
		}
		return &page, nil
	})
	if err != nil {
		return err
	}
	s.Detail = fmt.Sprintf("%d providers in %d pages", n, pages)
	return nil
}

// revokeConsent revokes the run's consent with the client-credentials
// token and checks that the platform says so.
func (r *run) revokeConsent(ctx context.Context, s *Step) error {
	if r.consent == "" {
		return errors.New("the token answer named no consent")
	}
	call := func(method, path string) (map[string]any, error) {
		req, _ := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(r.env.Issuer, "/")+"/consents/"+url.PathEscape(r.consent)+path, nil)
		req.Header.Set("Authorization", "Bearer "+r.service)
		s.InteractionID = NewUUID()
		req.Header.Set("x-fapi-interaction-id", s.InteractionID)
		resp, err := r.tls.Do(req)
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
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("the consent answer is not JSON: %v", err)
		}
		return out, nil
	}
	if _, err := call(http.MethodPost, "/revoke"); err != nil {
		return err
	}
	got, err := call(http.MethodGet, "")
	if err != nil {
		return err
	}
	if got["status"] != "revoked" {
		return fmt.Errorf("the consent is %v after its revocation", got["status"])
	}
	s.Detail = "consent " + r.consent + " revoked"
	return nil
}

// webhook waits for the revocation's consent event at the DC's receiver.
func (r *run) webhook(ctx context.Context, s *Step) error {
	if r.env.AwaitEvent == nil {
		s.Skipped, s.Detail = true, "skipped: no webhook receiver is configured"
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.env.Timeout)
	defer cancel()
	ev, err := r.env.AwaitEvent(ctx, r.consent, "revoked")
	if err != nil {
		return err
	}
	s.Detail = "signed " + ev.EventType + " event " + ev.EventID + " received over mutual TLS"
	return nil
}
