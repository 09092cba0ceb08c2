package sandbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

// dc is a Data Consumer talking to the sandbox directly over mutual TLS.
type dc struct {
	t      testing.TB
	issuer string
	cred   ofmcheck.Credentials
	http   *http.Client
}

func newDC(t testing.TB) (*dc, *sandbox.Server) {
	sb, issuer, roots, s, ks := setup(t)
	register(sb, ks, ks.Active(pki.Transport).Kid, ofmcheck.XSigClassic)
	cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cred.Transport}, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &dc{t: t, issuer: issuer, cred: cred, http: &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, sb
}

// post sends a form to an AS endpoint with a fresh client assertion
// (none when assert is false: tls_client_auth).
func (d *dc) post(path string, form url.Values, assert bool) (int, map[string]any) {
	d.t.Helper()
	form.Set("client_id", clientID)
	if assert {
		a, err := ofmcheck.ClientAssertion(d.cred.SigningKey, d.cred.SigningKid, clientID, d.issuer, time.Now(), time.Minute)
		if err != nil {
			d.t.Fatal(err)
		}
		form.Set("client_assertion_type", ofmcheck.ClientAssertionType)
		form.Set("client_assertion", a)
	}
	resp, err := d.http.PostForm(d.issuer+path, form)
	if err != nil {
		d.t.Fatal(err)
	}
	return decode(d.t, resp)
}

// call is a resource call with a bearer token, x-signature included.
func (d *dc) call(method, path, token string) (int, map[string]any) {
	d.t.Helper()
	u, _ := url.Parse(d.issuer + path)
	id := ofmcheck.NewUUID()
	sig, err := ofmcheck.XSigner{Key: d.cred.SigningKey, Kid: d.cred.SigningKid, DCID: dcID}.Sign(ofmcheck.Request{URL: u, InteractionID: id}, "DP9876543210", time.Now())
	if err != nil {
		d.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, u.String(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-fapi-interaction-id", id)
	req.Header.Set("x-signature", sig)
	req.Header.Set("x-dp-id", "DP9876543210")
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	return decode(d.t, resp)
}

func decode(t testing.TB, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("HTTP %d: %s is not JSON", resp.StatusCode, body)
		}
	} else {
		out["body"] = string(body)
	}
	return resp.StatusCode, out
}

// consent runs PAR, authorize and the code exchange: an access token of a
// consent, its refresh token and the consent id.
func (d *dc) consent() (access, refresh, consentID string) {
	d.t.Helper()
	pkce := ofmcheck.NewPKCE()
	ro := ofmcheck.RequestObject{Iss: clientID, Aud: d.issuer, ClientID: clientID, ResponseType: "code", RedirectURI: redirect, Scope: "openid accounts",
		State: "s1", Nonce: "n1", CodeChallenge: pkce.Challenge, CodeChallengeMethod: "S256",
		AuthorizationDetails: []ofmcheck.AuthorizationDetail{{Type: ofmcheck.ConsentType, Consent: ofmcheck.Consent{DCID: dcID, DPID: "DP9876543210",
			ConsentType: "account_access", ConsentPurpose: "pfm", Permissions: []string{"read_accounts"}, ExpirationDateTime: time.Now().AddDate(0, 1, 0).Format(time.RFC3339)}}}}
	jar, err := ofmcheck.SignRequestObject(d.cred.SigningKey, d.cred.SigningKid, ro, time.Now())
	if err != nil {
		d.t.Fatal(err)
	}
	code, par := d.post("/par", url.Values{"request": {jar}}, true)
	if code != 201 {
		d.t.Fatalf("PAR: %d %v", code, par)
	}
	resp, err := d.http.Get(d.issuer + "/authorize?" + url.Values{"client_id": {clientID}, "request_uri": {par["request_uri"].(string)}}.Encode())
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code, tok := d.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {pkce.Verifier}}, true)
	if code != 200 {
		d.t.Fatalf("token: %d %v", code, tok)
	}
	details := tok["authorization_details"].([]any)[0].(map[string]any)
	return tok["access_token"].(string), tok["refresh_token"].(string), details["consent_id"].(string)
}

func (d *dc) service() string {
	d.t.Helper()
	code, tok := d.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}}, true)
	if code != 200 {
		d.t.Fatalf("client_credentials: %d %v", code, tok)
	}
	return tok["access_token"].(string)
}

