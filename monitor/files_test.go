package monitor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/monitor"
)

// What a folder of certificates, bundles, keys and junk gives: every
// certificate, a problem for each unreadable file (the rest still read),
// and never a key's bytes.
func TestAFolderScanFindsCertificatesAndReportsTheRest(t *testing.T) {
	dir := t.TempDir()
	a, ka := issue(t, "a.example", now.AddDate(0, -1, 0), now.AddDate(0, 11, 0), false, nil, nil)
	b, _ := issue(t, "b.example", now.AddDate(0, -1, 0), now.AddDate(0, 2, 0), false, nil, nil)
	files := map[string][]byte{
		"a.pem":          certPEM(a),
		"bundle.pem":     append(keyPEM(ka), certPEM(b)...), // a key and a certificate: the certificate counts
		"a.key":          keyPEM(ka),                        // *.key: never opened
		"only-key.pem":   keyPEM(ka),                        // a key without a certificate: reported, not parsed
		"notes.txt":      []byte("hello"),
		"broken.pem":     []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		".hidden.pem":    certPEM(a),
		"huge.pem":       []byte(strings.Repeat("A", 2<<20)),
		"ends-in-ca.crt": certPEM(a, b),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink(filepath.Join(dir, "gone.pem"), filepath.Join(dir, "dangling.pem"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	f := &monitor.Files{Paths: []string{dir}}
	f.Scan()
	subjects := map[string]int{}
	for _, c := range f.Certs() {
		subjects[c.Subject]++
		if c.Source != monitor.SourceFile || c.X5tS256 == "" {
			t.Errorf("cert %+v", c)
		}
	}
	if subjects["CN=a.example"] != 2 || subjects["CN=b.example"] != 2 || len(subjects) != 2 {
		t.Fatalf("certificates by subject: %v", subjects)
	}
	want := map[string]string{
		"only-key.pem": "holds a private key and no certificate",
		"notes.txt":    "not a PEM file",
		"broken.pem":   "does not parse",
		"huge.pem":     "larger than",
		"dangling.pem": "no such file",
	}
	problems := f.Problems()
	for _, p := range problems {
		base := filepath.Base(p.Path)
		if w, ok := want[base]; !ok || !strings.Contains(p.Error, w) {
			t.Errorf("problem %s: %s", base, p.Error)
		}
		if strings.Contains(p.Error, "PRIVATE KEY") || strings.Contains(p.Error, "MII") {
			t.Errorf("a problem quotes key material: %s", p.Error)
		}
		delete(want, base)
	}
	if len(want) != 0 {
		t.Fatalf("problems not reported: %v (got %+v)", want, problems)
	}
	if f.Errors() != 5 {
		t.Fatalf("%d errors counted, want 5", f.Errors())
	}
}

// watch runs Watch and returns a channel told of every rescan.
func watch(t *testing.T, f *monitor.Files) chan struct{} {
	t.Helper()
	changed := make(chan struct{}, 100)
	f.OnChange = func() { changed <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Watch(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-changed // the first scan
	return changed
}

// until waits for rescans until cond holds (2 s at most).
func until(t *testing.T, changed chan struct{}, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for !cond() {
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: not seen within 2 s", what)
		}
	}
}

func notAfterOf(f *monitor.Files, name string) time.Time {
	for _, c := range f.Certs() {
		if filepath.Base(c.Target) == name {
			return c.NotAfter
		}
	}
	return time.Time{}
}

// RELIABILITY.md §7.7: atomic renames, Kubernetes' ..data symlink swap, a
// half-written file, a folder deleted and made again.
func TestWatchedFilesFollowEveryWayOfReplacingThem(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "certs")
	os.Mkdir(dir, 0o755)
	v1, _ := issue(t, "svc", now, now.AddDate(0, 1, 0), false, nil, nil)
	v2, _ := issue(t, "svc", now, now.AddDate(0, 2, 0), false, nil, nil)
	v3, _ := issue(t, "svc", now, now.AddDate(0, 3, 0), false, nil, nil)
	os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM(v1), 0o644)

	// Kubernetes: the visible name is a symlink into ..data, itself a
	// symlink to a timestamped folder that is swapped atomically.
	k8s := filepath.Join(root, "secret")
	os.MkdirAll(filepath.Join(k8s, "..2026_12_01"), 0o755)
	os.WriteFile(filepath.Join(k8s, "..2026_12_01", "ca.crt"), certPEM(v1), 0o644)
	os.Symlink("..2026_12_01", filepath.Join(k8s, "..data"))
	os.Symlink(filepath.Join("..data", "ca.crt"), filepath.Join(k8s, "ca.crt"))

	f := &monitor.Files{Paths: []string{dir, filepath.Join(k8s, "ca.crt")}}
	changed := watch(t, f)
	if !notAfterOf(f, "tls.crt").Equal(v1.NotAfter) || !notAfterOf(f, "ca.crt").Equal(v1.NotAfter) {
		t.Fatalf("first scan: %+v", f.Certs())
	}

	writeAtomic(t, filepath.Join(dir, "tls.crt"), certPEM(v2))
	until(t, changed, "an atomic rename", func() bool { return notAfterOf(f, "tls.crt").Equal(v2.NotAfter) })

	os.MkdirAll(filepath.Join(k8s, "..2026_12_04"), 0o755)
	os.WriteFile(filepath.Join(k8s, "..2026_12_04", "ca.crt"), certPEM(v2), 0o644)
	os.Symlink("..2026_12_04", filepath.Join(k8s, "..data_tmp"))
	os.Rename(filepath.Join(k8s, "..data_tmp"), filepath.Join(k8s, "..data"))
	os.RemoveAll(filepath.Join(k8s, "..2026_12_01"))
	until(t, changed, "a ..data symlink swap", func() bool { return notAfterOf(f, "ca.crt").Equal(v2.NotAfter) })

	// Half a file: reported, the last good certificate still watched;
	// then the rest arrives.
	full := certPEM(v3)
	os.WriteFile(filepath.Join(dir, "tls.crt"), full[:len(full)/2], 0o644)
	until(t, changed, "a half-written file reported", func() bool { return len(f.Problems()) == 1 })
	if !notAfterOf(f, "tls.crt").Equal(v2.NotAfter) {
		t.Fatal("the last good certificate was dropped while the file was half-written")
	}
	os.WriteFile(filepath.Join(dir, "tls.crt"), full, 0o644)
	until(t, changed, "the completed file", func() bool { return notAfterOf(f, "tls.crt").Equal(v3.NotAfter) && len(f.Problems()) == 0 })

	// The folder goes away (reported), and comes back (watched again).
	os.RemoveAll(dir)
	until(t, changed, "the folder's removal", func() bool { return notAfterOf(f, "tls.crt").IsZero() && len(f.Problems()) == 1 })
	if p := f.Problems()[0]; p.Path != dir || !strings.Contains(p.Error, "no such file") {
		t.Fatalf("problem %+v", p)
	}
	os.Mkdir(dir, 0o755)
	writeAtomic(t, filepath.Join(dir, "tls.crt"), certPEM(v1))
	until(t, changed, "the folder made again", func() bool { return notAfterOf(f, "tls.crt").Equal(v1.NotAfter) && len(f.Problems()) == 0 })
	// And it is watched again: a change inside it is seen.
	writeAtomic(t, filepath.Join(dir, "tls.crt"), certPEM(v2))
	until(t, changed, "a change in the folder made again", func() bool { return notAfterOf(f, "tls.crt").Equal(v2.NotAfter) })
	// A file removed is forgotten, without a problem.
	os.Remove(filepath.Join(dir, "tls.crt"))
	until(t, changed, "a removed file", func() bool { return notAfterOf(f, "tls.crt").IsZero() })
	if len(f.Problems()) != 0 {
		t.Fatalf("problems %+v", f.Problems())
	}
}

// A watched folder that does not exist yet is reported, and watched once
// it is made.
func TestAWatchedFolderMadeLaterIsWatched(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "later")
	f := &monitor.Files{Paths: []string{dir}}
	changed := watch(t, f)
	if p := f.Problems(); len(p) != 1 || !strings.Contains(p[0].Error, "no such file") {
		t.Fatalf("problems %+v", p)
	}
	c, _ := issue(t, "later", now, now.AddDate(0, 1, 0), false, nil, nil)
	os.Mkdir(dir, 0o755)
	until(t, changed, "the folder made", func() bool { return len(f.Problems()) == 0 })
	writeAtomic(t, filepath.Join(dir, "x.pem"), certPEM(c))
	until(t, changed, "a file in it", func() bool { return notAfterOf(f, "x.pem").Equal(c.NotAfter) })
}
