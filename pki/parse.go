package pki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.step.sm/crypto/pemutil"
)

// ErrMalformedPEM is returned for PEM input that is not exactly what was
// asked for: junk around the blocks, the wrong block type, too many blocks.
var ErrMalformedPEM = errors.New("malformed PEM")

// maxPEMBytes bounds what the parsers read: a long certificate chain is a
// few tens of kilobytes.
const maxPEMBytes = 1 << 20

// pemBlock is one block and the line it starts on, for error messages.
type pemBlock struct {
	*pem.Block
	line int
}

// decodeStrict splits data into PEM blocks and refuses anything else:
// text before, between or after blocks, and undecodable blocks.
// encoding/pem alone silently skips leading junk. When secret is set the
// input may hold key material, so errors never quote it.
func decodeStrict(data []byte, secret bool) ([]pemBlock, error) {
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%w: %d bytes is more than the %d a key or chain needs", ErrMalformedPEM, len(data), maxPEMBytes)
	}
	var blocks []pemBlock
	rest := data
	for {
		line := 1 + bytes.Count(data[:len(data)-len(rest)], []byte("\n"))
		trimmed := bytes.TrimLeft(rest, " \t\r\n")
		line += bytes.Count(rest[:len(rest)-len(trimmed)], []byte("\n"))
		if len(trimmed) == 0 {
			break
		}
		if !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
			if secret {
				return nil, fmt.Errorf("%w: line %d: unexpected text where a PEM block should start", ErrMalformedPEM, line)
			}
			return nil, fmt.Errorf("%w: line %d: unexpected text %q where a PEM block should start", ErrMalformedPEM, line, firstLine(trimmed))
		}
		b, next := pem.Decode(trimmed)
		if b == nil {
			return nil, fmt.Errorf("%w: line %d: a %q PEM block does not decode (bad base64 or missing END line)", ErrMalformedPEM, line, blockType(trimmed))
		}
		blocks = append(blocks, pemBlock{b, line})
		rest = next
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%w: no PEM data found", ErrMalformedPEM)
	}
	return blocks, nil
}

// blockType is the type named on a BEGIN line.
func blockType(b []byte) string {
	s := firstLine(b)
	s = strings.TrimPrefix(s, "-----BEGIN ")
	s, _, _ = strings.Cut(s, "-----")
	return s
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(bytes.TrimSpace(b))
}

// ParseCertificates parses a PEM chain: only CERTIFICATE blocks, nothing
// else in the input. The order is kept (leaf first for a chain).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	blocks, err := decodeStrict(data, false)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: line %d: block %d is %q, want CERTIFICATE (is this a key file?)", ErrMalformedPEM, b.line, i+1, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: certificate %d: %v", ErrMalformedPEM, b.line, i+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// ReadCertPool reads a CA bundle (PEM) into a pool for TLS; like the
// system's bundles it may hold comments and other blocks, but at least one
// certificate.
func ReadCertPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// ParsePrivateKey parses exactly one RSA private key (PKCS#1 or PKCS#8,
// encrypted PKCS#8 or legacy encrypted PEM with passphrase), refusing
// anything else in the input. The key's size and consistency are checked.
func ParsePrivateKey(data []byte, passphrase []byte) (*rsa.PrivateKey, error) {
	blocks, err := decodeStrict(data, true)
	if err != nil {
		return nil, err
	}
	var keys []pemBlock
	for _, b := range blocks {
		switch b.Type {
		case "RSA PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			keys = append(keys, b)
		case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("%w: line %d: %s: OFM requires RSA", ErrWeakKey, b.line, b.Type)
		default:
			return nil, fmt.Errorf("%w: line %d: block is %q, want a private key (RSA PRIVATE KEY or PRIVATE KEY)", ErrMalformedPEM, b.line, b.Type)
		}
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("%w: found %d private keys, want exactly one", ErrMalformedPEM, len(keys))
	}
	b := keys[0]
	encrypted := b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] == "4,ENCRYPTED"
	if encrypted && len(passphrase) == 0 {
		return nil, fmt.Errorf("line %d: the private key is encrypted and no passphrase was given", b.line)
	}
	var opts []pemutil.Options
	if encrypted {
		opts = append(opts, pemutil.WithPassword(passphrase))
	}
	k, err := pemutil.ParseKey(pem.EncodeToMemory(b.Block), opts...)
	if err != nil {
		if encrypted {
			return nil, fmt.Errorf("line %d: cannot decrypt the private key (wrong passphrase?)", b.line)
		}
		return nil, fmt.Errorf("%w: line %d: %v", ErrMalformedPEM, b.line, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T private key; OFM requires RSA", ErrWeakKey, k)
	}
	if err := CheckPublicKey(&rk.PublicKey); err != nil {
		return nil, err
	}
	if err := rk.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the RSA key is inconsistent: %v", ErrMalformedPEM, err)
	}
	return rk, nil
}

// EncodeCertificates writes a chain as PEM, in order.
func EncodeCertificates(chain []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

// EncodePrivateKey writes an RSA key as unencrypted PKCS#8 PEM.
func EncodePrivateKey(key *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		// Only unknown key types fail; an *rsa.PrivateKey never does.
		panic(fmt.Sprintf("pki: marshal RSA key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncodeCSR writes a certificate request as PEM.
func EncodeCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
