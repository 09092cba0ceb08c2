package jwks

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Cache keeps a peer's JWKS fetched from its URL: refreshed after TTL (OFM
// participants cache for up to 15 minutes), and refetched early, at most
// once per MinRefresh, when a kid is not found (the peer may have rotated).
// Concurrent callers share one fetch. Safe for concurrent use.
type Cache struct {
	URL string
	// TTL is how long a fetched JWKS is used; zero means 15 minutes.
	TTL time.Duration
	// MinRefresh spaces early refetches on unknown kids; zero means 1 minute.
	MinRefresh time.Duration
	// Client fetches; nil means http.DefaultClient.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
	// refetched is when an unknown kid last caused a fetch.
	refetched time.Time
	fetches   int
}

func (c *Cache) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Keys returns the cached JWKS, fetching it when absent or older than TTL.
func (c *Cache) Keys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.TTL
	if ttl == 0 {
		ttl = MaxCacheAge
	}
	if c.set != nil && c.now().Sub(c.fetched) < ttl {
		return c.set, nil
	}
	return c.fetchLocked(ctx)
}

// Lookup returns the keys with kid, refetching once (rate-limited) when
// the cached JWKS has none: a peer's new key is found without waiting for
// the TTL, even just after a regular fetch, and a flood of unknown kids
// costs at most one fetch per MinRefresh.
func (c *Cache) Lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	set, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	if keys := set.Key(kid); len(keys) > 0 {
		return keys, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	min := c.MinRefresh
	if min == 0 {
		min = time.Minute
	}
	if c.refetched.IsZero() || c.now().Sub(c.refetched) >= min {
		c.refetched = c.now()
		if _, err := c.fetchLocked(ctx); err != nil {
			return nil, err
		}
	}
	return c.set.Key(kid), nil
}

// KeysFor returns the keys to verify a message whose header names kid:
// the cached JWKS, refetched once (rate-limited, see Lookup) when kid is
// not in it. An empty kid only reads the cache.
func (c *Cache) KeysFor(ctx context.Context, kid string) (*jose.JSONWebKeySet, error) {
	if kid != "" {
		if _, err := c.Lookup(ctx, kid); err != nil {
			return nil, err
		}
	}
	return c.Keys(ctx)
}

// Fetches is how many times the JWKS was fetched (for tests and metrics).
func (c *Cache) Fetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

func (c *Cache) fetchLocked(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c.fetches++
	body, _, err := Fetch(ctx, c.URL, c.Client)
	if err != nil {
		return nil, err
	}
	set, err := ParseSet(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.URL, err)
	}
	c.set, c.fetched = set, c.now()
	return set, nil
}
