package monitor_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/monitor"
)

var (
	scanDirOnce sync.Once
	scanDir     string
)

// benchFiles is a folder of 10,000 certificate files, made once.
func benchFiles(b *testing.B) string {
	scanDirOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ofmkeys-scan-bench")
		if err != nil {
			b.Fatal(err)
		}
		var certs [][]byte
		for i := range 25 {
			c, _ := issue(b, fmt.Sprintf("svc-%d.example", i), now, now.AddDate(1, 0, 0), false, nil, nil)
			certs = append(certs, certPEM(c))
		}
		for i := range 10000 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cert-%05d.pem", i)), certs[i%len(certs)], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		scanDir = dir
	})
	return scanDir
}

// BenchmarkScan: the monitor reading a folder of 10,000 certificate files
// (what Files does at start and after an overflow) against the plainest
// loop that reads and parses the same files.
func BenchmarkScan(b *testing.B) {
	dir := benchFiles(b)
	b.Run("ofmkeys", func(b *testing.B) {
		for b.Loop() {
			f := &monitor.Files{Paths: []string{dir}}
			f.Scan()
			if n := len(f.Certs()); n != 10000 {
				b.Fatalf("%d certificates", n)
			}
		}
	})
	b.Run("raw-parse-loop", func(b *testing.B) {
		for b.Loop() {
			entries, err := os.ReadDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, e := range entries {
				raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					b.Fatal(err)
				}
				block, _ := pem.Decode(raw)
				if _, err := x509.ParseCertificate(block.Bytes); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 10000 {
				b.Fatalf("%d certificates", n)
			}
		}
	})
}

// BenchmarkStatusPage renders the status page of a keyset mid-rotation
// with 50 watched certificates.
func BenchmarkStatusPage(b *testing.B) {
	st := sampleStatus()
	for i := range 50 {
		st.Watched = append(st.Watched, monitor.Cert{Source: monitor.SourceFile, Target: fmt.Sprintf("/etc/certs/%d.pem", i), Subject: "CN=x", NotAfter: now.Add(time.Duration(i) * 24 * time.Hour)})
	}
	for b.Loop() {
		if err := monitor.RenderHTML(io.Discard, st); err != nil {
			b.Fatal(err)
		}
	}
}
