package keyset

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// KeyRecord is what a key path holds: the private key and its chain.
type KeyRecord struct {
	Format     int         `json:"format"`
	Kid        string      `json:"kid"`
	Purpose    pki.Purpose `json:"purpose"`
	PrivateKey string      `json:"private_key"` // PKCS#8 PEM
	Chain      string      `json:"chain"`       // PEM, leaf first; empty while pending
	CreatedAt  time.Time   `json:"created_at"`
}

// ResolveDC returns dcID when given; otherwise the one DC the store holds.
func ResolveDC(ctx context.Context, s keystore.Store, dcID string) (string, error) {
	if dcID != "" {
		if err := keystore.CheckSegment("dc_id", dcID); err != nil {
			return "", err
		}
		return dcID, nil
	}
	names, err := s.List(ctx, keystore.Root)
	if err != nil {
		return "", err
	}
	var dcs []string
	for _, n := range names {
		if d, ok := strings.CutSuffix(n, "/"); ok {
			dcs = append(dcs, d)
		}
	}
	switch len(dcs) {
	case 0:
		return "", fmt.Errorf("%w in the store", ErrNoKeyset)
	case 1:
		return dcs[0], nil
	}
	return "", fmt.Errorf("the store holds keysets of %d DCs (%s): choose one with --dc-id", len(dcs), strings.Join(dcs, ", "))
}

// Load reads a DC's keyset document and its store version.
func Load(ctx context.Context, s keystore.Store, dcID string) (*Keyset, int64, error) {
	p, err := keystore.StatePath(dcID)
	if err != nil {
		return nil, 0, err
	}
	data, version, err := s.Get(ctx, p)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w for dc_id %s", ErrNoKeyset, dcID)
	}
	if err != nil {
		return nil, 0, err
	}
	var ks Keyset
	if err := json.Unmarshal(data, &ks); err != nil {
		return nil, 0, fmt.Errorf("%w: keyset %s: %v", keystore.ErrCorrupt, dcID, err)
	}
	if ks.Format != FormatVersion {
		return nil, 0, fmt.Errorf("keyset %s has format %d; this ofmkeys reads format %d", dcID, ks.Format, FormatVersion)
	}
	return &ks, version, nil
}

// Save writes the keyset document if its store version is still version
// (compare-and-set) and returns the new version; keystore.ErrConflict when
// another writer was first (reload, re-check, retry if still needed).
func Save(ctx context.Context, s keystore.Store, ks *Keyset, version int64, now time.Time) (int64, error) {
	p, err := keystore.StatePath(ks.DCID)
	if err != nil {
		return 0, err
	}
	ks.Format = FormatVersion
	ks.UpdatedAt = now
	// Compact: the document is read on every poll and every rotation step.
	data, err := json.Marshal(ks)
	if err != nil {
		return 0, err
	}
	return s.Put(ctx, p, data, version)
}

// putCreateOnly writes a document that must never change. Finding the
// same document already there counts as success: a retried or resumed
// step writes what it wrote before.
func putCreateOnly(ctx context.Context, s keystore.Store, p string, data []byte) error {
	_, err := s.Put(ctx, p, data, 0)
	if errors.Is(err, keystore.ErrConflict) {
		got, _, gerr := s.Get(ctx, p)
		if gerr == nil && string(got) == string(data) {
			return nil
		}
		return fmt.Errorf("%w: %s holds another document", ErrExists, p)
	}
	return err
}

func putKey(ctx context.Context, s keystore.Store, dcID string, rec KeyRecord) error {
	p, err := keystore.KeyPath(dcID, string(rec.Purpose), rec.Kid)
	if err != nil {
		return err
	}
	rec.Format = FormatVersion
	data, _ := json.Marshal(rec)
	return putCreateOnly(ctx, s, p, data)
}