func TestIntrospectionRevocationAndUserinfo(t *testing.T) {
	d, _ := newDC(t)
	access, refresh, consentID := d.consent()
	code, info := d.post("/introspect", url.Values{"token": {access}}, true)
	cnf, _ := info["cnf"].(map[string]any)
	if code != 200 || info["active"] != true || info["consent_id"] != consentID || cnf["x5t#S256"] != d.cred.TransportKid {
		t.Fatalf("introspect: %d %v", code, info)
	}
	if code, user := d.call("GET", "/userinfo", access); code != 200 || user["name"] != sandbox.TestUser || user["sub"] != consentID {
		t.Fatalf("userinfo: %d %v", code, user)
	}
	if code, _ := d.post("/revoke", url.Values{"token": {access}}, true); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if _, info := d.post("/introspect", url.Values{"token": {access}}, true); info["active"] != false {
		t.Fatalf("a revoked token is still active: %v", info)
	}
	if code, e := d.call("GET", "/v1/accounts", access); code != 401 || e["error"] != "invalid_token" {
		t.Fatalf("a revoked token still reads data: %d %v", code, e)
	}
	// The refresh token survives the access token's revocation, and is
	// not rotated.
	code, tok := d.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true)
	if code != 200 || tok["refresh_token"] != refresh {
		t.Fatalf("refresh: %d %v", code, tok)
	}
	// An unknown token is answered 200 by revocation (RFC 7009) and
	// inactive by introspection.
	if code, _ := d.post("/revoke", url.Values{"token": {"nope"}}, true); code != 200 {
		t.Fatalf("revoking an unknown token: %d", code)
	}
}

func TestTLSClientAuthOnlyWhenRegistered(t *testing.T) {
	d, sb := newDC(t)
	if code, e := d.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}}, false); code != 401 || !strings.Contains(e["error_description"].(string), "client_assertion_type") {
		t.Fatalf("without an assertion, for a private_key_jwt client: %d %v", code, e)
	}
	sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, Transport: []string{d.cred.TransportKid}, TLSClientAuth: true,
		JWKS: func() (*jose.JSONWebKeySet, error) { return nil, nil }})
	if code, tok := d.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}}, false); code != 200 || tok["access_token"] == nil {
		t.Fatalf("tls_client_auth: %d %v", code, tok)
	}
	if code, e := d.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"payments"}}, false); code != 400 || e["error"] != "invalid_scope" {
		t.Fatalf("scope payments: %d %v", code, e)
	}
}

func TestProvidersArePagedWithAnAuthenticatedCursor(t *testing.T) {
	d, _ := newDC(t)
	svc := d.service()
	var ids []string
	next := ""
	for pages := 0; pages < 10; pages++ {
		path := "/v1/providers?page_size=5"
		if next != "" {
			path += "&next_page_params=" + url.QueryEscape(next)
		}
		code, page := d.call("GET", path, svc)
		if code != 200 {
			t.Fatalf("page %d: %d %v", pages, code, page)
		}
		for _, p := range page["data"].([]any) {
			ids = append(ids, p.(map[string]any)["dp_id"].(string))
		}
		next, _ = page["next_page_params"].(string)
		if next == "" {
			break
		}
	}
	if len(ids) != sandbox.ProviderCount || ids[0] != "DP9876543210" {
		t.Fatalf("providers over the pages: %v", ids)
	}
	for _, bad := range []string{"page_size=0", "page_size=101", "page_size=x", "next_page_params=" + url.QueryEscape(`MTAuZGVhZGJlZWZkZWFkYmVlZg`), "next_page_params=%00", "next_page_params=" + strings.Repeat("A", 500)} {
		if code, e := d.call("GET", "/v1/providers?"+bad, svc); code != 400 || e["error"] != "invalid_request" {
			t.Errorf("%s: %d %v", bad, code, e)
		}
	}
	// A consent's token is not a client-credentials one, and back.
	access, _, _ := d.consent()
	if code, e := d.call("GET", "/v1/providers", access); code != 403 {
		t.Fatalf("providers with a consent's token: %d %v", code, e)
	}
	if code, e := d.call("GET", "/v1/accounts", svc); code != 403 {
		t.Fatalf("accounts with a client-credentials token: %d %v", code, e)
	}
}

