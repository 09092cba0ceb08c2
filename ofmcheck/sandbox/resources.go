package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// TestUser is the user the sandbox's authorize step approves for.
const TestUser = "Siti Test"

// The test data: accounts every consent covers, the providers listed, and
// how many transactions each account has (enough for several pages).
var (
	testAccounts     = []string{"1234567890", "1234567891", "1234567892"}
	TransactionCount = 57
	ProviderCount    = 12
)

// apiError is an OAuth-style error answer (OFM-SPEC §6).
type apiError struct {
	code       int
	kind, desc string
}

func (e *apiError) write(w http.ResponseWriter) { ofmcheck.WriteError(w, e.code, e.kind, e.desc) }

// bearer checks a resource call: mutual TLS, a known and current access
// token, bound to the certificate on the connection.
func (s *Server) bearer(r *http.Request) (grant, *Client, *apiError) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return grant{}, nil, &apiError{401, "invalid_client", "a client certificate is required"}
	}
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g, known := s.access[at]
	c := s.clients[g.clientID]
	s.mu.Unlock()
	switch {
	case !ok || !known || s.clock.Now().After(g.expires):
		return g, nil, &apiError{401, "invalid_token", "unknown or expired access token"}
	case g.thumbprint != thumbprint(r.TLS.PeerCertificates[0].Raw) || s.switchNow() == OtherCertificate:
		return g, nil, &apiError{401, "invalid_token", "the token is bound to another certificate (cnf.x5t#S256)"}
	}
	return g, c, nil
}

// signedCall checks a resource call's x-signature with the client's keys.
func (s *Server) signedCall(r *http.Request, c *Client) (ofmcheck.Request, *apiError) {
	u := *r.URL
	u.Scheme, u.Host = "https", r.Host
	req := ofmcheck.Request{URL: &u, InteractionID: r.Header.Get("x-fapi-interaction-id")}
	if !ofmcheck.IsUUID(req.InteractionID) {
		return req, &apiError{400, "invalid_request", "x-fapi-interaction-id must be a UUID"}
	}
	keys, err := c.keys(r.Context(), ofmcheck.KidOf(r.Header.Get("x-signature")))
	if err != nil {
		return req, &apiError{500, "server_error", "the client's JWKS cannot be read"}
	}
	if err := ofmcheck.VerifyXSignature(r.Header.Get("x-signature"), req, keys, ofmcheck.XSigRules{Profile: c.Profile, DCID: c.DCID, DPID: r.Header.Get("x-dp-id"), Now: s.clock.Now()}); err != nil {
		return req, &apiError{400, "invalid_request", err.Error()}
	}
	return req, nil
}

// consentFor is the consent of a data call's token, which must be
// authorized and cover the account (when one is named).
func (s *Server) consentFor(g grant, account string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.consents[g.consentID]
	switch {
	case cs == nil:
		return &apiError{403, "access_denied", "account data needs a token of a consent (authorization_code grant)"}
	case cs.status != "authorized":
		return &apiError{403, "access_denied", "the consent is " + cs.status}
	case account != "" && !slices.Contains(cs.accounts, account):
		return &apiError{404, "not_found", "the consent does not cover this account"}
	}
	return nil
}

// dataCall runs the checks every account-data call shares and answers
// page (which builds the data) JWE-in-JWS.
func (s *Server) dataCall(w http.ResponseWriter, r *http.Request, build func(q pageQuery) (any, *apiError)) {
	g, c, e := s.bearer(r)
	if e == nil {
		e = s.consentFor(g, r.PathValue("id"))
	}
	var req ofmcheck.Request
	if e == nil {
		req, e = s.signedCall(r, c)
	}
	var q pageQuery
	if e == nil {
		q, e = s.pageQuery(r)
	}
	var data any
	if e == nil {
		data, e = build(q)
	}
	if e != nil {
		e.write(w)
		return
	}
	keys, err := c.keys(r.Context(), "")
	if err != nil {
		ofmcheck.WriteError(w, 500, "server_error", "the client's JWKS cannot be read")
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
		ofmcheck.WriteError(w, 400, "invalid_client", "the client's JWKS has no encryption key")
		return
	}
	if s.switchNow() == RotatedKey {
		s.Misbehave(Behave) // one rotation
		if _, err := s.RotatePlatformKey(); err != nil {
			ofmcheck.WriteError(w, 500, "server_error", "cannot rotate the platform key")
			return
		}
	}
	now := s.clock.Now()
	payload, _ := json.Marshal(data)
	body, err := s.dataResponse(c, encTo, payload, req.InteractionID, now)
	sw := s.switchNow()
	if sw != Behave && sw != OtherCertificate && sw != SlowBody {
		body, err = s.misbehaveAnswer(sw, c, encTo, req.InteractionID, now)
	}
	if err != nil {
		ofmcheck.WriteError(w, 500, "server_error", "cannot build the response")
		return
	}
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("x-fapi-interaction-id", req.InteractionID)
	w.WriteHeader(200)
	if sw == SlowBody {
		dribble(r.Context(), w, body)
		return
	}
	w.Write([]byte(body))
}

