// Package keystore is ofmkeys' one storage boundary: the Store interface,
// the path builder every caller uses, and FileStore, the encrypted local
// backend that is the embedded default. The Vault KV v2 backend lives in
// vaultstore; keystoretest holds the contract suite both pass.
//
// A Store keeps small documents (ofmkeys writes JSON) under slash-separated
// paths, each with a version that makes compare-and-set writes possible.
// Documents are opaque here: what they mean is package keyset's business.
package keystore

import (
	"context"
	"errors"
)

// Sentinel errors. Backends wrap them with the path and the cause; callers
// test with errors.Is.
var (
	// ErrNotFound: no document at the path (or it was deleted).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a compare-and-set write lost: the document's version is
	// not the one the caller read. Reload, re-check, retry if still needed.
	ErrConflict = errors.New("version conflict (another writer changed it)")
	// ErrUnavailable: the backend cannot be reached or is sealed, after the
	// backend's own retries. Nothing was changed that the caller can't
	// detect by reading back; try later.
	ErrUnavailable = errors.New("store unavailable")
	// ErrPermission: the backend refused on policy. Retrying will not help.
	ErrPermission = errors.New("permission denied")
	// ErrInvalidPath: a path that keystore would never build (traversal,
	// NUL, empty segments). Nothing was read or written.
	ErrInvalidPath = errors.New("invalid store path")
	// ErrCorrupt: a stored document cannot be read back intact (truncated,
	// tampered, sealed under another key). It is left as it is.
	ErrCorrupt = errors.New("stored document is corrupt")
)

// Store is a versioned document store with compare-and-set writes.
//
// Paths are built by the functions of this package (KeyPath, StatePath, …)
// and checked again by every backend with CheckPath. Versions start at 1
// and grow by one on every successful Put; 0 means "absent".
// All methods are safe for concurrent use, also from several processes on
// one backend, and honour ctx cancellation.
type Store interface {
	// Get returns the document at path and its version.
	// It returns ErrNotFound when there is none.
	Get(ctx context.Context, path string) (data []byte, version int64, err error)

	// Put writes data at path if the document's current version is
	// version (0: only if absent) and returns the new version. It returns
	// ErrConflict, writing nothing, when the version differs.
	// data must be valid UTF-8 (ofmkeys stores JSON).
	Put(ctx context.Context, path string, data []byte, version int64) (newVersion int64, err error)

	// List returns the names directly under the folder prefix, sorted; a
	// name that is itself a folder ends in "/". An empty or missing folder
	// gives an empty list, not ErrNotFound.
	List(ctx context.Context, prefix string) ([]string, error)

	// Delete removes the document at path with all its versions. Deleting
	// what is absent is not an error.
	Delete(ctx context.Context, path string) error
}

// Watcher is implemented by stores that can tell when a document may have
// changed, so readers need not poll. The channel gets a value (coalesced:
// one pending at most) after any change to the document at path, and is
// closed when ctx ends. A signal may be spurious; readers re-read.
type Watcher interface {
	Watch(ctx context.Context, path string) (<-chan struct{}, error)
}

// Versioner is implemented by stores that can report a document's version
// more cheaply than Get (no payload, no decryption): polling readers call
// it and Get only when the version moved. ErrNotFound when absent.
type Versioner interface {
	Version(ctx context.Context, path string) (int64, error)
}
