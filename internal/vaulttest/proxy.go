package vaulttest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// Fault decides, per request, what a Proxy does: nil forwards it untouched.
type Fault func(r *http.Request) Action

// Action is what a Proxy does with one request.
type Action int

const (
	// Forward passes the request to Vault and its answer back.
	Forward Action = iota
	// DropResponse passes the request to Vault, lets it commit, then
	// closes the client's connection without an answer.
	DropResponse
	// Status503 answers 503 without asking Vault.
	Status503
	// Status412 answers 412 (a performance standby not caught up).
	Status412
	// Status429 answers 429 (rate limited).
	Status429
	// Hang waits until the client gives up.
	Hang
)

// Proxy is a fault-injecting HTTP proxy in front of a real Vault: it
// produces what the real server cannot be made to do on demand.
type Proxy struct {
	URL string

	mu       sync.Mutex
	fault    Fault
	requests []string
}

// NewProxy starts a proxy to target for the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.Path)
		f := p.fault
		p.mu.Unlock()
		action := Forward
		if f != nil {
			action = f(r)
		}
		switch action {
		case Forward:
			rp.ServeHTTP(w, r)
		case DropResponse:
			rp.ServeHTTP(httptest.NewRecorder(), r)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case Status503:
			http.Error(w, `{"errors":["Vault is sealed"]}`, http.StatusServiceUnavailable)
		case Status412:
			http.Error(w, `{"errors":["required index state not present"]}`, http.StatusPreconditionFailed)
		case Status429:
			http.Error(w, `{"errors":["request path \"x\": rate limit quota exceeded"]}`, http.StatusTooManyRequests)
		case Hang:
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// SetFault replaces the fault function (nil: forward everything).
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// Requests returns "METHOD /path" of every request seen, and forgets them.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.requests
	p.requests = nil
	return r
}
