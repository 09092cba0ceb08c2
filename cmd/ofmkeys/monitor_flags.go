package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/monitor"
	"github.com/ofmkeys/ofmkeys/pki"
)

// monitorFlags are serve's monitoring and alerting settings (and status's
// thresholds).
func monitorFlags() []cli.Flag {
	return append(alertFlags(), []cli.Flag{
		stringFlag("watch", "also watch the PEM certificates in these files and folders (comma-separated)", ""),
		stringFlag("probe-tls", "probe the certificates of these TLS endpoints: https://host[:port] or host:port (comma-separated)", ""),
		stringFlag("probe-jwks", "probe these remote JWKS (PayNet's): x5c expiry and kid changes (comma-separated URLs)", ""),
		stringFlag("probe-ca", "CA bundle (PEM) the probed endpoints chain to (default: the system's)", ""),
		stringFlag("monitor-interval", "how often the alert rules are evaluated", "1m"),
		stringFlag("probe-interval", "how often remote targets are probed", "5m"),
		stringFlag("alert-repeat", "notify a firing alert again this often", "4h"),
		stringFlag("notify-webhook-url", "POST alerts as JSON here (signed: X-Ofmkeys-Signature, HMAC-SHA256)", ""),
		stringFlag("notify-webhook-secret-file", "file holding the webhook's HMAC secret", ""),
		stringFlag("notify-slack-url-file", "file holding a Slack-compatible incoming webhook URL (its path is a secret)", ""),
		stringFlag("notify-smtp", "send alerts by email through this SMTP server (host:port; STARTTLS required)", ""),
		stringFlag("notify-smtp-from", "the alerts' From address", ""),
		stringFlag("notify-smtp-to", "recipients (comma-separated)", ""),
		stringFlag("notify-smtp-user", "SMTP AUTH user", ""),
		stringFlag("notify-smtp-password-file", "file holding the SMTP AUTH password", ""),
		stringFlag("notify-smtp-ca", "CA bundle (PEM) of the SMTP server's certificate (default: the system's)", ""),
	}...)
}

// alertFlags are the alert rules' thresholds.
func alertFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("alert-warning", "warn this long before a certificate expires", "28d"),
		stringFlag("alert-critical", "turn critical this long before a certificate expires", "14d"),
		stringFlag("alert-proof-max-age", "warn when no proof has passed for this long", "25h"),
		stringFlag("alert-store-down", "alert when the store has not answered for this long", "10m"),
	}
}

// list splits a comma-separated flag value.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// secretFile reads a one-line secret file.
func secretFile(flag, path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", configError{fmt.Errorf("--%s: %w", flag, err)}
	}
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "", configError{fmt.Errorf("--%s %s is empty", flag, path)}
	}
	return s, nil
}

// rulesFromText reads the alert thresholds.
func rulesFromText(get func(string) string) (monitor.Rules, error) {
	var r monitor.Rules
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"alert-warning", &r.Warning}, {"alert-critical", &r.Critical}, {"alert-proof-max-age", &r.ProofMaxAge}, {"alert-store-down", &r.StoreDownFor}} {
		d, err := days(f.name, get(f.name))
		if err != nil {
			return r, err
		}
		*f.dst = d
	}
	if err := r.Check(); err != nil {
		return r, configError{fmt.Errorf("--alert-critical / --alert-warning: %w", err)}
	}
	return r, nil
}

// monitorFromText builds serve's monitor settings from flag values.
func monitorFromText(get func(string) string) (daemon.Monitor, error) {
	m := daemon.Monitor{Watch: list(get("watch")), ProbeTLS: list(get("probe-tls")), ProbeJWKS: list(get("probe-jwks"))}
	var err error
	if m.Rules, err = rulesFromText(get); err != nil {
		return m, err
	}
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"monitor-interval", &m.Interval}, {"probe-interval", &m.ProbeInterval}, {"alert-repeat", &m.Repeat}} {
		if *f.dst, err = days(f.name, get(f.name)); err != nil {
			return m, err
		}
		if *f.dst < time.Second {
			return m, configError{fmt.Errorf("--%s %q: want 1s or more", f.name, get(f.name))}
		}
	}
	if f := get("probe-ca"); f != "" {
		if m.ProbeRoots, err = pki.ReadCertPool(f); err != nil {
			return m, configError{fmt.Errorf("--probe-ca: %w", err)}
		}
	}
	if u := get("notify-webhook-url"); u != "" {
		if get("notify-webhook-secret-file") == "" {
			return m, configError{errors.New("--notify-webhook-url needs --notify-webhook-secret-file: receivers check the HMAC signature")}
		}
		secret, err := secretFile("notify-webhook-secret-file", get("notify-webhook-secret-file"))
		if err != nil {
			return m, err
		}
		m.Notifiers = append(m.Notifiers, &monitor.Webhook{URL: u, Secret: []byte(secret)})
	}
	if f := get("notify-slack-url-file"); f != "" {
		u, err := secretFile("notify-slack-url-file", f)
		if err != nil {
			return m, err
		}
		m.Notifiers = append(m.Notifiers, &monitor.Slack{URL: u})
	}
	if addr := get("notify-smtp"); addr != "" {
		e := &monitor.Email{Addr: addr, From: get("notify-smtp-from"), To: list(get("notify-smtp-to")), Username: get("notify-smtp-user")}
		if e.From == "" || len(e.To) == 0 {
			return m, configError{errors.New("--notify-smtp needs --notify-smtp-from and --notify-smtp-to")}
		}
		for _, a := range append([]string{e.From}, e.To...) {
			if addr, err := mail.ParseAddress(a); err != nil || addr.Name != "" {
				return m, configError{fmt.Errorf("--notify-smtp-from/--notify-smtp-to: %q is not an email address (name@domain)", a)}
			}
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return m, configError{fmt.Errorf("--notify-smtp %q: want host:port, e.g. smtp.example.my:587", addr)}
		}
		if f := get("notify-smtp-password-file"); f != "" {
			if e.Password, err = secretFile("notify-smtp-password-file", f); err != nil {
				return m, err
			}
		}
		if f := get("notify-smtp-ca"); f != "" {
			pool, err := pki.ReadCertPool(f)
			if err != nil {
				return m, configError{fmt.Errorf("--notify-smtp-ca: %w", err)}
			}
			e.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		m.Notifiers = append(m.Notifiers, e)
	}
	return m, nil
}
