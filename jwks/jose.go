package jwks

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// kidRE is what a kid from a message header must look like before it is
// used to look anything up: go-jose passes "../../etc/passwd" through.
var kidRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidKid reports whether kid is safe to use as a lookup key.
func ValidKid(kid string) bool { return kidRE.MatchString(kid) }

// Errors of the JOSE operations.
var (
	// ErrVerify: a JWS is malformed, uses another algorithm, names no
	// known key, or its signature does not verify.
	ErrVerify = errors.New("signature verification failed")
	// ErrDecrypt: no held key opens the JWE, or it is malformed or
	// tampered. One error for all, so it tells an attacker nothing.
	ErrDecrypt = errors.New("cannot decrypt")
)

// maxJOSE bounds a JWS or JWE we parse (OFM bodies are small).
const maxJOSE = 4 << 20

// Sign makes a PS256 compact JWS of payload with kid in the header. A
// detached JWS (RFC 7515 appendix F) leaves the payload segment empty.
func Sign(key *rsa.PrivateKey, kid string, payload []byte, detached bool) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: SigAlg, Key: key}, (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	if detached {
		return obj.DetachedCompactSerialize()
	}
	return obj.CompactSerialize()
}

// Verified is a checked JWS.
type Verified struct {
	Kid     string `json:"kid"`
	Alg     string `json:"alg"`
	Payload []byte `json:"-"`
}

// Verify checks a compact JWS against the "sig" keys of set: PS256 only,
// one signature, a kid that names a key of the set (kids can repeat during
// a rotation, so every key with that kid is tried). detached is the payload
// of a detached JWS, nil for an attached one.
func Verify(jws string, detached []byte, set *jose.JSONWebKeySet) (*Verified, error) {
	jws = strings.TrimSpace(jws)
	if len(jws) > maxJOSE {
		return nil, fmt.Errorf("%w: %d bytes is too long", ErrVerify, len(jws))
	}
	if strings.Count(jws, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (want three dot-separated parts)", ErrVerify)
	}
	var obj *jose.JSONWebSignature
	var err error
	if detached != nil {
		if !strings.Contains(jws, "..") {
			return nil, fmt.Errorf("%w: the JWS carries its payload; verify it without a detached payload", ErrVerify)
		}
		obj, err = jose.ParseDetached(jws, detached, []jose.SignatureAlgorithm{SigAlg})
	} else {
		if strings.Contains(jws, "..") {
			return nil, fmt.Errorf("%w: the payload is detached: give it with --payload", ErrVerify)
		}
		obj, err = jose.ParseSignedCompact(jws, []jose.SignatureAlgorithm{SigAlg})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	if len(obj.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures, want one", ErrVerify, len(obj.Signatures))
	}
	h := obj.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid in the protected header, so no key to check it with", ErrVerify)
	}
	if !ValidKid(h.KeyID) {
		return nil, fmt.Errorf("%w: kid %q is not a valid key id", ErrVerify, truncate(h.KeyID))
	}
	candidates := set.Key(h.KeyID)
	tried := 0
	for _, k := range candidates {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		tried++
		payload, err := obj.Verify(k.Key)
		if err == nil {
			return &Verified{Kid: h.KeyID, Alg: h.Algorithm, Payload: payload}, nil
		}
	}
	if tried == 0 {
		return nil, fmt.Errorf("%w: kid %q is not a signing key of the JWKS", ErrVerify, h.KeyID)
	}
	return nil, fmt.Errorf("%w: the signature does not verify with key %q", ErrVerify, h.KeyID)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Encrypt makes a compact RSA-OAEP-256/A256GCM JWE of plaintext to pub,
// naming kid in the header when it is not empty.
func Encrypt(pub *rsa.PublicKey, kid string, plaintext []byte) (string, error) {
	enc, err := jose.NewEncrypter(EncAlg, jose.Recipient{Algorithm: KeyAlg, Key: pub, KeyID: kid}, nil)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	obj, err := enc.Encrypt(plaintext)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return obj.CompactSerialize()
}

// Decryptor is a private key that may open a JWE, and its kid.
type Decryptor struct {
	Kid string
	Key *rsa.PrivateKey
}

// Decrypt opens a compact RSA-OAEP-256/A256GCM JWE. When its header names a
// kid, only the key with that kid is tried (no guessing); OFM's JWEs carry
// none, and then every key is tried in the order given (current first).
// Compression ("zip") is refused before any work: decompression bombs.
func Decrypt(jwe string, keys []Decryptor) ([]byte, string, error) {
	jwe = strings.TrimSpace(jwe)
	if len(jwe) > maxJOSE {
		return nil, "", fmt.Errorf("%w: %d bytes is too long", ErrDecrypt, len(jwe))
	}
	if err := checkJWEHeader(jwe); err != nil {
		return nil, "", err
	}
	obj, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{KeyAlg}, []jose.ContentEncryption{EncAlg})
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	if kid := obj.Header.KeyID; kid != "" {
		if !ValidKid(kid) {
			return nil, "", fmt.Errorf("%w: kid %q is not a valid key id", ErrDecrypt, truncate(kid))
		}
		var match []Decryptor
		for _, k := range keys {
			if k.Kid == kid {
				match = append(match, k)
			}
		}
		if len(match) == 0 {
			return nil, "", fmt.Errorf("%w: kid %q is not an encryption key this keyset still holds", ErrDecrypt, kid)
		}
		keys = match
	}
	for _, k := range keys {
		if pt, err := obj.Decrypt(k.Key); err == nil {
			return pt, k.Kid, nil
		}
	}
	return nil, "", fmt.Errorf("%w: none of the %d held encryption keys opens it (addressed to another key, or tampered)", ErrDecrypt, len(keys))
}

// checkJWEHeader reads the protected header itself to refuse what
// go-jose would otherwise act on: compression and other algorithms.
func checkJWEHeader(jwe string) error {
	head, _, ok := strings.Cut(jwe, ".")
	if !ok || strings.Count(jwe, ".") != 4 {
		return fmt.Errorf("%w: not a compact JWE (want five dot-separated parts)", ErrDecrypt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return fmt.Errorf("%w: protected header is not base64url", ErrDecrypt)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: protected header is not a JSON object", ErrDecrypt)
	}
	if _, ok := h["zip"]; ok {
		return fmt.Errorf("%w: compressed JWEs (zip) are refused", ErrDecrypt)
	}
	if h["alg"] != string(KeyAlg) || h["enc"] != string(EncAlg) {
		return fmt.Errorf("%w: alg %v / enc %v; OFM uses RSA-OAEP-256 / A256GCM", ErrDecrypt, h["alg"], h["enc"])
	}
	return nil
}

// ParseSet reads a JWKS document (public keys only) after Check's
// basic rules; go-jose also checks that each x5c matches its key.
func ParseSet(doc []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJWKS, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("%w: key %q has private members: refusing to use a leaked private key", ErrInvalidJWKS, k.KeyID)
		}
	}
	return &set, nil
}
