package daemon_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/monitor"
)

// expiringCert is a PEM certificate that expires in left.
func expiringCert(t *testing.T, cn string, left time.Duration) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().AddDate(-1, 0, 0), NotAfter: time.Now().Add(left)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &testkeys.Key(0).PublicKey, testkeys.Key(0))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// alertSink is a webhook receiver on loopback that records notifications.
type alertSink struct {
	mu    sync.Mutex
	notes []monitor.Notification
	got   chan monitor.Notification
}

func newAlertSink(t *testing.T, secret []byte) (*alertSink, string) {
	s := &alertSink{got: make(chan monitor.Notification, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := monitor.VerifySignature(secret, body, r.Header.Get(monitor.SignatureHeader), time.Now(), time.Minute); err != nil {
			w.WriteHeader(401)
			return
		}
		var n monitor.Notification
		json.Unmarshal(body, &n)
		s.mu.Lock()
		s.notes = append(s.notes, n)
		s.mu.Unlock()
		s.got <- n
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// The daemon watches a folder of certificates besides its keyset: a file
// that expires in 10 days raises a critical alert, seen in /status.json,
// on /status, in /metrics, and notified once, by the lease holder only,
// though two replicas watch the same keyset.
func TestTheDaemonAlertsOnAWatchedCertificateOnceAcrossReplicas(t *testing.T) {
	s := newFileStore(t)
	ks := createKeyset(t, s, false)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "paynet-ca.pem"), expiringCert(t, "Paynet Sandbox CA", 10*24*time.Hour), 0o644)
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o644)
	secret := []byte("s")
	sink, url := newAlertSink(t, secret)
	mon := daemon.Monitor{Watch: []string{dir}, Interval: 50 * time.Millisecond, Notifiers: []monitor.Notifier{&monitor.Webhook{URL: url, Secret: secret}}}
	cfg := func(actor string) daemon.Config {
		return daemon.Config{Monitor: mon, Rotation: daemon.Rotation{Enabled: true, Interval: 50 * time.Millisecond, Actor: actor}}
	}
	a := start(t, s, cfg("replica-a"))
	b := start(t, s, cfg("replica-b"))
	isAlerting := func(e daemon.Event) bool { return e.Kind == daemon.EventMonitor && e.Alerts >= 2 }
	a.wait(t, "replica a's alerts", isAlerting)
	b.wait(t, "replica b's alerts", isAlerting)

	got := map[string]monitor.Notification{}
	for range 2 {
		n := <-sink.got
		got[n.Alert.Rule] = n
	}
	if n := got[monitor.RuleExpiring]; n.Status != "firing" || n.Alert.Severity != monitor.Critical || n.DCID != ks.DCID || !strings.Contains(n.Alert.Summary, "Paynet Sandbox CA") {
		t.Fatalf("notifications %+v", got)
	}
	if n := got[monitor.RuleWatchedFileProblem]; n.Status != "firing" {
		t.Fatalf("notifications %+v", got)
	}
	// Both replicas see the alerts; only one notified them.
	for _, r := range []*running{a, b} {
		r.until(t, "the whole status", func() bool {
			st := r.srv.Status()
			return st != nil && len(st.Keys) == 3 // the keyset is served
		})
		_, body := fetch(t, nil, r.base+daemon.PathStatusJSON)
		var st monitor.Status
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if st.Level != "critical" || len(st.Alerts) != 2 || len(st.Watched) != 1 || len(st.Keys) != 3 || len(st.FileProblems) != 1 {
			t.Fatalf("status %s", body)
		}
	}
	_, page := fetch(t, nil, a.base+daemon.PathStatus)
	if !strings.Contains(string(page), `<svg id="timeline"`) || !strings.Contains(string(page), "Paynet Sandbox CA") {
		t.Fatal("the status page lacks the timeline or the watched certificate")
	}
	_, metrics := fetch(t, nil, a.base+daemon.PathMetrics)
	for _, want := range []string{`ofmkeys_alerts_firing{rule="CertificateExpiringSoon",severity="critical"} 1`, `ofmkeys_watched_file_errors_total 1`,
		`ofmkeys_certificate_not_after_timestamp_seconds{kid="",purpose="",source="file",state="",target="` + filepath.Join(dir, "paynet-ca.pem") + `"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Fixing the file resolves the alert, once.
	os.WriteFile(filepath.Join(dir, "paynet-ca.pem"), expiringCert(t, "Paynet Sandbox CA", 400*24*time.Hour), 0o644)
	if n := <-sink.got; n.Status != "resolved" || n.Alert.Rule != monitor.RuleExpiring {
		t.Fatalf("after the fix: %+v", n)
	}
	a.stop()
	b.stop()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.notes) != 3 {
		t.Fatalf("%d notifications, want 3 (firing ×2, resolved): %+v", len(sink.notes), sink.notes)
	}
}
