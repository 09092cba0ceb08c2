package keyset

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// WriteFiles writes the purpose's active version to dir as PEM files, the
// layout `ofmkeys export` and the daemon's file sinks share: PURPOSE.crt
// (the certificate), PURPOSE-chain.pem (certificate and chain) and, with
// withKey, PURPOSE.key (PKCS#8). Each file is written atomically, 0600, in
// a 0700 folder. It returns the paths written, in that order.
func WriteFiles(ctx context.Context, s keystore.Store, ks *Keyset, p pki.Purpose, dir string, withKey bool) ([]string, error) {
	v := ks.Active(p)
	if v == nil {
		return nil, fmt.Errorf("%w: the %s purpose has no active key", ErrNoVersion, p)
	}
	chain, err := v.Certificates()
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{string(p) + ".crt", pki.EncodeCertificates(chain[:1])},
		{string(p) + "-chain.pem", pki.EncodeCertificates(chain)},
	}
	if withKey {
		key, _, err := LoadKey(ctx, s, ks.DCID, v)
		if err != nil {
			return nil, err
		}
		files = append(files, struct {
			name string
			data []byte
		}{string(p) + ".key", pki.EncodePrivateKey(key)})
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := keystore.WriteFileAtomic(path, f.data); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}
