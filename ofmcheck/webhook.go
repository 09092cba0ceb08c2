package ofmcheck

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// The consent event webhook (OFM-SPEC §7): PayNet POSTs to the DC's
// {webhook}/consents/events over mutual TLS a body signed with its key. The
// body is a compact PS256 JWS (Content-Type application/jose) whose payload
// is a ConsentEvent. OFM-SPEC §7 names no event id: a repeat is recognised
// by event_id when the platform sends one, else by the signed payload's
// SHA-256 (a repeat is the same signed event).

// WebhookPath is where the DC receives consent events.
const WebhookPath = "/consents/events"

// EventConsentStatus is the one event type the platform sends.
const EventConsentStatus = "consent_status_updated"

// ConsentStatuses are the statuses a consent can have (OFM-SPEC §6).
var ConsentStatuses = []string{"awaiting_authorization", "authorized", "rejected", "suspended", "expired", "revoked", "failed"}

// ConsentEvent is a consent's change of status.
type ConsentEvent struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	ConsentID string `json:"consent_id"`
	DCID      string `json:"dc_id"`
	Status    string `json:"status"`
	UpdatedBy string `json:"updated_by"`
	Iat       int64  `json:"iat"`
}

// maxEventBody bounds an event: they are a few hundred bytes.
const maxEventBody = 64 << 10

// seenEvents is how many event ids a Receiver remembers for idempotency.
const seenEvents = 4096

// Receiver is the DC's webhook: an http.Handler for WebhookPath that
// requires a verified client certificate (the listener's TLS config checks
// it against PayNet's CA), verifies the body's signature against the
// platform's keys, checks the claims, and records each event once. Safe for
// concurrent use.
type Receiver struct {
	// DCID is ours: events for another DC are refused. Set it before
	// serving, or with SetDCID.
	DCID string
	// Platform gives the platform's keys; kid is the signing key's id (so a
	// cache can refetch on a new one).
	Platform func(ctx context.Context, kid string) (*jose.JSONWebKeySet, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Skew is how far iat may be from now; zero means 5 minutes.
	Skew time.Duration
	// OnEvent, when set, is told of each accepted event (duplicate is true
	// for a repeat, which is answered 200 and not recorded again).
	OnEvent func(ev ConsentEvent, duplicate bool)
	// OnReject, when set, is told why a delivery was refused.
	OnReject func(reason string, err error)

	mu     sync.Mutex
	seen   map[string]bool
	order  []string // event ids, oldest first, to forget beyond seenEvents
	events []ConsentEvent
	wake   chan struct{}
}

func (rc *Receiver) now() time.Time {
	if rc.Now == nil {
		return time.Now()
	}
	return rc.Now()
}

// ServeHTTP receives one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reject := func(code int, reason string, err error) {
		if rc.OnReject != nil {
			rc.OnReject(reason, err)
		}
		WriteError(w, code, reason, err.Error())
	}
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		reject(http.StatusMethodNotAllowed, "invalid_request", errors.New("consent events are POSTed"))
		return
	case r.TLS == nil || len(r.TLS.VerifiedChains) == 0:
		reject(http.StatusUnauthorized, "invalid_client", errors.New("a client certificate from the platform's CA is required (mutual TLS)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		reject(http.StatusRequestEntityTooLarge, "invalid_request", fmt.Errorf("the body is larger than %d bytes", maxEventBody))
		return
	}
	ev, payload, err := rc.verify(r.Context(), body)
	if err != nil {
		reject(http.StatusBadRequest, "invalid_request", err)
		return
	}
	if ev.EventID == "" {
		sum := sha256.Sum256(payload)
		ev.EventID = "sha256:" + hex.EncodeToString(sum[:])
	}
	dup := rc.record(ev)
	if rc.OnEvent != nil {
		rc.OnEvent(ev, dup)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"received": ev.EventID, "duplicate": dup})
}

