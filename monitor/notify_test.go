package monitor_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/ofmkeys/ofmkeys/monitor"
)

var secret = []byte("webhook-shared-secret")

func alert(rule string, sev monitor.Severity) monitor.Alert {
	return monitor.Alert{Rule: rule, Severity: sev, Key: "k", Summary: "the signing key s1 expires in 20 days"}
}

// received is what a loopback receiver got.
type received struct {
	mu     sync.Mutex
	bodies [][]byte
	got    chan monitor.Notification
}

// webhookReceiver checks each body's signature, as a receiver would, and
// answers with status(n) for the n-th delivery (from 1).
func webhookReceiver(t *testing.T, status func(n int) int, hang <-chan struct{}) (*httptest.Server, *received) {
	rec := &received{got: make(chan monitor.Notification, 100)}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1))
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := monitor.VerifySignature(secret, body, r.Header.Get(monitor.SignatureHeader), time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery %d: %v", i, err)
			w.WriteHeader(401)
			return
		}
		code := status(i)
		w.WriteHeader(code)
		if code == 200 {
			var note monitor.Notification
			json.Unmarshal(body, &note)
			rec.mu.Lock()
			rec.bodies = append(rec.bodies, body)
			rec.mu.Unlock()
			rec.got <- note
		}
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

func startAlerter(t *testing.T, a *monitor.Alerter) {
	ctx, cancel := context.WithCancel(context.Background())
	wg := a.Start(ctx)
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func next(t *testing.T, ch chan monitor.Notification) monitor.Notification {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
	}
	return monitor.Notification{}
}

// Firing once, again after the repeat interval, resolved when it stops;
// signed; retried through a 500; and only by the leader.
func TestAlertsAreNotifiedFiringRepeatedAndResolved(t *testing.T) {
	srv, rec := webhookReceiver(t, func(n int) int {
		if n == 2 {
			return 500 // the second delivery fails once, then is retried
		}
		return 200
	}, nil)
	clock := now
	var mu sync.Mutex
	leader := true
	a := &monitor.Alerter{Notifiers: []monitor.Notifier{&monitor.Webhook{URL: srv.URL, Secret: secret}}, Repeat: time.Hour, DCID: "dc1",
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }, Leader: func() bool { mu.Lock(); defer mu.Unlock(); return leader },
		Backoff: time.Millisecond}
	startAlerter(t, a)
	expiring := alert(monitor.RuleExpiring, monitor.Warning)
	a.Update([]monitor.Alert{expiring})
	if n := next(t, rec.got); n.Status != "firing" || n.Repeat || n.Alert.Rule != monitor.RuleExpiring || n.DCID != "dc1" || !n.Alert.Since.Equal(now) {
		t.Fatalf("first: %+v", n)
	}
	a.Update([]monitor.Alert{expiring}) // still firing, within the repeat interval: nothing
	mu.Lock()
	clock = clock.Add(61 * time.Minute)
	mu.Unlock()
	a.Update([]monitor.Alert{expiring})
	if n := next(t, rec.got); n.Status != "firing" || !n.Repeat {
		t.Fatalf("repeat: %+v", n)
	}
	a.Update(nil)
	if n := next(t, rec.got); n.Status != "resolved" || n.Alert.Rule != monitor.RuleExpiring {
		t.Fatalf("resolved: %+v", n)
	}
	// Another replica's view: the same alerts, no notifications.
	mu.Lock()
	leader = false
	mu.Unlock()
	a.Update([]monitor.Alert{alert(monitor.RuleProofFailing, monitor.Critical)})
	if got := a.Firing(); len(got) != 1 || got[0].Rule != monitor.RuleProofFailing {
		t.Fatalf("firing %+v", got)
	}
	a.Update(nil)
	mu.Lock()
	leader = true
	mu.Unlock()
	a.Update([]monitor.Alert{alert(monitor.RuleStoreUnreachable, monitor.Critical)})
	if n := next(t, rec.got); n.Alert.Rule != monitor.RuleStoreUnreachable {
		t.Fatalf("after becoming leader: %+v (a follower's alert leaked?)", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats()["webhook"].Sent != 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the worker counts once the answer is read
	}
	if st := a.Stats()["webhook"]; st.Sent != 4 || st.Retries != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A receiver that hangs: each attempt times out, retries are bounded, the
// queue is bounded (new notifications are dropped and counted), and
// Update never waits.
func TestAHangingReceiverDelaysOnlyItsOwnQueue(t *testing.T) {
	hang := make(chan struct{})
	srv, _ := webhookReceiver(t, func(int) int { return 200 }, hang)
	defer close(hang)
	slack, rec := slackReceiver(t)
	a := &monitor.Alerter{Notifiers: []monitor.Notifier{&monitor.Webhook{URL: srv.URL, Secret: secret}, &monitor.Slack{URL: slack.URL + "/services/T000/B000/SECRET"}},
		QueueSize: 2, Attempts: 2, Backoff: time.Millisecond, Timeout: 50 * time.Millisecond}
	startAlerter(t, a)
	start := time.Now()
	for i := range 10 {
		a.Update([]monitor.Alert{{Rule: "R", Severity: monitor.Warning, Key: string(rune('a' + i)), Summary: "s"}})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Update waited %v for a hanging receiver", d)
	}
	// Slack, beside it, gets what its own queue held.
	for range 2 {
		next(t, rec)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats()["webhook"].Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the worker's timeouts run out
	}
	st := a.Stats()["webhook"]
	if st.Dropped == 0 || st.Failed == 0 || st.Sent != 0 || st.Retries == 0 {
		t.Fatalf("webhook stats %+v", st)
	}
}

func slackReceiver(t *testing.T) (*httptest.Server, chan monitor.Notification) {
	got := make(chan monitor.Notification, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Text string `json:"text"`
		}
		if r.URL.Path != "/services/T000/B000/SECRET" || json.NewDecoder(r.Body).Decode(&body) != nil || body.Text == "" {
			w.WriteHeader(400)
			return
		}
		got <- monitor.Notification{Status: body.Text}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestSlackTextAndErrorsKeepTheWebhookSecret(t *testing.T) {
	n := monitor.Notification{Status: "firing", DCID: "dc1", Alert: monitor.Alert{Rule: monitor.RuleProofFailing, Severity: monitor.Critical, Summary: "the proof fails at <par> & more", Since: now}}
	if got := monitor.SlackText(n); !strings.Contains(got, ":red_circle: *CRITICAL* ProofFailing: the proof fails at &lt;par&gt; &amp; more") {
		t.Fatalf("text %q", got)
	}
	n.Status = "resolved"
	if got := monitor.SlackText(n); !strings.HasPrefix(got, ":white_check_mark: *RESOLVED*") {
		t.Fatalf("resolved %q", got)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(404) }))
	defer srv.Close()
	err := (&monitor.Slack{URL: srv.URL + "/services/T000/B000/SECRET"}).Notify(context.Background(), n)
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error %v", err)
	}
}

