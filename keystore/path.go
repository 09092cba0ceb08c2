package keystore

import (
	"fmt"
	"regexp"
	"strings"
)

// Root is the first segment of every path ofmkeys writes.
const Root = "ofmkeys"

// segmentRE is what one path segment may be: base64url and hex kids, UUIDs,
// dc_ids, purposes, sequence numbers. Nothing that could climb out of a
// folder, hide a NUL or change meaning in a Vault path or file name.
var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$`)

// CheckSegment reports whether s is safe as one path segment.
// Untrusted values (a kid from a JWS header, a purpose from a flag) go
// through here before they are near a store.
func CheckSegment(what, s string) error {
	if !segmentRE.MatchString(s) || strings.Contains(s, "..") {
		return fmt.Errorf("%w: %s %q: want 1-128 letters, digits, '_', '-' or '.' (not starting with '.')", ErrInvalidPath, what, s)
	}
	return nil
}

// CheckPath reports whether p is a path this package could have built:
// segments separated by single slashes, each passing CheckSegment.
// Backends call it on every operation, so a path built by hand cannot
// reach the filesystem or Vault.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty path", ErrInvalidPath)
	}
	for _, seg := range strings.Split(p, "/") {
		if err := CheckSegment("path segment", seg); err != nil {
			return fmt.Errorf("%w (in path %q)", err, p)
		}
	}
	return nil
}

// Path joins segments under Root after checking each one. It is the one
// function that builds every path ofmkeys uses.
func Path(segments ...string) (string, error) {
	for _, s := range segments {
		if err := CheckSegment("path segment", s); err != nil {
			return "", err
		}
	}
	return Root + "/" + strings.Join(segments, "/"), nil
}

// StatePath is where a DC's keyset document lives.
func StatePath(dcID string) (string, error) { return Path(dcID, "state") }

// KeyPath is where one key version (private key and chain) lives,
// written once and never changed.
func KeyPath(dcID, purpose, kid string) (string, error) { return Path(dcID, "keys", purpose, kid) }

// PendingPath is where a key waiting for its CA-issued certificate lives,
// named by its RFC 7638 thumbprint.
func PendingPath(dcID, purpose, id string) (string, error) {
	return Path(dcID, "pending", purpose, id)
}

// LeasePath is where the rotation lease of a DC lives.
func LeasePath(dcID string) (string, error) { return Path(dcID, "lease") }

// AuditPath is where audit event seq of a DC lives.
func AuditPath(dcID string, seq int64) (string, error) {
	return Path(dcID, "audit", fmt.Sprintf("%012d", seq))
}