// LoadKey reads a version's private key and chain and checks that they
// belong together and to the version. A key the keyset names but the store
// lacks is an integrity error, never a reason to make a new one.
func LoadKey(ctx context.Context, s keystore.Store, dcID string, v *Version) (*rsa.PrivateKey, []*x509.Certificate, error) {
	p, err := keystore.KeyPath(dcID, string(v.Purpose), v.Kid)
	if err != nil {
		return nil, nil, err
	}
	data, _, err := s.Get(ctx, p)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: the %s key %s is named by the keyset but missing from the store", ErrIntegrity, v.Purpose, v.Kid)
	}
	if err != nil {
		return nil, nil, err
	}
	var rec KeyRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, nil, fmt.Errorf("%w: %s key %s: %v", keystore.ErrCorrupt, v.Purpose, v.Kid, err)
	}
	key, err := pki.ParsePrivateKey([]byte(rec.PrivateKey), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s key %s: %v", ErrIntegrity, v.Purpose, v.Kid, err)
	}
	chain, err := v.Certificates()
	if err != nil {
		return nil, nil, err
	}
	if !key.PublicKey.Equal(chain[0].PublicKey) || rec.Kid != v.Kid || rec.Purpose != v.Purpose {
		return nil, nil, fmt.Errorf("%w: the stored %s key %s does not match its certificate", ErrIntegrity, v.Purpose, v.Kid)
	}
	return key, chain, nil
}

// Orphans are key records of purpose p that the keyset does not name: a
// rotation that stored a key and stopped before saving the keyset leaves
// one. Rotation adopts them rather than making another key.
func Orphans(ctx context.Context, s keystore.Store, ks *Keyset, p pki.Purpose) ([]KeyRecord, error) {
	prefix, err := keystore.Path(ks.DCID, "keys", string(p))
	if err != nil {
		return nil, err
	}
	names, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []KeyRecord
	for _, kid := range names {
		if strings.HasSuffix(kid, "/") || len(ks.Find(kid)) > 0 {
			continue
		}
		data, _, err := s.Get(ctx, prefix+"/"+kid)
		if err != nil {
			return nil, err
		}
		var rec KeyRecord
		if err := json.Unmarshal(data, &rec); err != nil || rec.Kid != kid || rec.Purpose != p {
			continue // not ours to adopt; left alone
		}
		out = append(out, rec)
	}
	return out, nil
}

// Adopt names an orphaned key record in the keyset, in state st, after
// checking that its key and chain belong together.
func (ks *Keyset) Adopt(rec KeyRecord, st State, now time.Time) (*Version, error) {
	key, err := pki.ParsePrivateKey([]byte(rec.PrivateKey), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: orphaned %s key %s: %v", ErrIntegrity, rec.Purpose, rec.Kid, err)
	}
	chain, err := pki.ParseCertificates([]byte(rec.Chain))
	if err != nil || !key.PublicKey.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("%w: orphaned %s key %s does not match its certificate", ErrIntegrity, rec.Purpose, rec.Kid)
	}
	v := Version{Kid: rec.Kid, Purpose: rec.Purpose, Source: SelfSigned, NotBefore: chain[0].NotBefore.UTC(), NotAfter: chain[0].NotAfter.UTC(),
		X5tS256: pki.X5tS256(chain[0]), Chain: rec.Chain, CreatedAt: rec.CreatedAt}
	if !pki.SelfSigned(chain[0]) {
		v.Source = CAIssued
	}
	v.Transition(st, now, "adopted: stored before a stop, not yet named")
	ks.Versions = append(ks.Versions, v)
	return &ks.Versions[len(ks.Versions)-1], nil
}

// DeleteKey destroys a version's private key (retention over, policy says
// destroy). The version stays in the keyset, retired, for the record.
func DeleteKey(ctx context.Context, s keystore.Store, dcID string, v *Version) error {
	p, err := keystore.KeyPath(dcID, string(v.Purpose), v.Kid)
	if err != nil {
		return err
	}
	return s.Delete(ctx, p)
}
