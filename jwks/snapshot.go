package jwks

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Snapshot is a JWKS ready to serve: built and checked once per keyset
// change, then served as bytes. A server swaps whole snapshots, so a reader
// never sees a torn or partial JWKS.
type Snapshot struct {
	// Body is the JWKS document; Gzip the same, compressed.
	Body []byte
	Gzip []byte
	// ETag is strong: the quoted base64url SHA-256 of Body, so replicas
	// serving the same keys give the same ETag.
	ETag string
	// Modified is when the keyset last changed (Last-Modified); the same
	// on every replica.
	Modified time.Time
	// DCID and StateVersion say which keyset document it was built from.
	DCID         string
	StateVersion int64
	// Keys are the public facts of every key version (published or not),
	// for metrics and health.
	Keys []KeyInfo

	// Header values, formatted once per snapshot rather than per request.
	etagHdr, modifiedHdr, lenHdr, gzipLenHdr []string
}

// KeyInfo is what a snapshot records of one key version.
type KeyInfo struct {
	Purpose   pki.Purpose  `json:"purpose"`
	State     keyset.State `json:"state"`
	Kid       string       `json:"kid"`
	NotBefore time.Time    `json:"not_before"`
	NotAfter  time.Time    `json:"not_after"`
	Published bool         `json:"published"`
}

// NewSnapshot builds the JWKS of ks and checks it (Check with sig and enc
// required): a keyset that would publish a bad JWKS yields an error, never
// a snapshot.
func NewSnapshot(ks *keyset.Keyset, stateVersion int64, o Options) (*Snapshot, error) {
	body, err := Marshal(ks, o)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Body: body, Modified: ks.UpdatedAt.UTC().Truncate(time.Second), DCID: ks.DCID, StateVersion: stateVersion}
	for _, v := range ks.Sorted() {
		s.Keys = append(s.Keys, KeyInfo{Purpose: v.Purpose, State: v.State, Kid: v.Kid, NotBefore: v.NotBefore, NotAfter: v.NotAfter, Published: published(&v, o)})
	}
	return s.seal()
}

// seal computes the derived parts: ETag and gzip variant.
func (s *Snapshot) seal() (*Snapshot, error) {
	sum := sha256.Sum256(s.Body)
	s.ETag = `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(s.Body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	s.Gzip = buf.Bytes()
	s.etagHdr = []string{s.ETag}
	s.modifiedHdr = []string{s.Modified.Format(http.TimeFormat)}
	s.lenHdr = []string{strconv.Itoa(len(s.Body))}
	s.gzipLenHdr = []string{strconv.Itoa(len(s.Gzip))}
	return s, nil
}

// persisted is a snapshot on disk: public data only.
type persisted struct {
	Format       int             `json:"format"`
	DCID         string          `json:"dc_id"`
	StateVersion int64           `json:"state_version"`
	Modified     time.Time       `json:"modified"`
	Keys         []KeyInfo       `json:"keys"`
	JWKS         json.RawMessage `json:"jwks"`
}

// Save writes the snapshot to path atomically (temp, fsync, rename), so a
// restarted server can serve it while the store is unreachable.
func (s *Snapshot) Save(path string) error {
	doc, err := json.Marshal(persisted{Format: 1, DCID: s.DCID, StateVersion: s.StateVersion, Modified: s.Modified, Keys: s.Keys, JWKS: s.Body})
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(path, doc)
}

// LoadSnapshot reads a snapshot saved by Save and checks it as strictly as
// a new one: a corrupted or tampered file is refused, never served.
func LoadSnapshot(path string) (*Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p persisted
	if err := json.Unmarshal(raw, &p); err != nil || p.Format != 1 {
		return nil, fmt.Errorf("persisted JWKS %s is corrupt or of another format: delete it; it is rebuilt from the store", path)
	}
	var body bytes.Buffer
	if err := json.Indent(&body, p.JWKS, "", "  "); err != nil {
		return nil, fmt.Errorf("persisted JWKS %s: %v", path, err)
	}
	body.WriteByte('\n')
	if err := Check(body.Bytes(), CheckOptions{RequireSigAndEnc: true}); err != nil {
		return nil, fmt.Errorf("persisted JWKS %s: %w", path, err)
	}
	return (&Snapshot{Body: body.Bytes(), Modified: p.Modified.UTC(), DCID: p.DCID, StateVersion: p.StateVersion, Keys: p.Keys}).seal()
}
