package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

// The configured receiver: its own mutual-TLS listener that requires the
// platform's client certificate, checks signatures against the platform's
// JWKS URL, and counts what it received, refused and saw twice.
func TestTheWebhookReceiverTakesSignedEventsOverMutualTLS(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	sb, err := sandbox.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(sb.PlatformJWKS()) }))
	defer platform.Close()
	dir := t.TempDir()
	cert, err := sb.IssueServerCertificate()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	write := func(name string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wh := daemon.Webhook{Listen: "127.0.0.1:0", CertFile: write("wh.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		KeyFile: write("wh.key", &pem.Block{Type: "PRIVATE KEY", Bytes: key}), ClientCAFile: write("paynet-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: sb.CA().Raw}),
		PlatformJWKS: platform.URL}
	r := start(t, s, daemon.Config{DCID: settings.DCID, Webhook: wh})
	addr := r.srv.WebhookAddr()
	if addr == "" {
		t.Fatal("no webhook address")
	}

	// The sandbox's events, caused by a whole check, arrive and are counted.
	ln := newSandboxListener(t, sb)
	sb.Register(sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, RedirectURIs: []string{"https://dc.invalid/cb"}, Transport: []string{ks.Active(pki.Transport).Kid},
		WebhookURL: "https://" + addr, JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
	cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
	if err != nil {
		t.Fatal(err)
	}
	if rep := ofmcheck.Check(ctx, ofmcheck.Env{Issuer: ln.issuer, Roots: ln.roots, ClientID: ks.ClientID, DCID: ks.DCID, DPID: "DP9876543210", RedirectURI: "https://dc.invalid/cb"}, cred, nil); !rep.OK {
		t.Fatalf("check: %+v", rep.Steps)
	}
	sb.Close()
	d := sb.Deliveries()
	if len(d) != 1 || !d[0].OK() {
		t.Fatalf("deliveries: %+v", d)
	}
	sb.Redeliver(d[0])
	sb.Close()

	// Without the platform's client certificate, no TLS session at all.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ln.roots}}}
	if _, err := noCert.Post("https://"+addr+ofmcheck.WebhookPath, "application/jose", strings.NewReader("x")); err == nil {
		t.Fatal("a delivery without a client certificate was answered")
	}
	// With our own (transport) certificate, from a CA that is not PayNet's: refused too.
	ours := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ln.roots, Certificates: []tls.Certificate{cred.Transport}}}}
	if _, err := ours.Post("https://"+addr+ofmcheck.WebhookPath, "application/jose", strings.NewReader("x")); err == nil {
		t.Fatal("a delivery with a certificate from another CA was answered")
	}
	_, body := fetch(t, nil, r.base+daemon.PathMetrics)
	for _, want := range []string{`ofmkeys_webhook_events_total{result="accepted",status="revoked"} 1`, `ofmkeys_webhook_events_total{result="duplicate",status="revoked"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

type sandboxListener struct {
	issuer string
	roots  *x509.CertPool
}

func newSandboxListener(t *testing.T, sb *sandbox.Server) sandboxListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, issuer := sb.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(sb.CA())
	return sandboxListener{issuer, roots}
}

func TestAWebhookWithoutItsCertificatesIsRefused(t *testing.T) {
	for _, wh := range []daemon.Webhook{{Listen: "127.0.0.1:0"}, {Listen: "127.0.0.1:0", CertFile: "a", KeyFile: "b", ClientCAFile: "c", PlatformJWKS: "file.json"}} {
		if _, err := daemon.New(newFileStore(t), daemon.Config{Webhook: wh}); err == nil {
			t.Errorf("New accepted %+v", wh)
		}
	}
	srv, _ := daemon.New(newFileStore(t), daemon.Config{Listen: "127.0.0.1:0", Webhook: daemon.Webhook{Listen: "127.0.0.1:0", CertFile: "/nonexistent", KeyFile: "/nonexistent",
		ClientCAFile: "/nonexistent", PlatformJWKS: "https://paynet.invalid/jwks"}})
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "webhook certificate") {
		t.Fatalf("Run with missing webhook files = %v", err)
	}
}