// dribble writes a body a byte at a time, slowly, until the client gives up.
func dribble(ctx context.Context, w http.ResponseWriter, body string) {
	f, _ := w.(http.Flusher)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for i := 0; i < len(body); i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := w.Write([]byte{body[i]}); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
	}
}

// dataResponse is OFM-SPEC §5's answer: the data signed by the provider,
// encrypted to the DC, the JWE carried in claims signed by the platform.
func (s *Server) dataResponse(c *Client, to *rsaPublicKey, data []byte, jti string, now time.Time) (string, error) {
	inner, err := jwks.Sign(s.dp.key, s.dp.kid, data, false) // by the data provider
	if err != nil {
		return "", err
	}
	jwe, err := jwks.Encrypt(to, "", []byte(inner))
	if err != nil {
		return "", err
	}
	claims, _ := json.Marshal(map[string]any{"iss": "Paynet OFP", "aud": c.DCID, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": jti, "data": jwe})
	return s.sign(claims)
}

// pageQuery is a list call's page: page_size items from offset.
type pageQuery struct{ size, offset int }

// Page sizes (OFM-SPEC §6: page_size and a cursor).
const (
	DefaultPageSize = 25
	MaxPageSize     = 100
)

func (s *Server) pageQuery(r *http.Request) (pageQuery, *apiError) {
	q := pageQuery{size: DefaultPageSize}
	if v := r.URL.Query().Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return q, &apiError{400, "invalid_request", fmt.Sprintf("page_size must be 1-%d", MaxPageSize)}
		}
		q.size = n
	}
	if v := r.URL.Query().Get("next_page_params"); v != "" {
		off, ok := s.openCursor(v)
		if !ok {
			return q, &apiError{400, "invalid_request", "next_page_params is not a cursor this server gave"}
		}
		q.offset = off
	}
	return q, nil
}

// cursor is an opaque, authenticated offset.
func (s *Server) cursor(offset int) string {
	m := hmac.New(sha256.New, s.cursorKey)
	fmt.Fprintf(m, "%d", offset)
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%x", offset, m.Sum(nil)[:8]))
}

func (s *Server) openCursor(c string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) > 64 {
		return 0, false
	}
	num, _, _ := strings.Cut(string(raw), ".")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || !hmac.Equal([]byte(s.cursor(n)), []byte(c)) {
		return 0, false
	}
	return n, true
}

// page cuts one page of n items; it returns the range and the cursor of
// the next page ("" on the last).
func (s *Server) page(q pageQuery, n int) (from, to int, next string) {
	from = min(q.offset, n)
	to = min(from+q.size, n)
	if to < n {
		next = s.cursor(to)
	}
	return from, to, next
}

// paged is a list answer.
type paged struct {
	Data []map[string]any `json:"data"`
	Meta struct {
		Total int `json:"total"`
	} `json:"meta"`
	Next string `json:"next_page_params,omitempty"`
}

func (s *Server) list(q pageQuery, n int, item func(i int) map[string]any) paged {
	from, to, next := s.page(q, n)
	p := paged{Next: next, Data: []map[string]any{}}
	p.Meta.Total = n
	for i := from; i < to; i++ {
		p.Data = append(p.Data, item(i))
	}
	return p
}

func accountItem(id string) map[string]any {
	return map[string]any{"account_id": id, "account_type": "savings", "currency": "MYR", "nickname": "Sandbox " + id[len(id)-3:]}
}

func (s *Server) accounts(w http.ResponseWriter, r *http.Request) {
	s.dataCall(w, r, func(q pageQuery) (any, *apiError) {
		return s.list(q, len(testAccounts), func(i int) map[string]any { return accountItem(testAccounts[i]) }), nil
	})
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	s.dataCall(w, r, func(pageQuery) (any, *apiError) {
		return map[string]any{"data": accountItem(r.PathValue("id"))}, nil
	})
}

func (s *Server) balances(w http.ResponseWriter, r *http.Request) {
	s.dataCall(w, r, func(pageQuery) (any, *apiError) {
		return map[string]any{"data": map[string]any{"account_id": r.PathValue("id"), "available": "1520.30", "current": "1620.30", "currency": "MYR",
			"as_of": s.clock.Now().In(myt).Format(time.RFC3339)}}, nil
	})
}

