package keystore

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// FileStore is the embedded default Store: a folder (0700) of sealed files
// (0600), one per document, under <dir>/data. Writes are atomic and
// serialised across processes by an flock(2) on <dir>/.lock, so two
// processes doing compare-and-set on one folder never both win. Reads take
// no lock: a rename swaps a whole file.
type FileStore struct {
	dir  string
	aead cipher.AEAD
}

var _ Store = (*FileStore)(nil)

// recordSuffix lets a document and a folder share a name ("a" and "a/b").
const recordSuffix = ".rec"

// fileRecord is one document on disk.
type fileRecord struct {
	Version int64  `json:"version"`
	Sealed  []byte `json:"sealed"`
}

// OpenFileStore opens the file store in dir, creating it if needed. A new
// store is sealed with passphrase when one is given (scrypt), otherwise with
// a random data key in dir/data.key. An existing store is opened the way it
// was created; a wrong passphrase gives ErrWrongPassphrase.
func OpenFileStore(dir string, passphrase []byte) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("file store: empty folder name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("file store %s is open to other users (mode %v): chmod 700 it", dir, fi.Mode().Perm())
	}
	var aead cipher.AEAD
	err = withLock(dir, func() error {
		aead, err = openDataKey(dir, passphrase)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &FileStore{dir: dir, aead: aead}, nil
}

// Dir is the store's folder.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) file(p string) string {
	return filepath.Join(s.dir, "data", filepath.FromSlash(p)+recordSuffix)
}

func aad(p string, version int64) []byte {
	return []byte("ofmkeys/file-store/v1\x00" + p + "\x00" + strconv.FormatInt(version, 10))
}

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, p string) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := CheckPath(p); err != nil {
		return nil, 0, err
	}
	return s.read(p)
}

func (s *FileStore) read(p string) ([]byte, int64, error) {
	raw, err := os.ReadFile(s.file(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("file store: %s: %w", p, err)
	}
	var rec fileRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Version < 1 {
		return nil, 0, fmt.Errorf("%w: %s (file %s is truncated or not a store record; restore it from a backup)", ErrCorrupt, p, s.file(p))
	}
	data, err := open(s.aead, rec.Sealed, aad(p, rec.Version))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s (file %s fails authentication: tampered, moved or sealed under another key)", ErrCorrupt, p, s.file(p))
	}
	return data, rec.Version, nil
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, p string, data []byte, version int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := CheckPath(p); err != nil {
		return 0, err
	}
	if !utf8.Valid(data) {
		return 0, fmt.Errorf("file store: %s: document is not valid UTF-8", p)
	}
	var next int64
	err := withLock(s.dir, func() error {
		_, cur, err := s.read(p)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if cur != version {
			return fmt.Errorf("%s: %w: expected version %d, found %d", p, ErrConflict, version, cur)
		}
		next = cur + 1
		raw, _ := json.Marshal(fileRecord{Version: next, Sealed: seal(s.aead, data, aad(p, next))})
		return writeFileAtomic(s.file(p), raw)
	})
	if err != nil {
		return 0, err
	}
	return next, nil
}

// List implements Store.
func (s *FileStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if err := CheckPath(prefix); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, "data", filepath.FromSlash(prefix)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file store: list %s: %w", prefix, err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
			// temp files of writes in progress
		case e.IsDir():
			names = append(names, name+"/")
		case strings.HasSuffix(name, recordSuffix):
			names = append(names, strings.TrimSuffix(name, recordSuffix))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckPath(p); err != nil {
		return err
	}
	return withLock(s.dir, func() error {
		err := os.Remove(s.file(p))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("file store: delete %s: %w", p, err)
		}
		return syncDir(filepath.Dir(s.file(p)))
	})
}

// withLock runs fn holding the store's exclusive flock(2). Each call opens
// its own descriptor, so the lock also serialises goroutines of one process.
func withLock(dir string, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("file store: lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("file store: lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
