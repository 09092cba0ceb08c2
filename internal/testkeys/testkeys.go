// Package testkeys hands tests RSA keys made once per test binary: an
// RSA-2048 key takes tens of milliseconds to generate, and most tests need
// a few that are merely distinct.
package testkeys

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
)

var (
	mu   sync.Mutex
	pool = map[int][]*rsa.PrivateKey{}
)

// RSA returns the i-th RSA key of the given size, the same key every time
// within one test binary.
func RSA(bits, i int) *rsa.PrivateKey {
	mu.Lock()
	defer mu.Unlock()
	for len(pool[bits]) <= i {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(fmt.Sprintf("testkeys: generate RSA-%d: %v", bits, err))
		}
		pool[bits] = append(pool[bits], k)
	}
	return pool[bits][i]
}

// Key returns the i-th RSA-2048 key.
func Key(i int) *rsa.PrivateKey { return RSA(2048, i) }
