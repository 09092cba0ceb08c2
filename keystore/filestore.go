package keystore

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"
)

// FileStore is the embedded default Store: a folder (0700) of sealed files
// (0600), one per document, under <dir>/data. Writes are atomic and
// serialised across processes by an flock(2) on <dir>/.lock, so two
// processes doing compare-and-set on one folder never both win. Reads take
// no lock: a rename swaps a whole file.
type FileStore struct {
	dir        string
	passphrase []byte

	mu   sync.Mutex
	aead cipher.AEAD // nil until the store exists
}

var _ Store = (*FileStore)(nil)

// recordSuffix lets a document and a folder share a name ("a" and "a/b").
const recordSuffix = ".rec"

// A record on disk is a header line, "ofmkeys-record/1 VERSION\n", then the
// sealed document (nonce, ciphertext, tag) as raw bytes: the version can be
// read without reading or decoding the rest.
const recordMagic = "ofmkeys-record/1 "

func encodeRecord(version int64, sealed []byte) []byte {
	head := recordMagic + strconv.FormatInt(version, 10) + "\n"
	return append([]byte(head), sealed...)
}

// decodeRecord splits a record; ok is false for anything malformed.
func decodeRecord(raw []byte) (version int64, sealed []byte, ok bool) {
	if !bytes.HasPrefix(raw, []byte(recordMagic)) {
		return 0, nil, false
	}
	rest := raw[len(recordMagic):]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 1 || nl > 19 {
		return 0, nil, false
	}
	v, err := strconv.ParseInt(string(rest[:nl]), 10, 64)
	if err != nil || v < 1 {
		return 0, nil, false
	}
	return v, rest[nl+1:], true
}

// OpenFileStore opens the file store in dir. A store that does not exist
// yet is created by the first write, not here, so a failed command leaves
// nothing behind: sealed with passphrase when one is given (scrypt),
// otherwise with a random data key in dir/data.key. An existing store is
// opened the way it was created; a wrong passphrase gives
// ErrPassphrase.
func OpenFileStore(dir string, passphrase []byte) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("file store: empty folder name")
	}
	s := &FileStore{dir: dir, passphrase: passphrase}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file store %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("file store %s is open to other users (mode %v): chmod 700 it", dir, fi.Mode().Perm())
	}
	if _, err := s.sealer(false); err != nil {
		return nil, err
	}
	return s, nil
}

// sealer returns the store's AEAD, loading the data key if the store
// exists, creating the store first when create is set. It returns nil, nil
// for a store that does not exist and need not be created.
func (s *FileStore) sealer(create bool) (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aead != nil {
		return s.aead, nil
	}
	if _, err := os.Stat(filepath.Join(s.dir, metaFile)); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	err := withLock(s.dir, func() error {
		var err error
		s.aead, err = openDataKey(s.dir, s.passphrase)
		return err
	})
	return s.aead, err
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
	aead, err := s.sealer(false)
	if err != nil {
		return nil, 0, err
	}
	if aead == nil {
		return nil, 0, fmt.Errorf("%w: file store %s: %s holds data but the store has no %s", ErrCorrupt, s.dir, p, metaFile)
	}
	version, sealed, ok := decodeRecord(raw)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s (file %s is truncated or not a store record; restore it from a backup)", ErrCorrupt, p, s.file(p))
	}
	data, err := open(aead, sealed, aad(p, version))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s (file %s fails authentication: truncated, tampered, moved or sealed under another key)", ErrCorrupt, p, s.file(p))
	}
	return data, version, nil
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
	aead, err := s.sealer(true)
	if err != nil {
		return 0, err
	}
	var next int64
	err = withLock(s.dir, func() error {
		_, cur, err := s.read(p)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if cur != version {
			return fmt.Errorf("%s: %w: expected version %d, found %d", p, ErrConflict, version, cur)
		}
		next = cur + 1
		return writeFileAtomic(s.file(p), encodeRecord(next, seal(aead, data, aad(p, next))))
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
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
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
