package sandbox

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

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
	mux.HandleFunc("POST /introspect", s.introspect)
	mux.HandleFunc("POST /revoke", s.revoke)
	mux.HandleFunc("GET /userinfo", s.userinfo)
	mux.HandleFunc("GET /v1/providers", s.providers)
	mux.HandleFunc("GET /v1/accounts", s.accounts)
	mux.HandleFunc("GET /v1/accounts/{id}", s.account)
	mux.HandleFunc("GET /v1/accounts/{id}/balances", s.balances)
	mux.HandleFunc("GET /v1/accounts/{id}/transactions", s.transactions)
	mux.HandleFunc("GET /consents/{id}", s.getConsent)
	mux.HandleFunc("POST /consents/{id}/{action}", s.changeConsent)
	return http.MaxBytesHandler(mux, 1<<20)
}

// Serve runs the sandbox on ln (TLS) until the server is closed; it returns
// the issuer URL.
func (s *Server) Serve(ln net.Listener) (*http.Server, string) {
	issuer := "https://" + ln.Addr().String()
	srv := &http.Server{Handler: s.Handler(issuer), TLSConfig: s.TLSConfig(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog}
	go srv.ServeTLS(ln, "", "")
	return srv, issuer
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	iss := s.issuer
	ofmcheck.WriteJSON(w, 200, map[string]any{
		"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
		"pushed_authorization_request_endpoint": iss + "/par", "jwks_uri": iss + "/jwks",
		"introspection_endpoint": iss + "/introspect", "revocation_endpoint": iss + "/revoke", "userinfo_endpoint": iss + "/userinfo",
		"token_endpoint_auth_methods_supported":      []string{"private_key_jwt", "tls_client_auth"},
		"tls_client_certificate_bound_access_tokens": true, "code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported": []string{"authorization_code", "client_credentials", "refresh_token"},
		"scopes_supported":      []string{"openid", "accounts", "profile"},
		"resource_server":       iss + "/v1",
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.jwksHits++
	s.mu.Unlock()
	ofmcheck.WriteJSON(w, 200, s.PlatformJWKS())
}

// JWKSHits counts the fetches of the platform's JWKS.
func (s *Server) JWKSHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksHits
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
	if r.PostForm.Get("client_assertion") == "" && c.TLSClientAuth {
		return c, tp, nil // tls_client_auth: the registered certificate is the credential
	}
	if r.PostForm.Get("client_assertion_type") != ofmcheck.ClientAssertionType {
		return nil, "", fmt.Errorf("client_assertion_type must be %s", ofmcheck.ClientAssertionType)
	}
	keys, err := c.keys(r.Context(), ofmcheck.KidOf(r.PostForm.Get("client_assertion")))
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
		ofmcheck.WriteError(w, 401, "invalid_client", err.Error())
		return
	}
	keys, err := c.keys(r.Context(), ofmcheck.KidOf(r.PostForm.Get("request")))
	if err != nil {
		ofmcheck.WriteError(w, 400, "invalid_client", "the client's JWKS: "+err.Error())
		return
	}
	ro, err := ofmcheck.CheckRequestObject(r.PostForm.Get("request"), keys, ofmcheck.JARRules{
		ClientID: c.ClientID, Issuer: s.issuer, RedirectURIs: c.RedirectURIs, DCID: c.DCID, Now: s.clock.Now()})
	if err != nil {
		ofmcheck.WriteError(w, 400, "invalid_request_object", err.Error())
		return
	}
	uri := "urn:ietf:params:oauth:request_uri:" + ofmcheck.NewUUID()
	s.mu.Lock()
	s.par[uri] = parEntry{clientID: c.ClientID, ro: ro, expires: s.clock.Now().Add(PARTTL)}
	s.mu.Unlock()
	w.Header().Set("x-fapi-interaction-id", r.Header.Get("x-fapi-interaction-id"))
	ofmcheck.WriteJSON(w, 201, map[string]any{"request_uri": uri, "expires_in": int(PARTTL / time.Second)})
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
	code, consentID := randomToken(), ofmcheck.NewUUID()
	dp := ""
	if len(p.ro.AuthorizationDetails) > 0 {
		dp = p.ro.AuthorizationDetails[0].Consent.DPID
	}
	s.mu.Lock()
	s.consents[consentID] = &consent{id: consentID, clientID: p.clientID, dpID: dp, status: "authorized", accounts: testAccounts, updated: s.clock.Now()}
	s.codes[code] = grant{clientID: p.clientID, consentID: consentID, scope: p.ro.Scope, redirect: p.ro.RedirectURI,
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
		ofmcheck.WriteError(w, 401, "invalid_client", err.Error())
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
			ofmcheck.WriteError(w, 400, "invalid_grant", "unknown, used or expired code")
			return
		case cg.redirect != r.PostForm.Get("redirect_uri"):
			ofmcheck.WriteError(w, 400, "invalid_grant", "redirect_uri differs from the authorization request")
			return
		case !ofmcheck.ValidVerifier(r.PostForm.Get("code_verifier")) || ofmcheck.S256(r.PostForm.Get("code_verifier")) != cg.challenge:
			ofmcheck.WriteError(w, 400, "invalid_grant", "PKCE verification failed")
			return
		}
		g = cg
	case "refresh_token":
		s.mu.Lock()
		rg, ok := s.refresh[r.PostForm.Get("refresh_token")]
		s.mu.Unlock()
		if !ok || rg.clientID != c.ClientID {
			ofmcheck.WriteError(w, 400, "invalid_grant", "unknown refresh token")
			return
		}
		g = rg
	case "client_credentials":
		if !slices.Contains(strings.Fields(r.PostForm.Get("scope")), "accounts") {
			ofmcheck.WriteError(w, 400, "invalid_scope", "client_credentials tokens are for scope accounts")
			return
		}
		g = grant{clientID: c.ClientID, scope: "accounts"}
	default:
		ofmcheck.WriteError(w, 400, "unsupported_grant_type", "authorization_code, refresh_token or client_credentials")
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
		resp["authorization_details"] = []map[string]any{{"type": ofmcheck.ConsentType, "consent_id": g.consentID, "status": "authorized", "accounts": testAccounts}}
	}
	s.mu.Unlock()
	ofmcheck.WriteJSON(w, 200, resp)
}

