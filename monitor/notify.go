package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

// postJSON posts a JSON body and wants a 2xx answer.
func postJSON(ctx context.Context, client *http.Client, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered HTTP %d", redactURL(url), resp.StatusCode)
	}
	return nil
}

// redactURL keeps a webhook URL's host only: the path of a Slack or
// similar webhook is its secret.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "the webhook"
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host + "/…"
}

// SignatureHeader carries a webhook body's HMAC: "t=UNIX,v1=HEX" where HEX
// is HMAC-SHA256(secret, "UNIX." + body). Receivers recompute it and refuse
// a timestamp too far from their clock (replays).
const SignatureHeader = "X-Ofmkeys-Signature"

// Sign computes the SignatureHeader value for a body sent at t.
func Sign(secret, body []byte, t time.Time) string {
	m := hmac.New(sha256.New, secret)
	ts := strconv.FormatInt(t.Unix(), 10)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a SignatureHeader value at now, within skew.
func VerifySignature(secret, body []byte, header string, now time.Time, skew time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return fmt.Errorf("signature timestamp %s is %v from now", ts, d.Round(time.Second))
	}
	_, want, _ := strings.Cut(Sign(secret, body, time.Unix(sec, 0)), ",v1=")
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// Webhook posts each notification as JSON, signed with HMAC-SHA256.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

func (w *Webhook) Name() string { return "webhook" }

func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	h := http.Header{}
	h.Set(SignatureHeader, Sign(w.Secret, body, now))
	h.Set("User-Agent", "ofmkeys")
	return postJSON(ctx, clientOr(w.Client), w.URL, body, h)
}

func clientOr(c *http.Client) *http.Client {
	if c == nil {
		return http.DefaultClient
	}
	return c
}

// Slack posts to a Slack-compatible incoming webhook (Mattermost, Rocket.Chat
// and Teams' Slack endpoint take the same body).
type Slack struct {
	URL    string
	Client *http.Client
}

func (s *Slack) Name() string { return "slack" }

func (s *Slack) Notify(ctx context.Context, n Notification) error {
	body, _ := json.Marshal(map[string]string{"text": SlackText(n)})
	return postJSON(ctx, clientOr(s.Client), s.URL, body, http.Header{"User-Agent": {"ofmkeys"}})
}

// SlackText is a notification in Slack's mrkdwn.
func SlackText(n Notification) string {
	mark := ":large_yellow_circle:"
	if n.Alert.Severity == Critical {
		mark = ":red_circle:"
	}
	head := strings.ToUpper(string(n.Alert.Severity))
	switch {
	case n.Status == "resolved":
		mark, head = ":white_check_mark:", "RESOLVED"
	case n.Repeat:
		head += " (still firing)"
	}
	return fmt.Sprintf("%s *%s* %s: %s\n_dc_id %s, since %s_", mark, head, n.Alert.Rule, escapeSlack(n.Alert.Summary), n.DCID, n.Alert.Since.UTC().Format(time.RFC3339))
}

func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Email sends notifications over SMTP: STARTTLS (required unless
// Insecure, for a relay on loopback), then AUTH PLAIN when a user is set.
type Email struct {
	Addr     string // host:port
	From     string
	To       []string
	Username string
	Password string
	// TLS verifies the server's certificate; nil means the system's roots.
	TLS *tls.Config
	// Insecure allows a server without STARTTLS (never with a password).
	Insecure bool
	Now      func() time.Time
}

func (e *Email) Name() string { return "email" }

func (e *Email) Notify(ctx context.Context, n Notification) error {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("smtp address %q: %v", e.Addr, err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if e.TLS != nil {
			cfg = e.TLS.Clone()
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	} else if !e.Insecure || e.Password != "" {
		return errors.New("the SMTP server does not offer STARTTLS: refusing to send (credentials and alerts) in clear")
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			return fmt.Errorf("SMTP AUTH: %w", err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return err
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(e.message(n)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message is the mail: headers, then the summary as plain text.
func (e *Email) message(n Notification) []byte {
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	var id [12]byte
	rand.Read(id[:])
	subject := fmt.Sprintf("[ofmkeys %s] %s", strings.ToUpper(string(n.Alert.Severity)), n.Alert.Rule)
	if n.Status == "resolved" {
		subject = "[ofmkeys RESOLVED] " + n.Alert.Rule
	}
	var b strings.Builder
	hdr := func(k, v string) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
	}
	hdr("From", e.From)
	hdr("To", strings.Join(e.To, ", "))
	hdr("Subject", subject)
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@ofmkeys>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "%s (%s)\r\n\r\n%s\r\n\r\ndc_id: %s\r\nfiring since: %s\r\n", n.Alert.Rule, n.Status, n.Alert.Summary, n.DCID, n.Alert.Since.UTC().Format(time.RFC3339))
	return []byte(b.String())
}
