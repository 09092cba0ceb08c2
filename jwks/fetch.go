package jwks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// maxJWKSBytes bounds a fetched JWKS.
const maxJWKSBytes = 1 << 20

// IsURL reports whether src names an http(s) JWKS rather than a file.
func IsURL(src string) bool {
	return strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
}

// Load reads a JWKS from a file or an http(s) URL.
func Load(ctx context.Context, src string) ([]byte, error) {
	body, _, err := Fetch(ctx, src, nil)
	return body, err
}

// Fetch reads a JWKS from a file (no headers) or an http(s) URL (with
// the response headers), with a 10 s timeout and a 1 MiB bound. A nil
// client means http.DefaultClient.
func Fetch(ctx context.Context, src string, client *http.Client) ([]byte, http.Header, error) {
	if !IsURL(src) {
		f, err := os.Open(src)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		b, err := readLimited(f, src)
		return b, nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", MediaJWKSet+", "+MediaJSON)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.Header, fmt.Errorf("fetch JWKS %s: HTTP %s", src, resp.Status)
	}
	b, err := readLimited(resp.Body, src)
	return b, resp.Header, err
}

func readLimited(r io.Reader, src string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS %s is larger than %d bytes", src, maxJWKSBytes)
	}
	return b, nil
}
