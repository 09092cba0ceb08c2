package sandbox

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// Handler serves the sandbox at issuer (scheme://host, no trailing slash).
func (s *Server) Handler(issuer string) http.Handler {
	s.mu.Lock()
	s.issuer = issuer
	s.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("POST /par", s.pushed)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /v1/accounts", s.accounts)
	return http.MaxBytesHandler(mux, 1<<20)
}

// Serve runs the sandbox on ln (TLS) until the server is closed; it returns
// the issuer URL.
func (s *Server) Serve(ln net.Listener) (*http.Server, string) {
	issuer := "https://" + ln.Addr().String()
	srv := &http.Server{Handler: s.Handler(issuer), TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 5 * time.Second}
	go srv.ServeTLS(ln, "", "")
	return srv, issuer
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	iss := s.issuer
	writeJSON(w, 200, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"pushed_authorization_request_endpoint": iss + "/par", "jwks_uri": iss + "/jwks",
		"token_endpoint_auth_methods_supported":      []string{"private_key_jwt", "tls_client_auth"},
		"tls_client_certificate_bound_access_tokens": true, "code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported": []string{"authorization_code", "client_credentials", "refresh_token"},
		"scopes_supported":      []string{"openid", "accounts", "profile"},
		"resource_server":       iss + "/v1",
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.PlatformJWKS()) }

func oauthError(w http.ResponseWriter, code int, kind, desc string) {
	writeJSON(w, code, map[string]string{"error": kind, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// authenticate checks the client certificate against the registration and
// the client assertion (private_key_jwt) in the form; it returns the client
// and the certificate's thumbprint.
func (s *Server) authenticate(r *http.Request) (*Client, string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, "", fmt.Errorf("a client certificate is required (mutual TLS)")
	}
	tp := thumbprint(r.TLS.PeerCertificates[0].Raw)
	if err := r.ParseForm(); err != nil {
		return nil, "", fmt.Errorf("form: %v", err)
	}
	s.mu.Lock()
	c := s.clients[r.PostForm.Get("client_id")]
	s.mu.Unlock()
	if c == nil {
		return nil, "", fmt.Errorf("unknown client_id")
	}
	if !slices.Contains(c.Transport, tp) {
		return nil, "", fmt.Errorf("the client certificate %s is not registered for this client", tp)
	}
	if r.PostForm.Get("client_assertion_type") != ofmcheck.ClientAssertionType {
		return nil, "", fmt.Errorf("client_assertion_type must be %s", ofmcheck.ClientAssertionType)
	}
	keys, err := c.keys(r.Context(), kidOf(r.PostForm.Get("client_assertion")))
	if err != nil {
		return nil, "", fmt.Errorf("the client's JWKS: %v", err)
	}
	_, err = ofmcheck.CheckClientAssertion(r.PostForm.Get("client_assertion"), keys, ofmcheck.AssertionRules{
		ClientID: c.ClientID, Audiences: []string{s.issuer, s.issuer + "/token"}, Now: s.clock.Now(),
		Seen: func(jti string, until time.Time) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.jtis[jti]; ok {
				return true
			}
			s.jtis[jti] = until
			return false
		},
	})
	if err != nil {
		return nil, "", err
	}
	return c, tp, nil
}

func (s *Server) pushed(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticate(r)
	if err != nil {
		oauthError(w, 401, "invalid_client", err.Error())
		return
	}
	keys, err := c.keys(r.Context(), kidOf(r.PostForm.Get("request")))
	if err != nil {
		oauthError(w, 400, "invalid_client", "the client's JWKS: "+err.Error())
		return
	}
	ro, err := ofmcheck.CheckRequestObject(r.PostForm.Get("request"), keys, ofmcheck.JARRules{
		ClientID: c.ClientID, Issuer: s.issuer, RedirectURIs: c.RedirectURIs, DCID: c.DCID, Now: s.clock.Now()})
	if err != nil {
		oauthError(w, 400, "invalid_request_object", err.Error())
		return
	}
	uri := "urn:ietf:params:oauth:request_uri:" + ofmcheck.NewUUID()
	s.mu.Lock()
	s.par[uri] = parEntry{clientID: c.ClientID, ro: ro, expires: s.clock.Now().Add(PARTTL)}
	s.mu.Unlock()
	w.Header().Set("x-fapi-interaction-id", r.Header.Get("x-fapi-interaction-id"))
	writeJSON(w, 201, map[string]any{"request_uri": uri, "expires_in": int(PARTTL / time.Second)})
}

// authorize auto-approves the sandbox's test user and redirects with a code.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	p, ok := s.par[q.Get("request_uri")]
	delete(s.par, q.Get("request_uri"))
	s.mu.Unlock()
	if !ok || p.clientID != q.Get("client_id") || s.clock.Now().After(p.expires) {
		http.Error(w, "unknown, used or expired request_uri", 400)
		return
	}
	code := randomToken()
	s.mu.Lock()
	s.codes[code] = grant{clientID: p.clientID, consentID: ofmcheck.NewUUID(), scope: p.ro.Scope, redirect: p.ro.RedirectURI,
		challenge: p.ro.CodeChallenge, expires: s.clock.Now().Add(CodeTTL)}
	s.mu.Unlock()
	loc, _ := url.Parse(p.ro.RedirectURI)
	v := loc.Query()
	v.Set("code", code)
	v.Set("state", p.ro.State)
	v.Set("iss", s.issuer)
	loc.RawQuery = v.Encode()
	http.Redirect(w, r, loc.String(), http.StatusSeeOther)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	c, tp, err := s.authenticate(r)
	if err != nil {
		oauthError(w, 401, "invalid_client", err.Error())
		return
	}
	now := s.clock.Now()
	var g grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.mu.Lock()
		cg, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		s.mu.Unlock()
		switch {
		case !ok || cg.clientID != c.ClientID || now.After(cg.expires):
			oauthError(w, 400, "invalid_grant", "unknown, used or expired code")
			return
		case cg.redirect != r.PostForm.Get("redirect_uri"):
			oauthError(w, 400, "invalid_grant", "redirect_uri differs from the authorization request")
			return
		case !ofmcheck.ValidVerifier(r.PostForm.Get("code_verifier")) || ofmcheck.S256(r.PostForm.Get("code_verifier")) != cg.challenge:
			oauthError(w, 400, "invalid_grant", "PKCE verification failed")
			return
		}
		g = cg
	case "refresh_token":
		s.mu.Lock()
		rg, ok := s.refresh[r.PostForm.Get("refresh_token")]
		s.mu.Unlock()
		if !ok || rg.clientID != c.ClientID {
			oauthError(w, 400, "invalid_grant", "unknown refresh token")
			return
		}
		g = rg
	case "client_credentials":
		g = grant{clientID: c.ClientID, scope: r.PostForm.Get("scope")}
	default:
		oauthError(w, 400, "unsupported_grant_type", "authorization_code, refresh_token or client_credentials")
		return
	}
	g.thumbprint, g.expires = tp, now.Add(AccessTTL)
	at := randomToken()
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(AccessTTL / time.Second), "scope": g.scope}
	s.mu.Lock()
	s.access[at] = g
	if g.consentID != "" {
		rt := r.PostForm.Get("refresh_token")
		if rt == "" {
			rt = randomToken() // refresh tokens are not rotated (OFM-SPEC §3)
		}
		s.refresh[rt] = g
		resp["refresh_token"] = rt
		resp["authorization_details"] = []map[string]any{{"type": ofmcheck.ConsentType, "consent_id": g.consentID, "status": "authorized"}}
	}
	s.mu.Unlock()
	writeJSON(w, 200, resp)
}

