// Package sandbox is a local OFM platform (authorization server, resource
// server, test data providers and the consent webhook sender) that enforces
// PayNet's rules as OFM-SPEC.md describes them, over TLS with
// client-certificate authentication, so that the DC's whole flow runs on
// one machine: discovery, PAR with a signed request object, authorize
// (auto-approved for the test user), token (authorization_code,
// refresh_token, client_credentials) with private_key_jwt or
// tls_client_auth and certificate-bound tokens, introspection, revocation,
// userinfo, the providers list, consent management, and data calls checked
// for the binding and the x-signature, answered JWE-in-JWS to the DC's
// encryption key with cursor pagination. Consent changes are posted, signed,
// over mutual TLS to the client's webhook.
package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// Client is a registered Data Consumer.
type Client struct {
	ClientID string
	DCID     string
	// JWKSURI is the DC's registered jwks_uri: fetched and cached for
	// JWKSCacheTTL, refetched (at most once a minute) for an unknown kid.
	JWKSURI string
	// JWKS, when set instead, gives the DC's keys directly (in-process runs).
	JWKS func() (*jose.JSONWebKeySet, error)
	// Transport holds the registered transport certificates' x5t#S256.
	Transport    []string
	RedirectURIs []string
	// Profile is the x-signature profile the DC uses.
	Profile ofmcheck.XSigProfile
	// WebhookURL, when set, is where consent events are posted (the DC's
	// base URL: events go to WebhookURL + /consents/events).
	WebhookURL string
	// TLSClientAuth lets the client authenticate by its registered
	// certificate alone (tls_client_auth) when it sends no assertion.
	TLSClientAuth bool

	cache *jwks.Cache
}

// JWKSCacheTTL is how long the sandbox uses a fetched DC JWKS, as OFM
// participants do.
const JWKSCacheTTL = 15 * time.Minute

