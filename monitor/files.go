package monitor

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxCertFile bounds a watched file: certificate bundles are small.
const maxCertFile = 1 << 20

// FileProblem is a watched file that gave no certificate, and why.
type FileProblem struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Files keeps the certificates of watched files and folders (a folder's
// regular files, not its subfolders) up to date. Folders are watched with
// fsnotify, so atomic renames (editors, consul-template) and Kubernetes'
// ..data symlink swaps are seen; a folder that is deleted and made again is
// watched again. Files named *.key and the key blocks of any file are never
// parsed. Safe for concurrent use.
type Files struct {
	// Paths are files or folders.
	Paths []string
	// OnChange, when set, is told after a rescan changed something.
	OnChange func()

	mu       sync.Mutex
	certs    map[string][]Cert // by file
	problems map[string]string // by file or folder
	errors   int64             // unreadable files seen, in total
}

// Certs returns every certificate found, by file order.
func (f *Files) Certs() []Cert {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Cert
	for _, p := range slices.Sorted(maps.Keys(f.certs)) {
		out = append(out, f.certs[p]...)
	}
	return out
}

// Problems returns the files and folders that gave no certificate.
func (f *Files) Problems() []FileProblem {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FileProblem
	for _, p := range slices.Sorted(maps.Keys(f.problems)) {
		out = append(out, FileProblem{p, f.problems[p]})
	}
	return out
}

// Errors is how many times a watched file could not be read or parsed.
func (f *Files) Errors() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errors
}

// Scan reads every watched path now.
func (f *Files) Scan() {
	for _, p := range f.Paths {
		f.scanPath(filepath.Clean(p))
	}
}

// scanPath reads a watched path: a folder's files in parallel, or a file.
func (f *Files) scanPath(p string) {
	info, err := os.Stat(p)
	if err != nil {
		f.forget(p)
		f.setProblem(p, fmt.Errorf("%s: %w", p, err))
		return
	}
	if !info.IsDir() {
		f.scanFile(p)
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		f.forget(p)
		f.setProblem(p, err)
		return
	}
	f.clearProblem(p)
	var files []string
	for _, e := range entries {
		if skipName(e.Name()) || e.IsDir() {
			continue
		}
		files = append(files, filepath.Join(p, e.Name()))
	}
	// Files that went away are forgotten.
	f.mu.Lock()
	for name := range f.certs {
		if filepath.Dir(name) == p && !slices.Contains(files, name) {
			delete(f.certs, name)
		}
	}
	for name := range f.problems {
		if filepath.Dir(name) == p && !slices.Contains(files, name) {
			delete(f.problems, name)
		}
	}
	f.mu.Unlock()
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(files), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				f.scanFile(name)
			}
		}()
	}
	for _, name := range files {
		work <- name
	}
	close(work)
	wg.Wait()
}

// skipName: hidden entries (Kubernetes' ..data and ..TIMESTAMP folders
// among them: the visible names are symlinks into them) and key files.
func skipName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".key")
}

// scanFile reads one file's certificates (following symlinks). A file
// that does not read keeps what it last gave (a half-written file is
// normal mid-update; its certificates are still the ones to watch) and is
// reported until it reads again.
func (f *Files) scanFile(p string) {
	certs, err := ReadCertFile(p)
	if err != nil {
		f.mu.Lock()
		f.errors++
		f.mu.Unlock()
		f.setProblem(p, err)
		return
	}
	f.clearProblem(p)
	f.mu.Lock()
	if f.certs == nil {
		f.certs = map[string][]Cert{}
	}
	f.certs[p] = certs
	f.mu.Unlock()
}

// ReadCertFile returns the certificates of a PEM file. Key blocks are
// skipped unparsed (and the bytes cleared), other blocks ignored; a file
// without any certificate is an error, like one that is not PEM.
func ReadCertFile(p string) ([]Cert, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	raw, err := io.ReadAll(io.LimitReader(fh, maxCertFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer clear(raw) // a bundle may hold a key: leave no copy behind
	if len(raw) > maxCertFile {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a certificate file", p, maxCertFile)
	}
	var out []Cert
	rest := raw
	keys := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: certificate %d does not parse: %v", p, len(out)+1, err)
			}
			out = append(out, certOf(c, SourceFile, p))
		case strings.Contains(block.Type, "PRIVATE KEY"):
			keys++
			clear(block.Bytes)
		}
	}
	if len(out) == 0 {
		switch {
		case keys > 0:
			return nil, fmt.Errorf("%s: holds a private key and no certificate (keys are never read: name key files *.key)", p)
		case !bytes.Contains(raw, []byte("-----BEGIN")):
			return nil, fmt.Errorf("%s: not a PEM file", p)
		}
		return nil, fmt.Errorf("%s: no CERTIFICATE block", p)
	}
	return out, nil
}

