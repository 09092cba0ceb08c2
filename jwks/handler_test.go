package jwks_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

func snapshot(t testing.TB) *jwks.Snapshot {
	t.Helper()
	_, ks := fixture(t)
	s, err := jwks.NewSnapshot(ks, 1, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A transport of its own, so that Go does not add or undo gzip.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestHandlerServesTheSnapshotWithCachingHeaders(t *testing.T) {
	h := jwks.NewHandler(jwks.ServeOptions{MaxAge: 300 * time.Second})
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, body := get(t, srv.URL, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "keys") {
		t.Fatalf("before any snapshot: %d %q, want 503 and no JWKS", resp.StatusCode, body)
	}

	s := snapshot(t)
	h.Set(s)
	resp, body = get(t, srv.URL, nil)
	for k, want := range map[string]string{
		"Content-Type":  "application/jwk-set+json",
		"Cache-Control": "public, max-age=300",
		"ETag":          s.ETag,
		"Last-Modified": s.Modified.Format(http.TimeFormat),
		"Vary":          "Accept-Encoding",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, s.Body) {
		t.Fatalf("GET = %d, body equal %v", resp.StatusCode, bytes.Equal(body, s.Body))
	}

	resp, body = get(t, srv.URL, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("gzip: %v, Content-Encoding %q", err, resp.Header.Get("Content-Encoding"))
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, s.Body) {
		t.Fatal("the gzip variant is not the same JWKS")
	}
	if resp, _ := get(t, srv.URL, map[string]string{"Accept-Encoding": "gzip;q=0"}); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}

	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"the current ETag", map[string]string{"If-None-Match": s.ETag}, 304},
		{"a weak form of it", map[string]string{"If-None-Match": "W/" + s.ETag}, 304},
		{"a list holding it", map[string]string{"If-None-Match": `"old", ` + s.ETag}, 304},
		{"a star", map[string]string{"If-None-Match": "*"}, 304},
		{"another ETag", map[string]string{"If-None-Match": `"old"`}, 200},
		{"another ETag even with a recent If-Modified-Since", map[string]string{"If-None-Match": `"old"`, "If-Modified-Since": time.Now().UTC().Format(http.TimeFormat)}, 200},
		{"If-Modified-Since after the change", map[string]string{"If-Modified-Since": s.Modified.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"If-Modified-Since before the change", map[string]string{"If-Modified-Since": s.Modified.Add(-time.Hour).Format(http.TimeFormat)}, 200},
	} {
		resp, body := get(t, srv.URL, tc.hdr)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if tc.code == 304 && (len(body) != 0 || resp.Header.Get("ETag") != s.ETag || resp.Header.Get("Cache-Control") == "") {
			t.Errorf("%s: a 304 with body %d bytes, ETag %q", tc.name, len(body), resp.Header.Get("ETag"))
		}
	}

	head, _ := http.Head(srv.URL)
	if head.StatusCode != 200 || head.ContentLength != int64(len(s.Body)) {
		t.Errorf("HEAD = %d, Content-Length %d", head.StatusCode, head.ContentLength)
	}
	post, _ := http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if post.StatusCode != http.StatusMethodNotAllowed || post.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q", post.StatusCode, post.Header.Get("Allow"))
	}

	h.SetOptions(jwks.ServeOptions{MaxAge: time.Hour, ContentType: jwks.MediaJSON})
	resp, _ = get(t, srv.URL, nil)
	if resp.Header.Get("Cache-Control") != "public, max-age=900" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("after SetOptions: %q %q (max-age must be clamped to 900)", resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
}