// verify checks an event's signature and claims; it returns the event and
// the signed payload.
func (rc *Receiver) verify(ctx context.Context, body []byte) (ConsentEvent, []byte, error) {
	var ev ConsentEvent
	token := string(body)
	keys, err := rc.Platform(ctx, KidOf(token))
	if err != nil {
		return ev, nil, fmt.Errorf("the platform's JWKS: %v", err)
	}
	v, err := jwks.Verify(token, nil, keys)
	if err != nil {
		return ev, nil, err
	}
	if err := json.Unmarshal(v.Payload, &ev); err != nil {
		return ev, nil, errors.New("the event is not a JSON object of the expected fields")
	}
	skew := rc.Skew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	now := rc.now()
	switch {
	case ev.EventType != EventConsentStatus:
		return ev, nil, fmt.Errorf("event_type %q: want %s", truncate(ev.EventType), EventConsentStatus)
	case len(ev.EventID) > 128:
		return ev, nil, errors.New("event_id is longer than 128 characters")
	case !IsUUID(ev.ConsentID):
		return ev, nil, errors.New("consent_id is not a UUID")
	case ev.DCID != rc.dcID():
		return ev, nil, fmt.Errorf("dc_id %q is not ours", truncate(ev.DCID))
	case !slices.Contains(ConsentStatuses, ev.Status):
		return ev, nil, fmt.Errorf("status %q is not a consent status", truncate(ev.Status))
	case ev.Iat < now.Add(-skew).Unix() || ev.Iat > now.Add(skew).Unix():
		return ev, nil, fmt.Errorf("iat %d is outside ±%v of now (%d)", ev.Iat, skew, now.Unix())
	}
	return ev, v.Payload, nil
}

// SetDCID sets the DC whose events are accepted, while serving.
func (rc *Receiver) SetDCID(dcID string) {
	rc.mu.Lock()
	rc.DCID = dcID
	rc.mu.Unlock()
}

func (rc *Receiver) dcID() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.DCID
}

// record keeps an event unless it was seen; it reports a repeat.
func (rc *Receiver) record(ev ConsentEvent) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = map[string]bool{}
	}
	if rc.seen[ev.EventID] {
		return true
	}
	rc.seen[ev.EventID] = true
	rc.order = append(rc.order, ev.EventID)
	rc.events = append(rc.events, ev)
	if len(rc.order) > seenEvents {
		delete(rc.seen, rc.order[0])
		rc.order = rc.order[1:]
		rc.events = rc.events[1:]
	}
	if rc.wake != nil {
		close(rc.wake)
		rc.wake = nil
	}
	return false
}

// Events returns the recorded events, oldest first.
func (rc *Receiver) Events() []ConsentEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.events)
}

// Await waits for an event about consentID with status, or ctx's end.
func (rc *Receiver) Await(ctx context.Context, consentID, status string) (ConsentEvent, error) {
	for {
		rc.mu.Lock()
		for _, ev := range rc.events {
			if ev.ConsentID == consentID && ev.Status == status {
				rc.mu.Unlock()
				return ev, nil
			}
		}
		if rc.wake == nil {
			rc.wake = make(chan struct{})
		}
		wake := rc.wake
		rc.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ConsentEvent{}, fmt.Errorf("no %s event for consent %s arrived: %w", status, consentID, ctx.Err())
		}
	}
}

// KidOf reads the kid of a compact JWS header without trusting anything
// else in it: it only picks a key (or asks a cache to refetch);
// verification checks everything. Invalid kids read as "".
func KidOf(token string) string {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil || !jwks.ValidKid(h.Kid) {
		return ""
	}
	return h.Kid
}

// WriteError answers an OAuth-style error (OFM-SPEC §6): {"error",
// "error_description"} with the HTTP status.
func WriteError(w http.ResponseWriter, code int, kind, desc string) {
	WriteJSON(w, code, map[string]string{"error": kind, "error_description": desc})
}

// WriteJSON answers v as JSON, never cached.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Server serves the receiver at WebhookPath with tls (WebhookTLS): small
// bodies, short timeouts.
func (rc *Receiver) Server(tls *tls.Config) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(WebhookPath, rc)
	return &http.Server{Handler: mux, TLSConfig: tls, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
}

// WebhookTLS is a receiver's listener TLS: the DC's server certificate,
// and client certificates required and verified against the platform's
// CAs (OFM-SPEC §7: the DC must require and check PayNet's certificate).
func WebhookTLS(server tls.Certificate, platformCAs *x509.CertPool) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: platformCAs, MinVersion: tls.VersionTLS12,
		CipherSuites: BCP195Suites}
}
