package sandbox_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

// countingListener counts the connections a client opens.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// RELIABILITY.md §7.4: a platform whose TLS is wrong is refused at the
// first connection, with the reason, and not retried.
func TestEveryTLSFaultOfThePlatformIsRefused(t *testing.T) {
	want := map[sandbox.TLSFault]string{} // the refusals check --negative expects
	for _, nc := range sandbox.NegativeCases {
		if f, ok := strings.CutPrefix(string(nc.Switch), "tls:"); ok {
			want[sandbox.TLSFault(f)] = nc.Error
		}
	}
	if len(want) != len(sandbox.TLSFaults) {
		t.Fatalf("NegativeCases covers %d of the %d TLS faults", len(want), len(sandbox.TLSFaults))
	}
	sb, _, roots, s, ks := setup(t)
	register(sb, ks, ks.Active(pki.Transport).Kid, ofmcheck.XSigClassic)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: raw}
	srv, issuer := sb.Serve(ln)
	defer srv.Close()
	env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}
	for _, f := range sandbox.TLSFaults {
		if err := sb.SetTLSFault(f); err != nil {
			t.Fatal(err)
		}
		before := ln.n.Load()
		rep := ofmcheck.Check(ctx, env, cred, nil)
		last := rep.Steps[len(rep.Steps)-1]
		t.Logf("%-22s %s", f, last.Error)
		if rep.OK || last.Name != "discovery" || !strings.Contains(last.Error, want[f]) {
			t.Errorf("%s: want discovery to fail with %q, got %s: %s", f, want[f], last.Name, last.Error)
		}
		if n := ln.n.Load() - before; n != 1 {
			t.Errorf("%s: %d connections, want 1 (no retries)", f, n)
		}
	}
	sb.SetTLSFault(sandbox.TLSGood)
	if rep := ofmcheck.Check(ctx, env, cred, nil); !rep.OK {
		t.Fatalf("with good TLS again: %+v", rep.Steps)
	}
	if err := sb.SetTLSFault("tls-1.0"); err == nil {
		t.Fatal("an unknown fault was accepted")
	}
}

// A transport certificate that is not for client authentication fails the
// handshake ("bad certificate"), even when its thumbprint is registered.
func TestATransportCertificateWithoutClientAuthIsRefused(t *testing.T) {
	sb, issuer, roots, s, ks := setup(t)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	key := cred.SigningKey // any RSA key: the handshake fails before it matters
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "dc"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public().(*rsa.PublicKey), key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	register(sb, ks, base64.RawURLEncoding.EncodeToString(sum[:]), ofmcheck.XSigClassic)
	cred.Transport = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	rep := ofmcheck.Check(ctx, ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}, cred, nil)
	last := rep.Steps[len(rep.Steps)-1]
	// TLS 1.3: the client finishes its side of the handshake before the
	// server has judged its certificate, so the refusal arrives as the
	// alert, or as the connection closed under the request being written.
	if rep.OK || last.Name != "par" || !regexp.MustCompile(`bad certificate|broken pipe|connection reset|EOF`).MatchString(last.Error) {
		t.Fatalf("got %s: %s", last.Name, last.Error)
	}
}