func TestWebhookSignaturesRefuseTamperingAndReplays(t *testing.T) {
	body := []byte(`{"status":"firing"}`)
	h := monitor.Sign(secret, body, now)
	for name, err := range map[string]error{
		"good":          monitor.VerifySignature(secret, body, h, now.Add(time.Minute), 5*time.Minute),
		"tampered":      monitor.VerifySignature(secret, []byte(`{"status":"resolved"}`), h, now, 5*time.Minute),
		"other secret":  monitor.VerifySignature([]byte("x"), body, h, now, 5*time.Minute),
		"replayed late": monitor.VerifySignature(secret, body, h, now.Add(time.Hour), 5*time.Minute),
		"garbage":       monitor.VerifySignature(secret, body, "v1=00", now, 5*time.Minute),
	} {
		if (err == nil) != (name == "good") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// smtpBackend hands on the mail a real SMTP server (go-smtp) received,
// after STARTTLS and AUTH PLAIN.
type smtpBackend struct {
	got chan string
}

type smtpSession struct {
	be     *smtpBackend
	conn   *smtp.Conn
	authed bool
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{be: b, conn: c}, nil
}
func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts" || pass != "s3cret" {
			return errors.New("invalid credentials")
		}
		if _, ok := s.conn.TLSConnectionState(); !ok {
			return errors.New("auth before STARTTLS")
		}
		s.authed = true
		return nil
	}), nil
}
func (s *smtpSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.be.got <- string(b)
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func TestEmailGoesOverSTARTTLSWithAuth(t *testing.T) {
	cert, key := issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().AddDate(0, 1, 0), false, nil, nil)
	be := &smtpBackend{got: make(chan string, 10)}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	e := &monitor.Email{Addr: ln.Addr().String(), From: "ofmkeys@dc.example.my", To: []string{"oncall@dc.example.my", "sec@dc.example.my"},
		Username: "alerts", Password: "s3cret", TLS: &tls.Config{RootCAs: roots}}
	n := monitor.Notification{Status: "firing", DCID: "dc1", Alert: monitor.Alert{Rule: monitor.RuleExpiring, Severity: monitor.Critical, Summary: "the transport key t1 expires in 10 days", Since: now}}
	if err := e.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	msg := <-be.got
	for _, want := range []string{"Subject: [ofmkeys CRITICAL] CertificateExpiringSoon\r\n", "To: oncall@dc.example.my, sec@dc.example.my\r\n",
		"the transport key t1 expires in 10 days", "dc_id: dc1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the mail lacks %q:\n%s", want, msg)
		}
	}
	bad := *e
	bad.Password = "wrong"
	if err := bad.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "SMTP AUTH") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	untrusted := *e
	untrusted.TLS = nil
	if err := untrusted.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("an untrusted server certificate: %v", err)
	}
	// A server without STARTTLS never gets the password.
	plain := smtp.NewServer(be)
	plain.Domain, plain.AllowInsecureAuth = "localhost", true
	pln, _ := net.Listen("tcp", "127.0.0.1:0")
	go plain.Serve(pln)
	defer plain.Close()
	clear := *e
	clear.Addr = pln.Addr().String()
	if err := clear.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("a server without STARTTLS: %v", err)
	}
}
