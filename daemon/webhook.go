package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Webhook is the consent event receiver (OFM-SPEC §7): PayNet POSTs signed
// events to {webhook}/consents/events over mutual TLS. It has a listener
// of its own, since it needs client certificates and the JWKS does not.
type Webhook struct {
	// Listen is its TCP address; empty means no receiver (with Sandbox,
	// one runs on loopback for the sandbox's events).
	Listen string
	// CertFile and KeyFile are the receiver's server certificate.
	CertFile, KeyFile string
	// ClientCAFile holds the CAs of PayNet's client certificate (PEM).
	ClientCAFile string
	// PlatformJWKS is PayNet's JWKS URL: event signatures are checked
	// against it (cached 15 minutes, refetched once for a new kid).
	PlatformJWKS string
}

func (w Webhook) check() error {
	if w.Listen == "" {
		return nil
	}
	if w.CertFile == "" || w.KeyFile == "" || w.ClientCAFile == "" || w.PlatformJWKS == "" {
		return errors.New("the webhook receiver needs a certificate and key, the platform's client CA file and the platform's JWKS URL")
	}
	if !jwks.IsURL(w.PlatformJWKS) {
		return fmt.Errorf("webhook platform JWKS %q: want a URL (https:// in production)", w.PlatformJWKS)
	}
	return nil
}

// newReceiver makes the daemon's receiver: events are logged and counted.
func (s *Server) newReceiver() *ofmcheck.Receiver {
	return &ofmcheck.Receiver{
		Now: s.clock.Now,
		OnEvent: func(ev ofmcheck.ConsentEvent, dup bool) {
			result := "accepted"
			if dup {
				result = "duplicate"
			}
			s.metrics.webhookEvents.WithLabelValues(result, ev.Status).Inc()
			s.log.Info("consent event", "result", result, "event_id", ev.EventID, "consent_id", ev.ConsentID, "status", ev.Status, "updated_by", ev.UpdatedBy)
		},
		OnReject: func(reason string, err error) {
			s.metrics.webhookEvents.WithLabelValues("rejected", "").Inc()
			s.log.Warn("consent event refused", "reason", reason, "err", err)
		},
	}
}

// webhookListener is a running receiver.
type webhookListener struct {
	srv  *http.Server
	addr string
}

// startWebhook runs the configured receiver; it returns nil when none is
// configured.
func (s *Server) startWebhook() (*webhookListener, error) {
	w := s.config().Webhook
	if w.Listen == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(w.CertFile, w.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("webhook certificate %s and key %s: %w", w.CertFile, w.KeyFile, err)
	}
	cas, err := pki.ReadCertPool(w.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("webhook client CA: %w", err)
	}
	cache := &jwks.Cache{URL: w.PlatformJWKS, Now: s.clock.Now, Client: &http.Client{Timeout: 5 * time.Second}}
	s.receiver.SetDCID(s.config().DCID)
	s.receiver.Platform = cache.KeysFor
	ln, err := net.Listen("tcp", w.Listen)
	if err != nil {
		return nil, fmt.Errorf("webhook: listen on %s: %w", w.Listen, err)
	}
	srv := s.receiver.Server(ofmcheck.WebhookTLS(cert, cas))
	srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.log.Info("receiving consent events", "addr", ln.Addr().String(), "path", ofmcheck.WebhookPath)
	go srv.ServeTLS(ln, "", "")
	s.webhookAddr.Store(ln.Addr().String())
	return &webhookListener{srv: srv, addr: ln.Addr().String()}, nil
}

// WebhookAddr is the receiver's address, once EventListening is seen ("" when
// no receiver is configured).
func (s *Server) WebhookAddr() string {
	a, _ := s.webhookAddr.Load().(string)
	return a
}
