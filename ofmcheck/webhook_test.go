package ofmcheck_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// The receiver's own checks, request by request: the transport (mutual
// TLS, method, size) and every claim of the signed event.
func TestTheWebhookReceiverRefusesHostileDeliveries(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	platform := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &platKey.PublicKey, KeyID: "ofp-1", Use: "sig", Algorithm: "PS256"}}}
	event := func(mut func(m map[string]any)) string {
		m := map[string]any{"event_id": ofmcheck.NewUUID(), "event_type": ofmcheck.EventConsentStatus, "consent_id": ofmcheck.NewUUID(),
			"dc_id": dcID, "status": "revoked", "updated_by": "user", "iat": now.Unix()}
		if mut != nil {
			mut(m)
		}
		b, _ := json.Marshal(m)
		s, err := jwks.Sign(platKey, "ofp-1", b, false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := event(nil)
	noID := event(func(m map[string]any) { delete(m, "event_id") })
	verified := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	cases := []struct {
		name, method, body string
		tls                *tls.ConnectionState
		code               int
		want               string
	}{
		{"accepted", "POST", good, verified, 200, ""},
		{"a repeat is accepted again", "POST", good, verified, 200, ""},
		{"no client certificate", "POST", good, &tls.ConnectionState{}, 401, "client certificate"},
		{"plain HTTP", "POST", good, nil, 401, "client certificate"},
		{"GET", "GET", "", verified, 405, "POSTed"},
		{"oversized", "POST", strings.Repeat("A", 70<<10), verified, 413, "larger than"},
		{"not a JWS", "POST", `{"event_type":"consent_status_updated"}`, verified, 400, "compact JWS"},
		{"alg none", "POST", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"ofp-1"}`)) + "." + strings.Split(good, ".")[1] + ".", verified, 400, "signature"},
		{"signed by our own key", "POST", func() string { s, _ := jwks.Sign(dcKey, "ofp-1", []byte(`{}`), false); return s }(), verified, 400, "does not verify"},
		{"another DC", "POST", event(func(m map[string]any) { m["dc_id"] = "ffffffffffffffffffffffff" }), verified, 400, "not ours"},
		{"unknown event type", "POST", event(func(m map[string]any) { m["event_type"] = "payment_made" }), verified, 400, "event_type"},
		{"unknown status", "POST", event(func(m map[string]any) { m["status"] = "<script>" }), verified, 400, "status"},
		{"consent id not a UUID", "POST", event(func(m map[string]any) { m["consent_id"] = "../../etc" }), verified, 400, "consent_id"},
		{"no event id: accepted, known by its payload", "POST", noID, verified, 200, "sha256:"},
		{"the same again: a repeat", "POST", noID, verified, 200, `"duplicate":true`},
		{"an absurd event id", "POST", event(func(m map[string]any) { m["event_id"] = strings.Repeat("x", 200) }), verified, 400, "event_id"},
		{"an old event replayed", "POST", event(func(m map[string]any) { m["iat"] = now.Add(-time.Hour).Unix() }), verified, 400, "iat"},
		{"iat a string", "POST", event(func(m map[string]any) { m["iat"] = "now" }), verified, 400, "expected fields"},
	}
	var recorded, dups int
	rc := &ofmcheck.Receiver{DCID: dcID, Now: func() time.Time { return now },
		Platform: func(context.Context, string) (*jose.JSONWebKeySet, error) { return platform, nil },
		OnEvent: func(_ ofmcheck.ConsentEvent, dup bool) {
			if dup {
				dups++
			} else {
				recorded++
			}
		}}
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, ofmcheck.WebhookPath, strings.NewReader(tc.body))
		req.TLS = tc.tls
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: HTTP %d %s, want %d with %q", tc.name, w.Code, w.Body, tc.code, tc.want)
		}
		if w.Code != 200 && !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s: the refusal is not an OAuth-style error: %s", tc.name, w.Body)
		}
	}
	if recorded != 2 || dups != 2 || len(rc.Events()) != 2 {
		t.Fatalf("recorded %d, repeats %d, events %d; want 2, 2, 2", recorded, dups, len(rc.Events()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := rc.Await(ctx, ofmcheck.NewUUID(), "revoked"); err == nil || !strings.Contains(err.Error(), "no revoked event") {
		t.Fatalf("Await for an event that never comes: %v", err)
	}
}