// accounts is a data call: a bound token, a valid x-signature, and an
// answer signed by the platform and encrypted to the DC.
func (s *Server) accounts(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		oauthError(w, 401, "invalid_client", "a client certificate is required")
		return
	}
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g, known := s.access[at]
	c := s.clients[g.clientID]
	s.mu.Unlock()
	now := s.clock.Now()
	switch {
	case !ok || !known || now.After(g.expires):
		oauthError(w, 401, "invalid_token", "unknown or expired access token")
		return
	case g.thumbprint != thumbprint(r.TLS.PeerCertificates[0].Raw) || s.switchNow() == OtherCertificate:
		oauthError(w, 401, "invalid_token", "the token is bound to another certificate (cnf.x5t#S256)")
		return
	}
	keys, err := c.keys(r.Context(), kidOf(r.Header.Get("x-signature")))
	if err != nil {
		oauthError(w, 500, "server_error", "the client's JWKS cannot be read")
		return
	}
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	req := ofmcheck.Request{URL: &u, InteractionID: r.Header.Get("x-fapi-interaction-id")}
	if err := ofmcheck.VerifyXSignature(r.Header.Get("x-signature"), req, keys, ofmcheck.XSigRules{Profile: c.Profile, DCID: c.DCID, DPID: r.Header.Get("x-dp-id"), Now: now}); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	var encTo *rsaPublicKey
	for _, k := range keys.Keys {
		if pub, ok := k.Key.(*rsaPublicKey); ok && k.Use == "enc" {
			encTo = pub // peers encrypt to the first enc key they find
			break
		}
	}
	if encTo == nil {
		oauthError(w, 400, "invalid_client", "the client's JWKS has no encryption key")
		return
	}
	body, err := s.dataResponse(c, encTo, req.InteractionID, now)
	if sw := s.switchNow(); sw != Behave && sw != OtherCertificate {
		body, err = s.misbehaveAnswer(sw, c, encTo, req.InteractionID, now)
	}
	if err != nil {
		oauthError(w, 500, "server_error", "cannot build the response")
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("x-fapi-interaction-id", req.InteractionID)
	w.WriteHeader(200)
	w.Write([]byte(body))
}

// dataResponse is OFM-SPEC §5's answer: the data signed by the provider,
// encrypted to the DC, the JWE carried in claims signed by the platform.
func (s *Server) dataResponse(c *Client, to *rsaPublicKey, jti string, now time.Time) (string, error) {
	data, _ := json.Marshal(map[string]any{"data": []map[string]any{{"account_id": "1234567890", "currency": "MYR", "balance": "1520.30"}}})
	inner, err := jwks.Sign(s.platform, PlatformKid, data, false)
	if err != nil {
		return "", err
	}
	jwe, err := jwks.Encrypt(to, "", []byte(inner))
	if err != nil {
		return "", err
	}
	claims, _ := json.Marshal(map[string]any{"iss": "Paynet OFP", "aud": c.DCID, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": jti, "data": jwe})
	return jwks.Sign(s.platform, PlatformKid, claims, false)
}