func TestConsentLifecycleGatesDataAndNotifiesTheDC(t *testing.T) {
	sb, issuer, roots, s, ks := setup(t)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	rc, _ := withReceiver(t, sb, ks, ofmcheck.Env{})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cred.Transport}}}
	defer tr.CloseIdleConnections()
	d := &dc{t: t, issuer: issuer, cred: cred, http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	access, _, id := d.consent()
	svc := d.service()
	step := func(action string, want int, status string) {
		t.Helper()
		code, out := d.call("POST", "/consents/"+id+"/"+action, svc)
		if code != want || (status != "" && out["status"] != status) {
			t.Fatalf("%s: %d %v", action, code, out)
		}
		if status != "" {
			if _, err := rc.Await(ctx, id, status); err != nil {
				t.Fatal(err)
			}
		}
	}
	step("suspend", 200, "suspended")
	if code, e := d.call("GET", "/v1/accounts", access); code != 403 || !strings.Contains(e["error_description"].(string), "suspended") {
		t.Fatalf("data of a suspended consent: %d %v", code, e)
	}
	step("reactivate", 200, "authorized")
	if code, _ := d.call("GET", "/v1/accounts/1234567890/balances", access); code != 200 {
		t.Fatalf("balances after reactivation: %d", code)
	}
	if code, _ := d.call("GET", "/v1/accounts/9999999999", access); code != 404 {
		t.Fatalf("an account outside the consent: %d", code)
	}
	step("revoke", 200, "revoked")
	step("revoke", 409, "")
	step("reactivate", 409, "")
	step("delete", 404, "")
	if code, _ := d.call("GET", "/consents/"+ofmcheck.NewUUID(), svc); code != 404 {
		t.Fatalf("an unknown consent: %d", code)
	}
	if evs := rc.Events(); len(evs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(evs), evs)
	}
	// The platform may repeat an event: the DC answers 200 and records it once.
	sb.Close()
	last := sb.Deliveries()[2]
	dup := make(chan bool, 1)
	rc.OnEvent = func(_ ofmcheck.ConsentEvent, duplicate bool) { dup <- duplicate }
	sb.Redeliver(last)
	if !<-dup || len(rc.Events()) != 3 {
		t.Fatalf("a repeated event was recorded again: %+v", rc.Events())
	}
}

// What the DC's receiver refuses, delivered by the sandbox: keys it does
// not trust, another DC's events; and a platform that does not trust the
// DC's server retries, then records the failure.
func TestTheWebhookReceiverRefusesWhatItCannotTrust(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(sb *sandbox.Server, rc *ofmcheck.Receiver)
		attempts int
		err      string
	}{
		{"signed by a key not in the platform's JWKS", func(sb *sandbox.Server, rc *ofmcheck.Receiver) {
			rc.Platform = func(context.Context, string) (*jose.JSONWebKeySet, error) { return &jose.JSONWebKeySet{}, nil }
		}, 1, ""},
		{"another DC's event", func(sb *sandbox.Server, rc *ofmcheck.Receiver) { rc.DCID = "ffffffffffffffffffffffff" }, 1, ""},
		{"a DC server certificate the platform does not trust", func(sb *sandbox.Server, rc *ofmcheck.Receiver) {
			sb.WebhookRoots = x509.NewCertPool()
		}, 2, "certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb, issuer, roots, s, ks := setup(t)
			cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
			sb.WebhookRetries = 1
			rc := &ofmcheck.Receiver{DCID: dcID}
			var reasons []string
			rc.OnReject = func(reason string, err error) { reasons = append(reasons, reason+": "+err.Error()) }
			tc.setup(sb, rc)
			base, stop, err := sb.LocalReceiver(rc)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{cred.TransportKid}, WebhookURL: base,
				JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
			if err := sb.SetConsentStatus(ofmcheck.NewUUID(), "revoked", "dp"); err == nil {
				t.Fatal("an unknown consent's status changed")
			}
			// The check's revocation causes the one event.
			if rep := ofmcheck.Check(ctx, ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}, cred, nil); !rep.OK {
				t.Fatalf("check: %+v", rep.Steps)
			}
			sb.Close()
			ds := sb.Deliveries()
			if len(ds) != 1 || ds[0].OK() || ds[0].Attempts != tc.attempts || !strings.Contains(ds[0].Err, tc.err) {
				t.Fatalf("deliveries %+v", ds)
			}
			if len(rc.Events()) != 0 {
				t.Fatalf("the receiver recorded %+v", rc.Events())
			}
			t.Logf("delivery: HTTP %d %s; receiver: %v", ds[0].Status, ds[0].Err, reasons)
		})
	}
}

// The slow-body case leaves no goroutine behind once the check gave up.
func TestASlowAnswerLeavesNothingRunning(t *testing.T) {
	sb, issuer, roots, s, ks := setup(t)
	register(sb, ks, ks.Active(pki.Transport).Kid, ofmcheck.XSigClassic)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect, Timeout: 300 * time.Millisecond}
	ofmcheck.Check(ctx, env, cred, nil) // warm up: the listener's goroutines
	before := runtime.NumGoroutine()
	sb.Misbehave(sandbox.SlowBody)
	rep := ofmcheck.Check(ctx, env, cred, nil)
	sb.Misbehave(sandbox.Behave)
	if rep.OK || !strings.Contains(rep.Steps[len(rep.Steps)-1].Error, "Client.Timeout") {
		t.Fatalf("a slow answer did not time out: %+v", rep.Steps[len(rep.Steps)-1])
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the server side notices the closed connection
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the slow answer, %d before", n, before)
	}
}
