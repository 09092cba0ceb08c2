package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/pki"
)

// environment is an OFM environment file (`check --env FILE`): where the
// platform is and who the DC is there. Paths are relative to the file.
type environment struct {
	Issuer        string `yaml:"issuer"`
	ClientID      string `yaml:"client_id"`
	DCID          string `yaml:"dc_id"`
	DPID          string `yaml:"dp_id"`
	RedirectURI   string `yaml:"redirect_uri"`
	CAFile        string `yaml:"ca_file"`
	Profile       string `yaml:"profile"`
	AssertionAud  string `yaml:"assertion_aud"`
	Authorization string `yaml:"authorization"`
	Timeout       string `yaml:"timeout"`
	Webhook       *struct {
		Listen       string `yaml:"listen"`
		Cert         string `yaml:"cert"`
		Key          string `yaml:"key"`
		ClientCA     string `yaml:"client_ca"`
		PlatformJWKS string `yaml:"platform_jwks"`
	} `yaml:"webhook"`
}

var dpIDRE = regexp.MustCompile(`^DP[0-9]{10}$`)

// readEnvironment reads and checks an environment file against the
// keyset it will be used with; with no keyset (serve reads it before the
// store), client_id and dc_id must be in the file.
func readEnvironment(path string, ks *keyset.Keyset) (*environment, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e environment
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&e); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(path), p)
	}
	e.CAFile = rel(e.CAFile)
	if e.Webhook != nil {
		e.Webhook.Cert, e.Webhook.Key, e.Webhook.ClientCA = rel(e.Webhook.Cert), rel(e.Webhook.Key), rel(e.Webhook.ClientCA)
	}
	if ks != nil && e.ClientID == "" {
		e.ClientID = ks.ClientID
	}
	if ks != nil && e.DCID == "" {
		e.DCID = ks.DCID
	}
	if e.Profile == "" {
		e.Profile = string(ofmcheck.XSigClassic)
	}
	if e.Authorization == "" {
		e.Authorization = "auto"
	}
	if e.Timeout == "" {
		e.Timeout = "5s"
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", path, field, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(e.Issuer)
	switch {
	case e.Issuer == "":
		return nil, bad("issuer", "missing: the platform's issuer URL (discovery is read from it)")
	case err != nil || u.Scheme != "https" || u.Host == "":
		return nil, bad("issuer", "%q is not an https URL", e.Issuer)
	case ks == nil && (e.ClientID == "" || e.DCID == ""):
		return nil, bad("client_id, dc_id", "both are needed here")
	case ks != nil && e.DCID != ks.DCID:
		return nil, bad("dc_id", "%q is not the keyset's dc_id %s", e.DCID, ks.DCID)
	case !dpIDRE.MatchString(e.DPID):
		return nil, bad("dp_id", "%q: want DP and 10 digits, e.g. DP9876543210", e.DPID)
	case e.RedirectURI == "":
		return nil, bad("redirect_uri", "missing: the redirect URI registered for the client")
	case e.Profile != string(ofmcheck.XSigClassic) && e.Profile != string(ofmcheck.XSigDetached):
		return nil, bad("profile", "%q: want classic or detached", e.Profile)
	case e.AssertionAud != "" && e.AssertionAud != "issuer" && e.AssertionAud != "token_endpoint":
		return nil, bad("assertion_aud", "%q: want issuer or token_endpoint", e.AssertionAud)
	case e.Authorization != "auto" && e.Authorization != "manual":
		return nil, bad("authorization", "%q: want auto (the platform approves on its own) or manual (a person approves in a browser)", e.Authorization)
	}
	if r, err := url.Parse(e.RedirectURI); err != nil || r.Host == "" || (r.Scheme != "https" && r.Scheme != "http") {
		return nil, bad("redirect_uri", "%q is not an http(s) URL", e.RedirectURI)
	}
	if d, err := time.ParseDuration(e.Timeout); err != nil || d < 100*time.Millisecond || d > time.Minute {
		return nil, bad("timeout", "%q: want a duration from 100ms to 1m", e.Timeout)
	}
	if w := e.Webhook; w != nil && (w.Listen == "" || w.Cert == "" || w.Key == "" || w.ClientCA == "" || w.PlatformJWKS == "") {
		return nil, bad("webhook", "needs listen, cert, key, client_ca and platform_jwks (or leave the webhook out)")
	}
	return &e, nil
}

