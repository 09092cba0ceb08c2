package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// ErrPassphrase: the store is sealed with a passphrase and none, or
// another one, was given.
var ErrPassphrase = errors.New("the store's passphrase is missing or wrong")

// The file store's sealing: every document is sealed with AES-256-GCM under
// a 32-byte data key. The key is either random and kept in a 0600 key file
// beside the data (the default: protects backups and copies of the data
// folder that leave the key file behind), or derived from a passphrase with
// scrypt (protects against anyone who can read the whole folder).
const (
	metaFile    = "store.json"
	keyFile     = "data.key"
	storeFormat = 1
	// scrypt cost (N=2^15, r=8, p=1): the parameters RFC 7914 and
	// x/crypto recommend for interactive use, about 60 ms here.
	scryptN = 1 << 15
	scryptR = 8
	scryptP = 1
)

// storeMeta is store.json: how the data key is obtained, and a check
// value that tells a wrong passphrase from a corrupt document.
type storeMeta struct {
	Format  int    `json:"format"`
	Sealing string `json:"sealing"` // "keyfile" or "passphrase"
	Salt    []byte `json:"salt,omitempty"`
	N       int    `json:"scrypt_n,omitempty"`
	R       int    `json:"scrypt_r,omitempty"`
	P       int    `json:"scrypt_p,omitempty"`
	// Check is a fixed plaintext sealed under the data key.
	Check []byte `json:"check"`
}

var checkPlaintext = []byte("ofmkeys file store")

// openDataKey loads or creates the store's data key.
func openDataKey(dir string, passphrase []byte) (cipher.AEAD, error) {
	metaPath := filepath.Join(dir, metaFile)
	raw, err := os.ReadFile(metaPath)
	if errors.Is(err, os.ErrNotExist) {
		return createDataKey(dir, passphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("file store %s: %w", dir, err)
	}
	var m storeMeta
	if err := json.Unmarshal(raw, &m); err != nil || m.Format != storeFormat {
		return nil, fmt.Errorf("%w: file store %s: %s is not a store description of format %d", ErrCorrupt, dir, metaFile, storeFormat)
	}
	var key []byte
	switch m.Sealing {
	case "keyfile":
		key, err = readKeyFile(filepath.Join(dir, keyFile))
		if err != nil {
			return nil, fmt.Errorf("file store %s: %w", dir, err)
		}
	case "passphrase":
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("file store %s: %w: it is sealed with a passphrase and none was given", dir, ErrPassphrase)
		}
		if m.N < 1<<14 || m.N > 1<<20 || m.R < 1 || m.R > 32 || m.P < 1 || m.P > 16 || len(m.Salt) < 16 {
			return nil, fmt.Errorf("%w: file store %s: scrypt parameters out of range", ErrCorrupt, dir)
		}
		key, err = scrypt.Key(passphrase, m.Salt, m.N, m.R, m.P, 32)
		if err != nil {
			return nil, fmt.Errorf("file store %s: derive key: %w", dir, err)
		}
	default:
		return nil, fmt.Errorf("%w: file store %s: unknown sealing %q", ErrCorrupt, dir, m.Sealing)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	got, err := open(aead, m.Check, []byte(metaFile))
	if err != nil || subtle.ConstantTimeCompare(got, checkPlaintext) != 1 {
		if m.Sealing == "passphrase" {
			return nil, fmt.Errorf("file store %s: %w: the given passphrase does not open it", dir, ErrPassphrase)
		}
		return nil, fmt.Errorf("%w: file store %s: %s does not open the store (was it replaced?)", ErrCorrupt, dir, keyFile)
	}
	return aead, nil
}

func createDataKey(dir string, passphrase []byte) (cipher.AEAD, error) {
	m := storeMeta{Format: storeFormat}
	var key []byte
	if len(passphrase) > 0 {
		m.Sealing, m.N, m.R, m.P = "passphrase", scryptN, scryptR, scryptP
		m.Salt = randomBytes(32)
		var err error
		if key, err = scrypt.Key(passphrase, m.Salt, m.N, m.R, m.P, 32); err != nil {
			return nil, err
		}
	} else {
		m.Sealing = "keyfile"
		key = randomBytes(32)
		if err := writeFileAtomic(filepath.Join(dir, keyFile), []byte(hex.EncodeToString(key)+"\n")); err != nil {
			return nil, fmt.Errorf("file store %s: write data key: %w", dir, err)
		}
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	m.Check = seal(aead, checkPlaintext, []byte(metaFile))
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, metaFile), raw); err != nil {
		return nil, fmt.Errorf("file store %s: %w", dir, err)
	}
	return aead, nil
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("data key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: data key %s is not 64 hex characters", ErrCorrupt, path)
	}
	return key, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal returns nonce || ciphertext. aad binds the document to its path and
// version, so a sealed file copied to another path or relabelled with
// another version does not open.
func seal(aead cipher.AEAD, plaintext, aad []byte) []byte {
	nonce := randomBytes(aead.NonceSize())
	return aead.Seal(nonce, nonce, plaintext, aad)
}

func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed data too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, sealed[:n], sealed[n:], aad)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("keystore: crypto/rand: %v", err))
	}
	return b
}
