package sandbox

import (
	"crypto/rsa"

	"github.com/go-jose/go-jose/v4"
)

// signRS256 signs with RS256, which OFM does not allow (a negative case).
func signRS256(key *rsa.PrivateKey, kid string, payload []byte) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
