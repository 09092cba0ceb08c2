package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

var (
	_ Watcher   = (*FileStore)(nil)
	_ Versioner = (*FileStore)(nil)
)

// Version implements Versioner: it reads the record's version without
// decrypting it.
func (s *FileStore) Version(ctx context.Context, p string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := CheckPath(p); err != nil {
		return 0, err
	}
	f, err := os.Open(s.file(p))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("file store: %s: %w", p, err)
	}
	defer f.Close()
	head := make([]byte, len(recordMagic)+21)
	n, _ := io.ReadFull(f, head)
	version, _, ok := decodeRecord(head[:n])
	if !ok {
		return 0, fmt.Errorf("%w: %s (file %s is truncated or not a store record)", ErrCorrupt, p, s.file(p))
	}
	return version, nil
}

// Watch implements Watcher with fsnotify. It watches the folder that holds
// the document, not the file: writes replace the file by rename, which a
// watch on the file itself would lose. A folder that does not exist yet (a
// store not yet written) or that is removed and made again is watched
// through its nearest existing parent, and the watch moves down as the
// folders appear. As a safety net for events a filesystem does not deliver
// (network filesystems), the channel also ticks every resync interval.
func (s *FileStore) Watch(ctx context.Context, p string) (<-chan struct{}, error) {
	if err := CheckPath(p); err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("file store: watch: %w", err)
	}
	target := s.file(p)
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	watched := ""
	// deepest is the deepest existing folder on the way to the document.
	deepest := func() string {
		dir := filepath.Dir(target)
		for {
			if _, err := os.Stat(dir); err == nil {
				return dir
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return ""
			}
			dir = parent
		}
	}
	// rewatch points the watch at the deepest existing folder. Folders made
	// while the watch moves emit their events before it is there to see
	// them, so it looks again after each move until nothing changed.
	rewatch := func() {
		for range 32 {
			dir := deepest()
			if dir == "" || dir == watched {
				return
			}
			if watched != "" {
				w.Remove(watched)
			}
			if w.Add(dir) != nil {
				return
			}
			watched = dir
		}
	}
	rewatch()
	go func() {
		defer close(ch)
		defer w.Close()
		resync := time.NewTicker(30 * time.Second)
		defer resync.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Name == target || ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					// A folder made or removed on the way: move the watch.
					rewatch()
					notify()
				}
			case <-w.Errors:
				rewatch()
				notify()
			case <-resync.C:
				rewatch()
				notify()
			}
		}
	}()
	return ch, nil
}
