package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Sinks keep files in step with the keyset, for programs that read
// certificates from disk (what Vault Agent templates and
// `step ca renew --exec` do for their users). After every change they are
// rewritten atomically, then Command runs and Signal goes to the PID in
// PIDFile. Nothing is written when no field is set.
type Sinks struct {
	// Dir receives, per purpose of Purposes, PURPOSE.crt, PURPOSE-chain.pem
	// and PURPOSE.key (0600) of the active version.
	Dir string
	// Purposes whose active key and certificate go to Dir; empty means
	// transport only.
	Purposes []pki.Purpose
	// JWKSFile receives the served JWKS (for a CDN or object store).
	JWKSFile string
	// Command is run with sh -c after the files changed (OFMKEYS_SINK_DIR
	// and OFMKEYS_JWKS_ETAG in its environment); it has 60 s.
	Command string
	// PIDFile names a process to signal after the files changed.
	PIDFile string
	// Signal is what it gets; zero means SIGHUP.
	Signal syscall.Signal
}

func (k *Sinks) check() error {
	for _, p := range k.Purposes {
		if _, err := pki.ParsePurpose(string(p)); err != nil {
			return fmt.Errorf("sink purposes: %w", err)
		}
	}
	if (k.Command != "" || k.PIDFile != "") && k.Dir == "" && k.JWKSFile == "" {
		return fmt.Errorf("a sink command or signal needs a sink folder or JWKS file to follow")
	}
	return nil
}

func (k *Sinks) enabled() bool { return k.Dir != "" || k.JWKSFile != "" }

// sinkRetry throttles retries after a failed sink update.
const sinkRetry = 30 * time.Second

// runSinks writes the sinks when what they hold would change.
func (s *Server) runSinks(ctx context.Context, ks *keyset.Keyset, snap *jwks.Snapshot) {
	cfg := s.config().Sinks
	if !cfg.enabled() {
		return
	}
	s.sinkLock.Lock()
	defer s.sinkLock.Unlock()
	key := cfg.Dir + "|" + cfg.JWKSFile + "|" + snap.ETag
	for _, p := range cfg.Purposes {
		if v := ks.Active(p); v != nil {
			key += "|" + v.Kid
		}
	}
	s.st.mu.Lock()
	same, throttled := s.st.sinkKey == key, !s.st.sinkFailure.IsZero() && s.clock.Now().Sub(s.st.sinkFailure) < sinkRetry
	s.st.mu.Unlock()
	if same || throttled {
		return
	}
	err := s.writeSinks(ctx, cfg, ks, snap)
	s.st.mu.Lock()
	if err != nil {
		s.st.sinkFailure = s.clock.Now()
	} else {
		s.st.sinkKey, s.st.sinkFailure = key, time.Time{}
	}
	s.st.mu.Unlock()
	if err != nil {
		s.metrics.sinkRuns.WithLabelValues("failed").Inc()
		s.log.Error("file sinks not updated; retrying after the next change or in 30 s", "err", err)
	} else {
		s.metrics.sinkRuns.WithLabelValues("ok").Inc()
		s.log.Info("file sinks updated", "dir", cfg.Dir, "jwks_file", cfg.JWKSFile)
	}
	s.observe(Event{Kind: EventSink, ETag: snap.ETag, Err: err})
}

func (s *Server) writeSinks(ctx context.Context, cfg Sinks, ks *keyset.Keyset, snap *jwks.Snapshot) error {
	if cfg.Dir != "" {
		for _, p := range cfg.Purposes {
			if _, err := keyset.WriteFiles(ctx, s.store, ks, p, cfg.Dir, true); err != nil {
				return fmt.Errorf("sink %s: %w", cfg.Dir, err)
			}
		}
	}
	if cfg.JWKSFile != "" {
		if err := keystore.WriteFileAtomic(cfg.JWKSFile, snap.Body); err != nil {
			return fmt.Errorf("sink %s: %w", cfg.JWKSFile, err)
		}
		// The JWKS is public: readable by the web server that serves it.
		if err := os.Chmod(cfg.JWKSFile, 0o644); err != nil {
			return fmt.Errorf("sink %s: %w", cfg.JWKSFile, err)
		}
	}
	if cfg.Command != "" {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, "sh", "-c", cfg.Command)
		cmd.Env = append(os.Environ(), "OFMKEYS_SINK_DIR="+cfg.Dir, "OFMKEYS_JWKS_ETAG="+snap.ETag)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sink command: %w: %s", err, truncate(strings.TrimSpace(string(out)), 500))
		}
	}
	if cfg.PIDFile != "" {
		raw, err := os.ReadFile(cfg.PIDFile)
		if err != nil {
			return fmt.Errorf("sink PID file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 1 {
			return fmt.Errorf("sink PID file %s does not hold a process id", cfg.PIDFile)
		}
		sig := cfg.Signal
		if sig == 0 {
			sig = syscall.SIGHUP
		}
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("sink signal %v to %d: %w", sig, pid, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
