package rotation_test

import (
	"crypto/rsa"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
)

type rsaPublicKey = rsa.PublicKey

// countVersions is how many versions of purpose p the keyset holds.
func countVersions(ks *keyset.Keyset, p pki.Purpose) int {
	n := 0
	for _, v := range ks.Versions {
		if v.Purpose == p {
			n++
		}
	}
	return n
}
