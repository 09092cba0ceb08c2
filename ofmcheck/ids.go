package ofmcheck

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
)

// NewUUID returns a random (version 4) UUID: jti values and interaction ids.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ofmcheck: crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// IsUUID reports whether s is a version 4 UUID in canonical form.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// PKCE is a code verifier and its S256 challenge (RFC 7636).
type PKCE struct {
	Verifier  string
	Challenge string
}

// NewPKCE makes a 43-character verifier (32 random bytes) and its challenge.
func NewPKCE() PKCE {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ofmcheck: crypto/rand: %v", err))
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	return PKCE{Verifier: v, Challenge: S256(v)}
}

// S256 is the PKCE S256 challenge of a verifier.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// ValidVerifier reports whether v is a PKCE verifier RFC 7636 allows.
func ValidVerifier(v string) bool { return verifierRE.MatchString(v) }
