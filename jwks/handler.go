package jwks

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Media types of a JWKS response.
const (
	MediaJWKSet = "application/jwk-set+json" // RFC 7517 §8.5
	MediaJSON   = "application/json"
)

// MaxCacheAge is OFM's ceiling: consumers cache a JWKS for up to 15 minutes.
const MaxCacheAge = 15 * time.Minute

// ServeOptions shape the HTTP responses.
type ServeOptions struct {
	// MaxAge is the Cache-Control max-age; at most MaxCacheAge.
	MaxAge time.Duration
	// ContentType is MediaJWKSet (default when empty) or MediaJSON.
	ContentType string
}

// Handler serves the current snapshot: GET and HEAD, strong ETag with
// If-None-Match, Last-Modified with If-Modified-Since, gzip when asked for.
// Until a snapshot is set it answers 503, never an empty JWKS. Safe for
// concurrent use; Set swaps the snapshot atomically. Every header value is
// formatted when a snapshot or the options change, never per request.
type Handler struct {
	snap atomic.Pointer[Snapshot]
	opts atomic.Pointer[served]
}

// served is ServeOptions as header values.
type served struct {
	cacheControl, contentType []string
}

// Constant header values, shared by every response (never modified).
var (
	hdrVary    = []string{"Accept-Encoding"}
	hdrNosniff = []string{"nosniff"}
	hdrGzip    = []string{"gzip"}
)

// NewHandler returns a handler with the given options and no snapshot.
func NewHandler(o ServeOptions) *Handler {
	h := &Handler{}
	h.SetOptions(o)
	return h
}

// SetOptions replaces the response options (on a configuration reload).
func (h *Handler) SetOptions(o ServeOptions) {
	if o.ContentType == "" {
		o.ContentType = MediaJWKSet
	}
	if o.MaxAge > MaxCacheAge {
		o.MaxAge = MaxCacheAge
	}
	h.opts.Store(&served{
		cacheControl: []string{"public, max-age=" + strconv.Itoa(int(o.MaxAge/time.Second))},
		contentType:  []string{o.ContentType},
	})
}

// Set makes s the served snapshot.
func (h *Handler) Set(s *Snapshot) { h.snap.Store(s) }

// Current returns the served snapshot, or nil.
func (h *Handler) Current() *Snapshot { return h.snap.Load() }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s := h.snap.Load()
	if s == nil {
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "the JWKS is not ready yet", http.StatusServiceUnavailable)
		return
	}
	o := h.opts.Load()
	// Canonical keys, assigned directly: no per-request formatting.
	hd := w.Header()
	hd["Cache-Control"] = o.cacheControl
	hd["Etag"] = s.etagHdr
	hd["Last-Modified"] = s.modifiedHdr
	hd["Vary"] = hdrVary
	hd["X-Content-Type-Options"] = hdrNosniff
	if notModified(r, s) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body, length := s.Body, s.lenHdr
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, length = s.Gzip, s.gzipLenHdr
		hd["Content-Encoding"] = hdrGzip
	}
	hd["Content-Type"] = o.contentType
	hd["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// notModified applies RFC 9110 §13.2.2: If-None-Match wins over
// If-Modified-Since; ETags compare weakly for GET/HEAD.
func notModified(r *http.Request, s *Snapshot) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for inm != "" {
			var tag string
			tag, inm, _ = strings.Cut(inm, ",")
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == s.ETag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !s.Modified.After(t) {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