func (f *Files) setProblem(p string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.problems == nil {
		f.problems = map[string]string{}
	}
	f.problems[p] = err.Error()
}

func (f *Files) clearProblem(p string) {
	f.mu.Lock()
	delete(f.problems, p)
	f.mu.Unlock()
}

// forget drops what a path (a file, or a folder's files) gave.
func (f *Files) forget(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.certs {
		if name == p || filepath.Dir(name) == p {
			delete(f.certs, name)
		}
	}
	for name := range f.problems {
		if filepath.Dir(name) == p {
			delete(f.problems, name)
		}
	}
}

// settle is how long events are gathered before a rescan: an atomic
// replace or a symlink swap is several events.
const settle = 100 * time.Millisecond

// Watch scans, then rescans what changes until ctx ends. It watches each
// watched folder (a watched file's folder) and the folder above it, so a
// folder that is removed and made again is found again.
func (f *Files) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// watched folder → the watched path it stands for
	dirs := map[string][]string{}
	for _, p := range f.Paths {
		p = filepath.Clean(p)
		dir := p
		if info, err := os.Stat(p); err != nil || !info.IsDir() {
			dir = filepath.Dir(p)
		}
		dirs[dir] = append(dirs[dir], p)
		dirs[filepath.Dir(dir)] = dirs[filepath.Dir(dir)] // the parent, to see the folder come back
	}
	for d := range dirs {
		w.Add(d) // a missing folder is added when it appears
	}
	f.Scan()
	f.changed()
	dirty := map[string]bool{}      // watched paths to rescan
	dirtyFiles := map[string]bool{} // single files of watched folders
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("the file watcher stopped")
			}
			// Which watched paths can this event touch?
			base := filepath.Base(ev.Name)
			for d, paths := range dirs {
				if filepath.Dir(ev.Name) != d && ev.Name != d {
					continue
				}
				for _, p := range paths {
					switch {
					case ev.Name == p, strings.HasPrefix(base, ".."):
						dirty[p] = true // the path itself, or a Kubernetes ..data swap
					case p == d && !skipName(base):
						dirtyFiles[ev.Name] = true // one file of a watched folder
					}
				}
				// A watched folder made (again): watch it (again). A watched
				// path missing at start may turn up as a folder.
				if ev.Has(fsnotify.Create) && (dirs[ev.Name] != nil || slices.Contains(paths, ev.Name)) {
					if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
						w.Add(ev.Name)
						if dirs[ev.Name] == nil {
							dirs[ev.Name] = []string{ev.Name}
						}
						for _, p := range dirs[ev.Name] {
							dirty[p] = true
						}
					}
				}
				if _, watched := dirs[ev.Name]; watched && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
					for _, p := range dirs[ev.Name] {
						dirty[p] = true
					}
				}
			}
			if len(dirty) > 0 || len(dirtyFiles) > 0 {
				timer.Reset(settle)
			}
		case <-w.Errors:
			// An overflow: rescan everything.
			for _, p := range f.Paths {
				dirty[filepath.Clean(p)] = true
			}
			timer.Reset(settle)
		case <-timer.C:
			for p := range dirty {
				f.scanPath(p)
			}
			for name := range dirtyFiles {
				if !dirty[filepath.Dir(name)] {
					f.scanEntry(name)
				}
			}
			clear(dirty)
			clear(dirtyFiles)
			f.changed()
		}
	}
}

// scanEntry rescans one file of a watched folder; a file that is gone is
// forgotten (it is no problem: it was removed or renamed away).
func (f *Files) scanEntry(name string) {
	if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
		f.mu.Lock()
		delete(f.certs, name)
		delete(f.problems, name)
		f.mu.Unlock()
		return
	}
	f.scanFile(name)
}

func (f *Files) changed() {
	if f.OnChange != nil {
		f.OnChange()
	}
}
