package jwks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
)

func TestCacheHonoursTheTTLAndRefetchesUnknownKidsOnce(t *testing.T) {
	_, ks := fixture(t)
	doc, err := jwks.Marshal(ks, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(doc)
	}))
	defer srv.Close()
	clock := now
	var mu sync.Mutex
	c := &jwks.Cache{URL: srv.URL, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }}
	ctx := context.Background()
	if _, err := c.Keys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Keys(ctx); err != nil || hits.Load() != 1 {
		t.Fatalf("second Keys within the TTL fetched again (%d hits, %v)", hits.Load(), err)
	}

	// 100 concurrent lookups of an unknown kid right after a fetch: one
	// refetch (the peer may have rotated a moment ago), shared by all.
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if keys, err := c.Lookup(ctx, "unknown-kid"); err != nil || len(keys) != 0 {
				t.Errorf("Lookup = %v, %v", keys, err)
			}
		}()
	}
	wg.Wait()
	if hits.Load() != 2 {
		t.Fatalf("%d fetches for a flood of unknown kids, want 2 (the first, one refetch)", hits.Load())
	}
	// A minute later, the same flood costs one fetch.
	mu.Lock()
	clock = clock.Add(61 * time.Second)
	mu.Unlock()
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Lookup(ctx, "unknown-kid") }()
	}
	wg.Wait()
	if hits.Load() != 3 {
		t.Fatalf("%d fetches, want 3 (one refetch for the flood)", hits.Load())
	}
	// A known kid never refetches; the TTL does.
	sig := ks.Active("signing").Kid
	if keys, _ := c.Lookup(ctx, sig); len(keys) != 1 || hits.Load() != 3 {
		t.Fatalf("known kid: %d keys, %d hits", len(keys), hits.Load())
	}
	mu.Lock()
	clock = clock.Add(16 * time.Minute)
	mu.Unlock()
	c.Keys(ctx)
	if hits.Load() != 4 {
		t.Fatalf("after the TTL: %d hits, want 4", hits.Load())
	}
}
