package monitor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
)

// ProbeResult is what one remote target showed.
type ProbeResult struct {
	Kind   Source `json:"kind"` // tls or jwks
	Target string `json:"target"`
	// OK: the endpoint answered and its certificates verify (TLS), or the
	// JWKS was fetched and parsed.
	OK bool `json:"ok"`
	// Problem is a short class of what is wrong: unreachable, untrusted,
	// expired, name-mismatch, bad-jwks, bad-x5c.
	Problem string    `json:"problem,omitempty"`
	Error   string    `json:"error,omitempty"`
	Certs   []Cert    `json:"certs,omitempty"`
	Kids    []string  `json:"kids,omitempty"`
	At      time.Time `json:"at"`
}

// Probes checks remote targets: the server chains of TLS endpoints (the
// OFP's hosts, our own jwks_uri) and the x5c certificates and kids of remote
// JWKS (PayNet's). A target whose certificate is expired or untrusted is
// reported as such, with its certificates, never as a crash. Safe for
// concurrent use.
type Probes struct {
	// TLS are https:// URLs or host:port.
	TLS []string
	// JWKS are URLs of JWKS documents.
	JWKS []string
	// Roots are the CAs endpoints must chain to; nil means the system's.
	Roots *x509.CertPool
	// Timeout bounds each probe; zero means 5 s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	kids       map[string][]string // last kids seen per JWKS URL
	kidChanges map[string]int
	failures   map[string]int
}

func (p *Probes) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Probes) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 5 * time.Second
	}
	return p.Timeout
}

// Run probes every target, in parallel.
func (p *Probes) Run(ctx context.Context) []ProbeResult {
	out := make([]ProbeResult, len(p.TLS)+len(p.JWKS))
	var wg sync.WaitGroup
	for i, t := range p.TLS {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = p.probeTLS(ctx, t) }()
	}
	for i, u := range p.JWKS {
		wg.Add(1)
		go func() { defer wg.Done(); out[len(p.TLS)+i] = p.probeJWKS(ctx, u) }()
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures == nil {
		p.failures = map[string]int{}
	}
	for _, r := range out {
		if !r.OK {
			p.failures[string(r.Kind)]++
		}
	}
	return out
}

// Failures counts failed probes by kind, in total.
func (p *Probes) Failures() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.failures)
}

// KidChanges counts the kid set changes seen per JWKS URL.
func (p *Probes) KidChanges() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.kidChanges)
}

// hostPort reads a TLS target.
func hostPort(target string) (string, string, error) {
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return "", "", fmt.Errorf("%q: want https://host[:port] or host:port", target)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return u.Hostname(), port, nil
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return "", "", fmt.Errorf("%q: want https://host[:port] or host:port", target)
	}
	return host, port, nil
}

func (p *Probes) probeTLS(ctx context.Context, target string) ProbeResult {
	now := p.now()
	res := ProbeResult{Kind: SourceTLS, Target: target, At: now}
	host, port, err := hostPort(target)
	if err != nil {
		res.Problem, res.Error = "bad-target", err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	// The chain is verified below, by hand, so that an expired or
	// untrusted one is still read and reported with its dates.
	d := &tls.Dialer{Config: &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		res.Problem, res.Error = "unreachable", err.Error()
		return res
	}
	state := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	chain := state.PeerCertificates
	if len(chain) == 0 {
		res.Problem, res.Error = "untrusted", "the server presented no certificate"
		return res
	}
	for _, c := range chain {
		res.Certs = append(res.Certs, certOf(c, SourceTLS, target))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: p.Roots, Intermediates: inter, CurrentTime: now})
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	switch {
	case err == nil:
		res.OK = true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		res.Problem, res.Error = "expired", err.Error()
	case errors.As(err, &hostErr):
		res.Problem, res.Error = "name-mismatch", err.Error()
	default:
		res.Problem, res.Error = "untrusted", err.Error()
	}
	return res
}

func (p *Probes) probeJWKS(ctx context.Context, u string) ProbeResult {
	res := ProbeResult{Kind: SourceJWKS, Target: u, At: p.now()}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	client := &http.Client{Timeout: p.timeout(), Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	body, _, err := jwks.Fetch(ctx, u, client)
	if err != nil {
		res.Problem, res.Error = "unreachable", err.Error()
		return res
	}
	var doc struct {
		Keys []struct {
			Kid string   `json:"kid"`
			Use string   `json:"use"`
			X5c []string `json:"x5c"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Keys == nil {
		res.Problem, res.Error = "bad-jwks", "not a JWKS (a JSON object with keys)"
		return res
	}
	res.OK = true
	for _, k := range doc.Keys {
		res.Kids = append(res.Kids, k.Kid)
		if len(k.X5c) == 0 {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(k.X5c[0])
		var c *x509.Certificate
		if err == nil {
			c, err = x509.ParseCertificate(der)
		}
		if err != nil {
			res.OK, res.Problem, res.Error = false, "bad-x5c", fmt.Sprintf("key %q: its x5c does not parse", k.Kid)
			continue
		}
		cert := certOf(c, SourceJWKS, u)
		cert.Kid = k.Kid
		res.Certs = append(res.Certs, cert)
	}
	slices.Sort(res.Kids)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.kids == nil {
		p.kids, p.kidChanges = map[string][]string{}, map[string]int{}
	}
	if prev, seen := p.kids[u]; seen && !slices.Equal(prev, res.Kids) {
		p.kidChanges[u]++
	}
	p.kids[u] = res.Kids
	return res
}