// env turns the file into the check's environment; stop releases what it
// started (the webhook receiver).
func (e *environment) env(c *cli.Context) (env ofmcheck.Env, stop func(), err error) {
	stop = func() {}
	env = ofmcheck.Env{Issuer: e.Issuer, ClientID: e.ClientID, DCID: e.DCID, DPID: e.DPID, RedirectURI: e.RedirectURI,
		Profile: ofmcheck.XSigProfile(e.Profile)}
	env.Timeout, _ = time.ParseDuration(e.Timeout)
	if e.AssertionAud == "token_endpoint" {
		env.AssertionAudience = ofmcheck.AudienceTokenEndpoint
	}
	if e.CAFile != "" {
		if env.Roots, err = pki.ReadCertPool(e.CAFile); err != nil {
			return env, stop, fmt.Errorf("ca_file: %w", err)
		}
	}
	if e.Authorization == "manual" {
		env.Authorize = manualAuthorize(c, e.RedirectURI)
	}
	if w := e.Webhook; w != nil {
		cert, err := tls.LoadX509KeyPair(w.Cert, w.Key)
		if err != nil {
			return env, stop, fmt.Errorf("webhook cert and key: %w", err)
		}
		cas, err := pki.ReadCertPool(w.ClientCA)
		if err != nil {
			return env, stop, fmt.Errorf("webhook client_ca: %w", err)
		}
		cache := &jwks.Cache{URL: w.PlatformJWKS, Client: &http.Client{Timeout: env.Timeout}}
		rc := &ofmcheck.Receiver{DCID: e.DCID, Platform: cache.KeysFor}
		ln, err := net.Listen("tcp", w.Listen)
		if err != nil {
			return env, stop, fmt.Errorf("webhook: %w", err)
		}
		srv := rc.Server(ofmcheck.WebhookTLS(cert, cas))
		go srv.ServeTLS(ln, "", "")
		env.AwaitEvent = rc.Await
		stop = func() { srv.Close() }
	}
	return env, stop, nil
}

// authorizeWait bounds how long a person has to approve in the browser.
const authorizeWait = 5 * time.Minute

// manualAuthorize prints the authorize URL for a person to open, and
// takes the redirect: on a loopback redirect URI (http://127.0.0.1:PORT/…)
// it listens there itself; otherwise the person pastes the URL the browser
// ended on.
func manualAuthorize(c *cli.Context, redirectURI string) func(ctx context.Context, authorizeURL string) (string, error) {
	return func(ctx context.Context, authorizeURL string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, authorizeWait)
		defer cancel()
		r, _ := url.Parse(redirectURI)
		host := r.Hostname()
		if r.Scheme == "http" && (host == "127.0.0.1" || host == "localhost" || host == "::1") {
			return listenForRedirect(ctx, c, r, authorizeURL)
		}
		fmt.Fprintf(c.App.ErrWriter, "Open this URL in a browser, log in as the test user and approve the consent:\n\n  %s\n\n", authorizeURL)
		fmt.Fprintf(c.App.ErrWriter, "Then paste the address the browser was sent to (it starts with %s):\n", redirectURI)
		line := make(chan string, 1)
		go func() {
			s, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
			line <- strings.TrimSpace(s)
		}()
		select {
		case s := <-line:
			if !strings.HasPrefix(s, redirectURI) {
				return "", fmt.Errorf("the pasted address does not start with the redirect URI %s", redirectURI)
			}
			return s, nil
		case <-ctx.Done():
			return "", fmt.Errorf("no redirect was pasted within %v", authorizeWait)
		}
	}
}

// listenForRedirect serves the loopback redirect URI, then shows the
// authorize URL, and waits until the browser arrives at the redirect.
func listenForRedirect(ctx context.Context, c *cli.Context, r *url.URL, authorizeURL string) (string, error) {
	ln, err := net.Listen("tcp", r.Host)
	if err != nil {
		return "", fmt.Errorf("cannot listen for the redirect on %s: %w", r.Host, err)
	}
	got := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != r.Path {
			http.NotFound(w, req)
			return
		}
		u := *req.URL
		u.Scheme, u.Host = r.Scheme, r.Host
		select {
		case got <- u.String():
		default:
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ofmkeys has the answer; you can close this tab.")
	})}
	go srv.Serve(ln)
	defer func() {
		// Let the browser have its page before the listener goes.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	fmt.Fprintf(c.App.ErrWriter, "Open this URL in a browser, log in as the test user and approve the consent:\n\n  %s\n\nWaiting for the browser at %s …\n", authorizeURL, r.String())
	select {
	case u := <-got:
		return u, nil
	case <-ctx.Done():
		return "", fmt.Errorf("the browser did not come back to %s within %v", r.String(), authorizeWait)
	}
}