// myt is Malaysia's time zone: OFM dates carry +08:00.
var myt = time.FixedZone("MYT", 8*3600)

func (s *Server) transactions(w http.ResponseWriter, r *http.Request) {
	day := s.clock.Now().In(myt).Truncate(24 * time.Hour)
	s.dataCall(w, r, func(q pageQuery) (any, *apiError) {
		return s.list(q, TransactionCount, func(i int) map[string]any {
			return map[string]any{"transaction_id": fmt.Sprintf("%s-%04d", r.PathValue("id"), i), "amount": fmt.Sprintf("%d.%02d", 10+i*7%90, i*13%100),
				"currency": "MYR", "credit_debit": []string{"debit", "credit"}[i%3/2], "booked_at": day.Add(-time.Duration(i) * 6 * time.Hour).Format(time.RFC3339)}
		}), nil
	})
}

// providers is the DP directory: a client-credentials token, signed call,
// plain JSON answer, paginated.
func (s *Server) providers(w http.ResponseWriter, r *http.Request) {
	g, c, e := s.bearer(r)
	if e == nil && g.consentID != "" {
		e = &apiError{403, "insufficient_scope", "the providers list needs a client_credentials token (scope accounts)"}
	}
	if e == nil {
		_, e = s.signedCall(r, c)
	}
	var q pageQuery
	if e == nil {
		q, e = s.pageQuery(r)
	}
	if e != nil {
		e.write(w)
		return
	}
	iss := s.issuer
	w.Header().Set("x-fapi-interaction-id", r.Header.Get("x-fapi-interaction-id"))
	ofmcheck.WriteJSON(w, 200, s.list(q, ProviderCount, func(i int) map[string]any {
		id := fmt.Sprintf("DP98765432%02d", 10+i)
		return map[string]any{"dp_id": id, "name": fmt.Sprintf("Sandbox Bank %c", 'A'+i), "status": "active",
			"authorization_server": iss, "resource_server": iss + "/v1"}
	}))
}

// consentFrom reads the consent a management call names, which must be
// the client's, with a client-credentials token.
func (s *Server) consentFrom(r *http.Request) (*consent, *Client, *apiError) {
	g, c, e := s.bearer(r)
	if e != nil {
		return nil, nil, e
	}
	if g.consentID != "" {
		return nil, nil, &apiError{403, "insufficient_scope", "consent management needs a client_credentials token (scope accounts)"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.consents[r.PathValue("id")]
	if cs == nil || cs.clientID != c.ClientID {
		return nil, nil, &apiError{404, "not_found", "no such consent for this client"}
	}
	return cs, c, nil
}

func consentJSON(cs *consent, dcID string) map[string]any {
	return map[string]any{"consent_id": cs.id, "dc_id": dcID, "dp_id": cs.dpID, "status": cs.status, "accounts": cs.accounts,
		"status_updated_at": cs.updated.In(myt).Format(time.RFC3339)}
}

func (s *Server) getConsent(w http.ResponseWriter, r *http.Request) {
	cs, c, e := s.consentFrom(r)
	if e != nil {
		e.write(w)
		return
	}
	s.mu.Lock()
	out := consentJSON(cs, c.DCID)
	s.mu.Unlock()
	ofmcheck.WriteJSON(w, 200, out)
}

// consentMoves are the changes a DC may ask for, from the statuses each
// is allowed in.
var consentMoves = map[string]struct {
	to   string
	from []string
}{
	"revoke":     {"revoked", []string{"authorized", "suspended"}},
	"suspend":    {"suspended", []string{"authorized"}},
	"reactivate": {"authorized", []string{"suspended"}},
}

func (s *Server) changeConsent(w http.ResponseWriter, r *http.Request) {
	move, ok := consentMoves[r.PathValue("action")]
	if !ok {
		ofmcheck.WriteError(w, 404, "not_found", "consent actions are revoke, suspend and reactivate")
		return
	}
	cs, c, e := s.consentFrom(r)
	if e != nil {
		e.write(w)
		return
	}
	s.mu.Lock()
	if !slices.Contains(move.from, cs.status) {
		st := cs.status
		s.mu.Unlock()
		ofmcheck.WriteError(w, 409, "invalid_request", fmt.Sprintf("a %s consent cannot be %s", st, move.to))
		return
	}
	cs.status, cs.updated = move.to, s.clock.Now()
	out := consentJSON(cs, c.DCID)
	s.mu.Unlock()
	s.notify(c, cs.id, move.to, "dc")
	ofmcheck.WriteJSON(w, 200, out)
}
