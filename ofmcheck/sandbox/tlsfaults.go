package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// TLSFault makes the sandbox's TLS misbehave (RELIABILITY.md §7.4): the
// DC's client must refuse the connection with a clear error.
type TLSFault string

const (
	TLSGood           TLSFault = ""                     // a valid chain to the sandbox CA
	TLSUnknownCA      TLSFault = "unknown-ca"           // a server certificate from a CA nobody trusts
	TLSWrongName      TLSFault = "wrong-name"           // a certificate for another host
	TLSExpired        TLSFault = "expired"              // a certificate that expired yesterday
	TLSSHA1           TLSFault = "sha1"                 // a certificate signed with SHA-1
	TLSNoIntermediate TLSFault = "missing-intermediate" // the leaf without the intermediate CA it needs
	TLSCBCOnly        TLSFault = "cbc-only"             // TLS 1.2 with CBC cipher suites only (not BCP 195)
)

// TLSFaults lists every TLS misbehaviour.
var TLSFaults = []TLSFault{TLSUnknownCA, TLSWrongName, TLSExpired, TLSSHA1, TLSNoIntermediate, TLSCBCOnly}

// SetTLSFault switches the certificate or suites new handshakes get.
func (s *Server) SetTLSFault(f TLSFault) error {
	if f != TLSGood && !slices.Contains(TLSFaults, f) {
		return fmt.Errorf("unknown TLS fault %q", f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f != TLSGood && f != TLSCBCOnly && s.faultCerts[f] == nil {
		cert, err := s.faultCertificate(f)
		if err != nil {
			return err
		}
		if s.faultCerts == nil {
			s.faultCerts = map[TLSFault]*tls.Certificate{}
		}
		s.faultCerts[f] = cert
	}
	s.tlsFault = f
	return nil
}

// faultCertificate makes the server certificate of a fault.
func (s *Server) faultCertificate(f TLSFault) (*tls.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	issuer, issuerKey := s.caCert, s.caKey
	var chain [][]byte
	switch f {
	case TLSUnknownCA:
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		ca := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "Nobody's CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, ca, ca, &other.PublicKey, other)
		if err != nil {
			return nil, err
		}
		issuer, _ = x509.ParseCertificate(der)
		issuerKey = other
	case TLSWrongName:
		tmpl.Subject.CommonName, tmpl.DNSNames, tmpl.IPAddresses = "ofp.example", []string{"ofp.example"}, nil
	case TLSExpired:
		tmpl.NotBefore, tmpl.NotAfter = now.AddDate(0, -2, 0), now.AddDate(0, 0, -1)
	case TLSSHA1:
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	case TLSNoIntermediate:
		ikey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		ica := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "ofmkeys sandbox intermediate"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, ica, s.caCert, &ikey.PublicKey, s.caKey)
		if err != nil {
			return nil, err
		}
		issuer, _ = x509.ParseCertificate(der)
		issuerKey = ikey // and the intermediate is left out of the chain sent
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", f, err)
	}
	chain = append(chain, der)
	return &tls.Certificate{Certificate: chain, PrivateKey: key}, nil
}

// cbcSuites are TLS 1.2 suites BCP 195 does not recommend.
var cbcSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}

// errNotClientAuth refuses a client certificate that is not for client
// authentication.
var errNotClientAuth = errors.New("the client certificate's extended key usage does not allow client authentication")

// TLSConfig is the listener's TLS: client certificates are asked for (any
// CA: the sandbox checks them against the registered thumbprints, as
// PayNet's EnsureClientCertificateMatches does) and must be for client
// authentication; TLS 1.2+. SetTLSFault changes what new handshakes get.
func (s *Server) TLSConfig() *tls.Config {
	base := &tls.Config{Certificates: []tls.Certificate{s.tlsCert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // refused per endpoint, with an OAuth error
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
				return errNotClientAuth
			}
			return nil
		}}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.mu.Lock()
		f, cert := s.tlsFault, s.faultCerts[s.tlsFault]
		s.mu.Unlock()
		switch {
		case f == TLSCBCOnly:
			c := base.Clone()
			c.MaxVersion, c.CipherSuites = tls.VersionTLS12, cbcSuites
			return c, nil
		case cert != nil:
			c := base.Clone()
			c.Certificates = []tls.Certificate{*cert}
			return c, nil
		}
		return nil, nil
	}
	return cfg
}
