package ofmcheck

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// CredentialsFrom loads the keyset's active transport and signing keys and
// every encryption key it still holds.
func CredentialsFrom(ctx context.Context, s keystore.Store, ks *keyset.Keyset) (Credentials, error) {
	var c Credentials
	for _, p := range []pki.Purpose{pki.Transport, pki.Signing} {
		v := ks.Active(p)
		if v == nil {
			return c, fmt.Errorf("%w: no active %s key", keyset.ErrNoVersion, p)
		}
		key, chain, err := keyset.LoadKey(ctx, s, ks.DCID, v)
		if err != nil {
			return c, err
		}
		if p == pki.Transport {
			c.TransportKid = v.Kid
			c.Transport = tls.Certificate{PrivateKey: key, Leaf: chain[0]}
			for _, cert := range chain {
				c.Transport.Certificate = append(c.Transport.Certificate, cert.Raw)
			}
		} else {
			c.SigningKey, c.SigningKid = key, v.Kid
		}
	}
	for _, v := range ks.Decryptors() {
		key, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
		if err != nil {
			return c, err
		}
		c.Decryptors = append(c.Decryptors, jwks.Decryptor{Kid: v.Kid, Key: key})
	}
	return c, nil
}