func TestConcurrentReadersNeverSeeATornJWKS(t *testing.T) {
	a := snapshot(t)
	_, ks := fixture(t)
	for i := range ks.Versions {
		if ks.Versions[i].Purpose == pki.Signing {
			ks.Versions[i].State = keyset.Retiring // a different, valid JWKS
		}
	}
	b, err := jwks.NewSnapshot(ks, 2, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := jwks.NewHandler(jwks.ServeOptions{MaxAge: time.Minute})
	h.Set(a)
	srv := httptest.NewServer(h)
	defer srv.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(srv.URL)
				if err != nil {
					errs <- err.Error()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !bytes.Equal(body, a.Body) && !bytes.Equal(body, b.Body) {
					errs <- "a response that is neither snapshot"
					return
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			h.Set(b)
		} else {
			h.Set(a)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestSnapshotRoundTripsThroughDiskAndRefusesDamage(t *testing.T) {
	s := snapshot(t)
	path := filepath.Join(t.TempDir(), "jwks-snapshot.json")
	if err := s.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	got, err := jwks.LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, s.Body) || got.ETag != s.ETag || !got.Modified.Equal(s.Modified) || len(got.Keys) != len(s.Keys) {
		t.Fatal("the loaded snapshot differs")
	}
	raw, _ := os.ReadFile(path)
	for name, bad := range map[string][]byte{
		"truncated":              raw[:len(raw)/2],
		"empty":                  nil,
		"a private member added": bytes.Replace(raw, []byte(`"kty":"RSA"`), []byte(`"kty":"RSA","d":"AQAB"`), 1),
		"the encryption key cut": func() []byte {
			var p map[string]json.RawMessage
			json.Unmarshal(raw, &p)
			var set struct{ Keys []json.RawMessage }
			json.Unmarshal(p["jwks"], &set)
			p["jwks"], _ = json.Marshal(map[string]any{"keys": set.Keys[:1]})
			out, _ := json.Marshal(p)
			return out
		}(),
	} {
		os.WriteFile(path, bad, 0o600)
		if _, err := jwks.LoadSnapshot(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestNewSnapshotRefusesAKeysetThatWouldPublishABadJWKS(t *testing.T) {
	_, ks := fixture(t)
	for i := range ks.Versions {
		if ks.Versions[i].Purpose == pki.Encryption {
			ks.Versions[i].State = keyset.Staged
		}
	}
	if _, err := jwks.NewSnapshot(ks, 3, jwks.Options{}); err == nil || !strings.Contains(err.Error(), "use enc") {
		t.Fatalf("a keyset without a published enc key: %v", err)
	}
	_, ks = fixture(t)
	ks.Versions[2].Kid = ks.Versions[1].Kid
	if _, err := jwks.NewSnapshot(ks, 3, jwks.Options{}); err == nil {
		t.Fatal("a keyset with a duplicate kid made a snapshot")
	}
}

func TestLintAppliesTheContextRules(t *testing.T) {
	s := snapshot(t)
	good := http.Header{"Cache-Control": {"public, max-age=300"}, "Content-Type": {"application/jwk-set+json"}}
	opts := jwks.LintOptions{RequireSigAndEnc: true, KidPolicy: pki.KidX5tS256, Now: now, MinValidity: true, Header: good}
	if fs := jwks.Lint(s.Body, opts); len(fs) != 0 {
		t.Fatalf("a good JWKS has findings: %v", fs)
	}
	rules := func(fs []jwks.Finding) string {
		var r []string
		for _, f := range fs {
			r = append(r, f.Rule)
		}
		return strings.Join(r, ",")
	}
	for _, tc := range []struct {
		name string
		mod  func(o *jwks.LintOptions)
		want string
	}{
		{"max-age 3600", func(o *jwks.LintOptions) {
			o.Header = http.Header{"Cache-Control": {"max-age=3600"}, "Content-Type": {"application/json"}}
		}, "cache-control"},
		{"no Cache-Control", func(o *jwks.LintOptions) { o.Header = http.Header{"Content-Type": {"application/json"}} }, "cache-control"},
		{"served as HTML", func(o *jwks.LintOptions) {
			o.Header = http.Header{"Cache-Control": {"max-age=60"}, "Content-Type": {"text/html"}}
		}, "content-type"},
		{"another kid policy", func(o *jwks.LintOptions) { o.KidPolicy = pki.KidJWKThumbprint }, "kid-policy,kid-policy"},
		{"checked years later", func(o *jwks.LintOptions) { o.Now = now.AddDate(5, 0, 0) }, "validity,validity"},
	} {
		o := opts
		tc.mod(&o)
		if got := rules(jwks.Lint(s.Body, o)); got != tc.want {
			t.Errorf("%s: rules %q, want %q", tc.name, got, tc.want)
		}
	}
}
