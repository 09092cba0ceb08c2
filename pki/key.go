package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
)

// Key sizes OFM accepts. MinRSABits is the platform's floor (OFM-SPEC §1);
// MaxRSABits bounds the work a hostile import can make us do.
const (
	DefaultRSABits = 2048
	MinRSABits     = 2048
	MaxRSABits     = 8192
)

// ErrWeakKey is returned for an RSA key outside [MinRSABits, MaxRSABits]
// and for any key that is not RSA.
var ErrWeakKey = errors.New("key not accepted by OFM")

// CheckKeySize reports whether bits is a size ofmkeys will generate.
// Generation is limited to the common sizes; imports accept any size in the
// OFM range (see CheckPublicKey).
func CheckKeySize(bits int) error {
	switch bits {
	case 2048, 3072, 4096:
		return nil
	}
	if bits < MinRSABits {
		return fmt.Errorf("%w: RSA-%d is too small: OFM requires at least %d bits (use 2048, 3072 or 4096)", ErrWeakKey, bits, MinRSABits)
	}
	return fmt.Errorf("%w: RSA-%d is not a size ofmkeys generates: use 2048, 3072 or 4096", ErrWeakKey, bits)
}

// CheckPublicKey accepts an RSA public key of MinRSABits to MaxRSABits bits.
func CheckPublicKey(pub any) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: a %T key; OFM requires RSA", ErrWeakKey, pub)
	}
	switch n := k.N.BitLen(); {
	case n < MinRSABits:
		return fmt.Errorf("%w: RSA-%d is too small: OFM requires at least %d bits", ErrWeakKey, n, MinRSABits)
	case n > MaxRSABits:
		return fmt.Errorf("%w: RSA-%d is larger than the %d bits ofmkeys accepts", ErrWeakKey, n, MaxRSABits)
	}
	return nil
}

// GenerateKey makes an RSA key of the given size from crypto/rand.
func GenerateKey(bits int) (*rsa.PrivateKey, error) {
	if err := CheckKeySize(bits); err != nil {
		return nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA-%d key: %w", bits, err)
	}
	return k, nil
}

// GenerateKeys makes n RSA keys of the given size in parallel: prime search
// dominates the cost of a keyset, and the three keys are independent.
func GenerateKeys(bits, n int) ([]*rsa.PrivateKey, error) {
	if err := CheckKeySize(bits); err != nil {
		return nil, err
	}
	keys := make([]*rsa.PrivateKey, n)
	errs := make([]error, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			keys[i], errs[i] = GenerateKey(bits)
		}()
	}
	for range n {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}
