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

// save writes the keyset document if its version is still version.
func save(ctx context.Context, s keystore.Store, ks *Keyset, version int64, now time.Time) (int64, error) {
	p, err := keystore.StatePath(ks.DCID)
	if err != nil {
		return 0, err
	}
	ks.Format = FormatVersion
	ks.UpdatedAt = now
	data, err := json.MarshalIndent(ks, "", "  ")
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
