package daemon_test

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// serverCert writes a self-signed server certificate for 127.0.0.1.
func serverCert(t *testing.T, dir, cn string, key int) *x509.Certificate {
	t.Helper()
	k := testkeys.Key(key)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	// Written the way cert tools do it: new files renamed into place.
	if err := keystore.WriteFileAtomic(filepath.Join(dir, "tls.key"), pki.EncodePrivateKey(k)); err != nil {
		t.Fatal(err)
	}
	if err := keystore.WriteFileAtomic(filepath.Join(dir, "tls.crt"), pki.EncodeCertificates([]*x509.Certificate{c})); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHTTPSWithCertificateReload(t *testing.T) {
	dir := t.TempDir()
	first := serverCert(t, dir, "first", 3)
	s := newFileStore(t)
	createKeyset(t, s, false)
	r := start(t, s, daemon.Config{TLSCertFile: filepath.Join(dir, "tls.crt"), TLSKeyFile: filepath.Join(dir, "tls.key")})
	r.wait(t, "snapshot", isSnapshot)
	// The default self-check trusts our own certificate, so it passes.
	if e := r.wait(t, "lint", func(e daemon.Event) bool { return e.Kind == daemon.EventLint }); e.Err != nil || e.Findings != 0 {
		t.Fatalf("self-check over HTTPS: %v, %d findings", e.Err, e.Findings)
	}
	// presented is the certificate's CN the server shows now.
	presented := func() string {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(r.base, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := presented(); cn != "first" {
		t.Fatalf("presents %q", cn)
	}
	pool := x509.NewCertPool()
	pool.AddCert(first)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, _ := fetch(t, client, r.base+daemon.PathWellKnown); resp.StatusCode != 200 {
		t.Fatalf("HTTPS GET = %d", resp.StatusCode)
	}
	// Plain HTTP on the TLS port gets crypto/tls's 400, not the JWKS.
	if resp, err := http.Get("http://" + strings.TrimPrefix(r.base, "https://") + daemon.PathWellKnown); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP served the JWKS on the TLS port")
	}

	// Renewed files are picked up without a restart.
	serverCert(t, dir, "second", 4)
	r.wait(t, "TLS reload", func(e daemon.Event) bool { return e.Kind == daemon.EventTLS && e.Err == nil })
	deadline := time.After(5 * time.Second)
	for presented() != "second" {
		select {
		case <-deadline:
			t.Fatal("the renewed certificate is not presented")
		case <-r.events: // a later reload (key and certificate are renamed separately)
		}
	}

	// A broken certificate file keeps the current certificate.
	os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("garbage"), 0o600)
	r.wait(t, "failed TLS reload", func(e daemon.Event) bool { return e.Kind == daemon.EventTLS && e.Err != nil })
	if cn := presented(); cn != "second" {
		t.Fatalf("after a broken file: %q", cn)
	}
}

func TestSinksFollowTheKeysetAndSignalAProcess(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	dir := t.TempDir()
	marker := filepath.Join(dir, "reloads.log")
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	pidFile := filepath.Join(dir, "proxy.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o644)

	r := start(t, s, daemon.Config{Sinks: daemon.Sinks{
		Dir:      filepath.Join(dir, "tls"),
		Purposes: []pki.Purpose{pki.Transport, pki.Signing},
		JWKSFile: filepath.Join(dir, "public", "jwks.json"),
		Command:  `echo "$OFMKEYS_JWKS_ETAG" >> ` + marker,
		PIDFile:  pidFile,
	}})
	snap := r.wait(t, "snapshot", isSnapshot)
	if e := r.wait(t, "sink", func(e daemon.Event) bool { return e.Kind == daemon.EventSink }); e.Err != nil {
		t.Fatal(e.Err)
	}
	for _, f := range []string{"transport.crt", "transport-chain.pem", "transport.key", "signing.crt", "signing.key"} {
		fi, err := os.Stat(filepath.Join(dir, "tls", f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v", f, err, fi.Mode().Perm())
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, "tls", "transport.key"))
	crt, _ := os.ReadFile(filepath.Join(dir, "tls", "transport.crt"))
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatalf("the sink's transport pair does not load: %v", err)
	}
	if pki.X5tS256(pair.Leaf) != ks.Active(pki.Transport).Kid {
		t.Error("the sink holds another transport certificate than the active one")
	}
	published, _ := os.ReadFile(filepath.Join(dir, "public", "jwks.json"))
	if string(published) != string(r.srv.Handler().Current().Body) {
		t.Error("the JWKS sink differs from the served JWKS")
	}
	if err := sleeper.Wait(); err == nil || !strings.Contains(err.Error(), "hangup") {
		t.Errorf("the PID file's process: %v, want killed by SIGHUP", err)
	}

	// A change rewrites the sinks and runs the command again.
	createKeyset(t, s, true)
	next := r.wait(t, "sink after the change", func(e daemon.Event) bool { return e.Kind == daemon.EventSink && e.ETag != snap.ETag })
	if next.Err == nil || !strings.Contains(next.Err.Error(), "sink signal") {
		// The process is gone now, so the signal step fails and says so.
		t.Fatalf("second sink run: %v", next.Err)
	}
	log, _ := os.ReadFile(marker)
	if lines := strings.Fields(string(log)); len(lines) != 2 || lines[0] != snap.ETag || lines[1] != next.ETag {
		t.Fatalf("command runs: %q", log)
	}
}
