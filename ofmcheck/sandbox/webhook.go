package sandbox

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// Delivery is what became of one consent event posted to a DC.
type Delivery struct {
	Event    ofmcheck.ConsentEvent `json:"event"`
	URL      string                `json:"url"`
	Attempts int                   `json:"attempts"`
	Status   int                   `json:"status"` // the last HTTP status; 0 when none came
	Err      string                `json:"error,omitempty"`

	body string
}

// OK tells whether the DC accepted the event.
func (d Delivery) OK() bool { return d.Status >= 200 && d.Status < 300 }

// Deliveries returns every finished delivery, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.delivered)
}

// SetConsentStatus changes a consent as the user or the DP would (at the
// DP's side) and notifies the DC's webhook.
func (s *Server) SetConsentStatus(consentID, status, updatedBy string) error {
	if !slices.Contains(ofmcheck.ConsentStatuses, status) {
		return fmt.Errorf("status %q: want one of %s", status, strings.Join(ofmcheck.ConsentStatuses, ", "))
	}
	s.mu.Lock()
	cs := s.consents[consentID]
	if cs == nil {
		s.mu.Unlock()
		return fmt.Errorf("no consent %s", consentID)
	}
	cs.status, cs.updated = status, s.clock.Now()
	c := s.clients[cs.clientID]
	s.mu.Unlock()
	s.notify(c, consentID, status, updatedBy)
	return nil
}

// Redeliver posts a finished delivery's event again, byte for byte (the
// platform may repeat events; the DC must be idempotent).
func (s *Server) Redeliver(d Delivery) {
	s.sending.Add(1)
	go func() {
		defer s.sending.Done()
		s.deliver(d.URL, d.Event, d.body)
	}()
}

// notify posts a consent event to the client's webhook, in the background.
func (s *Server) notify(c *Client, consentID, status, updatedBy string) {
	if c == nil || c.WebhookURL == "" {
		return
	}
	ev := ofmcheck.ConsentEvent{EventID: ofmcheck.NewUUID(), EventType: ofmcheck.EventConsentStatus, ConsentID: consentID,
		DCID: c.DCID, Status: status, UpdatedBy: updatedBy, Iat: s.clock.Now().Unix()}
	payload, _ := json.Marshal(ev)
	body, err := s.sign(payload)
	if err != nil {
		return
	}
	url := strings.TrimSuffix(c.WebhookURL, "/") + ofmcheck.WebhookPath
	s.sending.Add(1)
	go func() {
		defer s.sending.Done()
		s.deliver(url, ev, body)
	}()
}

// deliver posts one event over mutual TLS with the platform's client
// certificate, retrying a failed attempt with a growing pause.
func (s *Server) deliver(url string, ev ofmcheck.ConsentEvent, body string) {
	s.mu.Lock()
	roots, retries := s.WebhookRoots, s.WebhookRetries
	s.mu.Unlock()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{s.webhookCert}}}}
	defer client.CloseIdleConnections()
	d := Delivery{Event: ev, URL: url, body: body}
	pause := 100 * time.Millisecond
	for d.Attempts <= retries {
		if d.Attempts > 0 {
			time.Sleep(pause)
			pause *= 2
		}
		d.Attempts++
		d.Status, d.Err = 0, ""
		resp, err := client.Post(url, "application/jose", strings.NewReader(body))
		if err != nil {
			d.Err = err.Error()
			continue
		}
		resp.Body.Close()
		d.Status = resp.StatusCode
		if d.OK() || (resp.StatusCode >= 400 && resp.StatusCode < 500) {
			break // accepted, or refused for good
		}
	}
	s.mu.Lock()
	s.delivered = append(s.delivered, d)
	s.mu.Unlock()
}