// introspect is RFC 7662 for the client's own tokens.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticate(r)
	if err != nil {
		ofmcheck.WriteError(w, 401, "invalid_client", err.Error())
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	g, ok := s.access[tok]
	if !ok {
		g, ok = s.refresh[tok]
	}
	s.mu.Unlock()
	if !ok || g.clientID != c.ClientID || (!g.expires.IsZero() && s.clock.Now().After(g.expires) && s.isAccess(tok)) {
		ofmcheck.WriteJSON(w, 200, map[string]any{"active": false})
		return
	}
	out := map[string]any{"active": true, "client_id": g.clientID, "scope": g.scope, "token_type": "Bearer",
		"cnf": map[string]string{"x5t#S256": g.thumbprint}}
	if s.isAccess(tok) {
		out["exp"] = g.expires.Unix()
	}
	if g.consentID != "" {
		out["consent_id"] = g.consentID
	}
	ofmcheck.WriteJSON(w, 200, out)
}

func (s *Server) isAccess(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.access[tok]
	return ok
}

// revoke is RFC 7009: the token (access or refresh) stops working; unknown
// tokens are answered 200 too.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticate(r)
	if err != nil {
		ofmcheck.WriteError(w, 401, "invalid_client", err.Error())
		return
	}
	tok := r.PostForm.Get("token")
	s.mu.Lock()
	if g, ok := s.access[tok]; ok && g.clientID == c.ClientID {
		delete(s.access, tok)
	}
	if g, ok := s.refresh[tok]; ok && g.clientID == c.ClientID {
		delete(s.refresh, tok)
	}
	s.mu.Unlock()
	w.WriteHeader(200)
}

// userinfo answers the test user's claims for a consent's token.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	g, _, e := s.bearer(r)
	if e != nil {
		e.write(w)
		return
	}
	if g.consentID == "" || !slices.Contains(strings.Fields(g.scope), "openid") {
		ofmcheck.WriteError(w, 403, "insufficient_scope", "userinfo needs a token of a consent granted with scope openid")
		return
	}
	ofmcheck.WriteJSON(w, 200, map[string]any{"sub": g.consentID, "name": TestUser, "email": "test.user@example.my", "id_type": "NRIC",
		"hashed_id_number": "c2FuZGJveC10ZXN0LXVzZXI"})
}
