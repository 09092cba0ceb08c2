package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// loadTLS loads the certificate and key files; on failure the previous
// certificate (if any) stays in use.
func (s *Server) loadTLS() error {
	cfg := s.config()
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", cfg.TLSCertFile, cfg.TLSKeyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("TLS certificate %s: %w", cfg.TLSCertFile, err)
	}
	cert.Leaf = leaf
	s.tls.Store(&cert)
	s.log.Info("TLS certificate loaded", "file", cfg.TLSCertFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	s.observe(Event{Kind: EventTLS})
	return nil
}

// tlsLoop reloads the TLS files when they change. It watches their
// folders, so atomic renames and Kubernetes' ..data symlink swaps are seen.
func (s *Server) tlsLoop(ctx context.Context) {
	cfg := s.config()
	if cfg.TLSCertFile == "" {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Error("cannot watch the TLS files; reload them with SIGHUP", "err", err)
		return
	}
	defer w.Close()
	dirs := map[string]bool{filepath.Dir(cfg.TLSCertFile): true, filepath.Dir(cfg.TLSKeyFile): true}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			s.log.Error("cannot watch the TLS folder; reload with SIGHUP", "dir", d, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			s.safely("tls", func() {
				if err := s.loadTLS(); err != nil {
					// A half-written pair is normal mid-update: the next
					// event retries, and the old certificate serves.
					s.log.Warn("TLS files changed but do not load yet; keeping the previous certificate", "err", err)
					s.observe(Event{Kind: EventTLS, Err: err})
				}
			})
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Error("watching the TLS files", "err", err)
		}
	}
}
