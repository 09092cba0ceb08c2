// Package sandbox is a local OFM platform (authorization server, resource
// server and a test data provider) that enforces PayNet's rules as
// OFM-SPEC.md describes them, over TLS with client-certificate
// authentication, so that the DC's whole flow runs on one machine:
// discovery, PAR with a signed request object, authorize (auto-approved),
// token (authorization_code, refresh_token, client_credentials) with
// private_key_jwt and certificate-bound tokens, and data calls checked for
// the binding and the x-signature, answered JWE-in-JWS to the DC's
// encryption key.
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
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
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
	if kid != "" {
		if _, err := c.cache.Lookup(ctx, kid); err != nil {
			return nil, err
		}
	}
	return c.cache.Keys(ctx)
}

// Clock tells the time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Server is the sandbox OFP.
type Server struct {
	clock    Clock
	platform *rsa.PrivateKey
	caCert   *x509.Certificate
	caKey    *rsa.PrivateKey
	tlsCert  tls.Certificate
	issuer   string

	mu      sync.Mutex
	clients map[string]*Client
	par     map[string]parEntry // request_uri → request
	codes   map[string]grant    // code → grant
	access  map[string]grant    // access token → grant
	refresh map[string]grant    // refresh token → grant
	jtis    map[string]time.Time

	misbehave Switch
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

// PlatformKid is the kid of the sandbox's signing key.
const PlatformKid = "sandbox-ofp-1"

// New makes a sandbox with its own CA, server certificate (127.0.0.1 and
// localhost) and signing key. A nil clock means the real one.
func New(clock Clock) (*Server, error) {
	if clock == nil {
		clock = realClock{}
	}
	s := &Server{clock: clock, clients: map[string]*Client{}, par: map[string]parEntry{}, codes: map[string]grant{},
		access: map[string]grant{}, refresh: map[string]grant{}, jtis: map[string]time.Time{}}
	var err error
	if s.platform, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
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
	srvKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, s.caCert, &srvKey.PublicKey, s.caKey)
	if err != nil {
		return nil, err
	}
	s.tlsCert = tls.Certificate{Certificate: [][]byte{srvDER, der}, PrivateKey: srvKey}
	return s, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}

// CA is the sandbox CA's certificate, for clients to trust.
func (s *Server) CA() *x509.Certificate { return s.caCert }

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

// PlatformJWKS is the sandbox's public JWKS.
func (s *Server) PlatformJWKS() *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.platform.PublicKey, KeyID: PlatformKid, Use: "sig", Algorithm: "PS256"}}}
}

// TLSConfig is the listener's TLS: client certificates are asked for (any
// CA: the sandbox checks them against the registered thumbprints, as
// PayNet's EnsureClientCertificateMatches does), TLS 1.2+.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
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

// kidOf reads the kid of a compact JWS header without trusting anything
// else in it (it is only a cache hint; verification checks everything).
func kidOf(token string) string {
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

// AddTransport registers another transport certificate for a client (the
// sandbox's stand-in for PayNet's registration of a new certificate).
func (s *Server) AddTransport(clientID, x5tS256 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[clientID]; c != nil && !slices.Contains(c.Transport, x5tS256) {
		c.Transport = append(c.Transport, x5tS256)
	}
}
