package daemon_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
)

// BenchmarkServe compares, in-process, the daemon's whole handler chain
// (metrics, routing, JWKS handler) with a bare net/http handler serving the
// same bytes through http.ServeContent, for full and 304 answers.
// `make bench` runs the end-to-end comparison with wrk and nginx too.
func BenchmarkServe(b *testing.B) {
	s := newFileStore(b)
	createKeyset(b, s, false)
	srv, err := daemon.New(s, daemon.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	ks, version, err := keyset.Load(ctx, s, settings.DCID)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := jwks.NewSnapshot(ks, version, jwks.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv.Handler().Set(snap)
	ours := srv.HTTPHandler()
	modified := time.Now()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("ETag", snap.ETag)
		http.ServeContent(w, r, "", modified, bytes.NewReader(snap.Body))
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"ofmkeys", ours}, {"bare", bare}} {
		for _, cond := range []bool{false, true} {
			name := tc.name + "/200"
			if cond {
				name = tc.name + "/304"
			}
			b.Run(name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, daemon.PathWellKnown, nil)
				if cond {
					req.Header.Set("If-None-Match", snap.ETag)
				}
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					tc.h.ServeHTTP(w, req)
					if (cond && w.Code != 304) || (!cond && w.Code != 200) {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		}
	}
}
