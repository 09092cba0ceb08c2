package monitor_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/monitor"
)

// tlsServer serves TLS on loopback with the given chain and key.
func tlsServer(t *testing.T, chain []*x509.Certificate, key any) string {
	t.Helper()
	cert := tls.Certificate{PrivateKey: key}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// A target whose certificate is expired, untrusted or for another name is
// reported as such, with its certificates and their dates; a dead one as
// unreachable. Nothing crashes.
func TestTLSProbesReportWhatIsWrongWithTheChain(t *testing.T) {
	real := time.Now()
	ca, caKey := issue(t, "Probe CA", real.AddDate(-1, 0, 0), real.AddDate(5, 0, 0), true, nil, nil)
	good, goodKey := issue(t, "127.0.0.1", real.Add(-time.Hour), real.AddDate(0, 3, 0), false, ca, caKey)
	expired, expKey := issue(t, "127.0.0.1", real.AddDate(0, -2, 0), real.AddDate(0, 0, -1), false, ca, caKey)
	other, otherKey := issue(t, "ofp.example", real.Add(-time.Hour), real.AddDate(0, 3, 0), false, ca, caKey)
	self, selfKey := issue(t, "127.0.0.1", real.Add(-time.Hour), real.AddDate(0, 3, 0), false, nil, nil)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	p := &monitor.Probes{Roots: roots, Timeout: 2 * time.Second, TLS: []string{
		tlsServer(t, []*x509.Certificate{good, ca}, goodKey),
		tlsServer(t, []*x509.Certificate{expired, ca}, expKey),
		tlsServer(t, []*x509.Certificate{other, ca}, otherKey),
		strings.TrimPrefix(tlsServer(t, []*x509.Certificate{self}, selfKey), "https://"),
		deadAddr,
		"ftp://nope",
	}}
	res := p.Run(context.Background())
	want := []string{"", "expired", "name-mismatch", "untrusted", "unreachable", "bad-target"}
	for i, r := range res {
		t.Logf("%-28s ok=%v %s %s", r.Target, r.OK, r.Problem, r.Error)
		if r.Problem != want[i] || r.OK != (want[i] == "") {
			t.Errorf("%s: problem %q, want %q", r.Target, r.Problem, want[i])
		}
	}
	if len(res[0].Certs) != 2 || !res[0].Certs[0].NotAfter.Equal(good.NotAfter) || res[0].Certs[0].Source != monitor.SourceTLS {
		t.Fatalf("the good chain: %+v", res[0].Certs)
	}
	if len(res[1].Certs) == 0 || !res[1].Certs[0].NotAfter.Equal(expired.NotAfter) {
		t.Fatal("the expired certificate's dates were not reported")
	}
	if f := p.Failures()["tls"]; f != 5 {
		t.Fatalf("%d TLS failures counted, want 5", f)
	}
}

// A remote JWKS: the x5c certificates' dates and kids, and kid changes
// between probes.
func TestJWKSProbesReadX5cAndCountKidChanges(t *testing.T) {
	c1, _ := issue(t, "Paynet OFP signing 1", now.AddDate(0, -1, 0), now.AddDate(1, 0, 0), false, nil, nil)
	c2, _ := issue(t, "Paynet OFP signing 2", now, now.AddDate(1, 1, 0), false, nil, nil)
	var step atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := func(kid string, c *x509.Certificate) map[string]any {
			return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "x5c": []string{base64.StdEncoding.EncodeToString(c.Raw)}}
		}
		switch step.Load() {
		case 0:
			json.NewEncoder(w).Encode(map[string]any{"keys": []any{key("k1", c1)}})
		case 1:
			json.NewEncoder(w).Encode(map[string]any{"keys": []any{key("k1", c1), key("k2", c2)}})
		case 2:
			w.Write([]byte(`{"keys":[{"kid":"k3","x5c":["not base64!"]}]}`))
		default:
			w.Write([]byte(`<html>maintenance</html>`))
		}
	}))
	defer srv.Close()
	p := &monitor.Probes{JWKS: []string{srv.URL}, Now: func() time.Time { return now }}
	r := p.Run(context.Background())[0]
	if !r.OK || len(r.Certs) != 1 || r.Certs[0].Kid != "k1" || r.Certs[0].Source != monitor.SourceJWKS || !r.Certs[0].NotAfter.Equal(c1.NotAfter) {
		t.Fatalf("first probe: %+v", r)
	}
	step.Store(1)
	if r = p.Run(context.Background())[0]; len(r.Kids) != 2 || p.KidChanges()[srv.URL] != 1 {
		t.Fatalf("after a new kid: %+v, %d changes", r, p.KidChanges()[srv.URL])
	}
	p.Run(context.Background()) // unchanged: no change counted
	step.Store(2)
	if r = p.Run(context.Background())[0]; r.OK || r.Problem != "bad-x5c" || !strings.Contains(r.Error, `"k3"`) {
		t.Fatalf("a bad x5c: %+v", r)
	}
	step.Store(3)
	if r = p.Run(context.Background())[0]; r.OK || r.Problem != "bad-jwks" {
		t.Fatalf("not a JWKS: %+v", r)
	}
}