// keys returns the DC's keys, making sure kid (from the message being
// verified) is looked for in a fresh copy when the cached one lacks it.
func (c *Client) keys(ctx context.Context, kid string) (*jose.JSONWebKeySet, error) {
	if c.cache == nil {
		if c.JWKS == nil {
			return nil, fmt.Errorf("client %s has no jwks_uri", c.ClientID)
		}
		return c.JWKS()
	}
	return c.cache.KeysFor(ctx, kid)
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Server is the sandbox OFP.
type Server struct {
	clock Clock
	// WebhookRoots are the CAs a DC's webhook server may chain to; New sets
	// the sandbox's own CA (IssueServerCertificate makes such certificates).
	WebhookRoots *x509.CertPool
	// WebhookRetries is how many times a failed delivery is retried; New
	// sets 3.
	WebhookRetries int

	caCert  *x509.Certificate
	caKey   *rsa.PrivateKey
	tlsCert tls.Certificate
	issuer  string

	mu      sync.Mutex
	clients map[string]*Client
	par     map[string]parEntry // request_uri → request
	codes   map[string]grant    // code → grant
	access  map[string]grant    // access token → grant
	refresh map[string]grant    // refresh token → grant
	jtis    map[string]time.Time

	misbehave  Switch
	jwksHits   int
	tlsFault   TLSFault
	faultCerts map[TLSFault]*tls.Certificate
	// signing holds the platform's keys, the one signing now first.
	signing []platformKey
	// dp is the test data providers' signing key (the inner JWS).
	dp          platformKey
	consents    map[string]*consent
	cursorKey   []byte
	webhookCert tls.Certificate
	delivered   []Delivery
	sending     sync.WaitGroup
}

type platformKey struct {
	kid string
	key *rsa.PrivateKey
}

// consent is a consent's record at the platform.
type consent struct {
	id, clientID, dpID, status string
	accounts                   []string
	updated                    time.Time
}

type parEntry struct {
	clientID string
	ro       *ofmcheck.RequestObject
	expires  time.Time
}

// grant is what a code or token stands for.
type grant struct {
	clientID   string
	consentID  string
	scope      string
	redirect   string
	challenge  string
	thumbprint string // the certificate the token is bound to
	expires    time.Time
}

// Token lifetimes of PayNet's sandbox (OFM-SPEC §8).
const (
	CodeTTL   = 10 * time.Minute
	AccessTTL = 60 * time.Minute
	PARTTL    = 90 * time.Second
)

// PlatformKid is the kid of the sandbox's first signing key; DPKid the
// test data providers' (they sign the data inside the JWE).
const (
	PlatformKid = "sandbox-ofp-1"
	DPKid       = "sandbox-dp-1"
)

// New makes a sandbox with its own CA, server certificate (127.0.0.1 and
// localhost) and signing key. A nil clock means the real one.
func New(clock Clock) (*Server, error) {
	if clock == nil {
		clock = realClock{}
	}
	s := &Server{clock: clock, clients: map[string]*Client{}, par: map[string]parEntry{}, codes: map[string]grant{},
		access: map[string]grant{}, refresh: map[string]grant{}, jtis: map[string]time.Time{}, consents: map[string]*consent{},
		cursorKey: []byte(randomToken()), WebhookRetries: 3}
	platform, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s.signing = []platformKey{{PlatformKid, platform}}
	dpKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s.dp = platformKey{DPKid, dpKey}
	if s.caKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	now := clock.Now()
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "ofmkeys sandbox OFP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &s.caKey.PublicKey, s.caKey)
	if err != nil {
		return nil, err
	}
	s.caCert, _ = x509.ParseCertificate(der)
	if s.tlsCert, err = s.issue("localhost", x509.ExtKeyUsageServerAuth, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, err
	}
	// The platform's client certificate for webhook deliveries.
	if s.webhookCert, err = s.issue("Paynet OFP webhook", x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return nil, err
	}
	s.WebhookRoots = x509.NewCertPool()
	s.WebhookRoots.AddCert(s.caCert)
	return s, nil
}

// issue makes a certificate signed by the sandbox CA.
func (s *Server) issue(cn string, eku x509.ExtKeyUsage, dns []string, ips []net.IP) (tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := s.clock.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &key.PublicKey, s.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, s.caCert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// IssueServerCertificate makes a TLS server certificate for loopback
// (127.0.0.1 and localhost) signed by the sandbox CA: a local DC's webhook
// listener uses it, so that the sandbox's deliveries trust it.
func (s *Server) IssueServerCertificate() (tls.Certificate, error) {
	return s.issue("localhost", x509.ExtKeyUsageServerAuth, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
}

// Close waits for webhook deliveries in flight.
func (s *Server) Close() { s.sending.Wait() }

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// CA is the sandbox CA's certificate, for clients to trust.
func (s *Server) CA() *x509.Certificate { return s.caCert }

// CAPool is a pool of the sandbox CA: the roots of its TLS server, and the
// CA of the platform's client certificate on webhook deliveries.
func (s *Server) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.caCert)
	return p
}

// Register adds (or replaces) a client.
func (s *Server) Register(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cc := c
	if cc.JWKS == nil && cc.JWKSURI != "" {
		cc.cache = &jwks.Cache{URL: cc.JWKSURI, TTL: JWKSCacheTTL, Now: s.clock.Now}
	}
	s.clients[c.ClientID] = &cc
}

// PlatformJWKS is the sandbox's public JWKS: every platform signing key it
// holds, and the test data providers' key.
func (s *Server) PlatformJWKS() *jose.JSONWebKeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := &jose.JSONWebKeySet{}
	for _, k := range append(slices.Clone(s.signing), s.dp) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Use: "sig", Algorithm: "PS256"})
	}
	return set
}

// RotatePlatformKey makes a new platform signing key, signs with it from
// now on and keeps the previous ones published (as PayNet does in a
// rotation). It returns the new kid.
func (s *Server) RotatePlatformKey() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kid := fmt.Sprintf("sandbox-ofp-%d", len(s.signing)+1)
	s.signing = append([]platformKey{{kid, key}}, s.signing...)
	return kid, nil
}

// sign signs a payload with the platform's current key.
func (s *Server) sign(payload []byte) (string, error) {
	s.mu.Lock()
	k := s.signing[0]
	s.mu.Unlock()
	return jwks.Sign(k.key, k.kid, payload, false)
}

// signingKey is the platform's current key.
func (s *Server) signingKey() platformKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signing[0]
}

// thumbprint is the x5t#S256 of a DER certificate.
func thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("sandbox: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// AddTransport registers another transport certificate for a client (the
// sandbox's stand-in for PayNet's registration of a new certificate).
func (s *Server) AddTransport(clientID, x5tS256 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[clientID]; c != nil && !slices.Contains(c.Transport, x5tS256) {
		c.Transport = append(c.Transport, x5tS256)
	}
}
