package daemon

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// state is what the store loop knows; guarded by mu, read by health and
// metrics.
type state struct {
	mu sync.Mutex

	dcID        string
	generation  uint64
	source      string // where the served snapshot came from: "store" or "disk"
	version     int64  // state document version of the served snapshot
	rejected    int64  // state version last rejected, not retried until it moves
	kidPolicy   pki.KidPolicy
	environment keyset.Environment
	servedAt    time.Time // when the current snapshot started being served

	storeOK      bool
	storeErrKind string
	storeSuccess time.Time

	lint lintResult

	sinkKey     string    // what the sinks last wrote successfully
	sinkFailure time.Time // when they last failed (retries are throttled)

	rotation rotationState
	proof    proofState
	// keyset is the last keyset served from the store (the monitor's).
	keyset *keyset.Keyset
}

func (st *state) resetSinks() {
	st.mu.Lock()
	st.sinkKey, st.sinkFailure = "", time.Time{}
	st.mu.Unlock()
}

// errorKind is the class of a store error, for metrics and health (never
// the message: it may name internal hosts and paths).
func errorKind(err error) string {
	switch {
	case errors.Is(err, keystore.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, keystore.ErrPermission):
		return "permission"
	case errors.Is(err, keystore.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, keyset.ErrIntegrity):
		return "integrity"
	case errors.Is(err, keyset.ErrNoKeyset):
		return "no-keyset"
	case errors.Is(err, keystore.ErrPassphrase):
		return "passphrase"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other"
}

// storeLoop keeps the served snapshot in step with the store: at start,
// on every change signal of a watchable store, every poll interval (a cheap
// version read), and on Reload. When the first read fails and nothing is
// served, it serves the persisted snapshot.
func (s *Server) storeLoop(ctx context.Context) {
	s.safely("store", func() { s.refresh(ctx) })
	if s.handler.Current() == nil {
		s.loadPersisted()
	}
	var changes <-chan struct{}
	watch := func() {
		w, ok := s.store.(keystore.Watcher)
		s.st.mu.Lock()
		dc := s.st.dcID
		s.st.mu.Unlock()
		if !ok || changes != nil || dc == "" {
			return
		}
		p, err := keystore.StatePath(dc)
		if err != nil {
			return
		}
		if ch, err := w.Watch(ctx, p); err == nil {
			changes = ch
		} else {
			s.log.Warn("cannot watch the store; polling only", "err", err)
		}
	}
	watch()
	ticker := time.NewTicker(s.config().PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		case <-ticker.C:
		case <-s.reload:
			ticker.Reset(s.config().PollInterval)
		}
		s.safely("store", func() { s.refresh(ctx) })
		watch()
	}
}

// refresh reads the keyset if its version moved and serves a new snapshot
// when it is valid. A keyset that would publish a bad JWKS is rejected: the
// previous snapshot stays, and the error is logged and counted once per
// state version.
func (s *Server) refresh(ctx context.Context) {
	cfg := s.config()
	s.st.mu.Lock()
	dc, served, source, rejected := s.st.dcID, s.st.version, s.st.source, s.st.rejected
	s.st.mu.Unlock()
	if dc == "" {
		var err error
		if dc, err = keyset.ResolveDC(ctx, s.store, cfg.DCID); err != nil {
			s.storeFailed(err)
			return
		}
		s.st.mu.Lock()
		s.st.dcID = dc
		s.st.mu.Unlock()
	}
	if vs, ok := s.store.(keystore.Versioner); ok && source == "store" {
		p, _ := keystore.StatePath(dc)
		v, err := vs.Version(ctx, p)
		if err != nil {
			s.storeFailed(err)
			return
		}
		if v == served || v == rejected {
			s.storeSucceeded()
			return
		}
	}
	ks, version, err := keyset.Load(ctx, s.store, dc)
	if err != nil {
		s.storeFailed(err)
		return
	}
	s.storeSucceeded()
	if (version == served && source == "store") || version == rejected {
		return
	}
	snap, err := jwks.NewSnapshot(ks, version, cfg.JWKS)
	if err != nil {
		s.st.mu.Lock()
		s.st.rejected = version
		s.st.mu.Unlock()
		s.metrics.rejected.Inc()
		s.log.Error("the keyset would publish a bad JWKS; the previous one stays", "dc_id", dc, "state_version", version, "err", err)
		s.observe(Event{Kind: EventRejected, Err: err})
		return
	}
	s.serve(snap, "store", ks)
	if s.ofp != nil {
		s.registerClient(ks)
	}
	if cfg.SnapshotFile != "" {
		if err := snap.Save(cfg.SnapshotFile); err != nil {
			s.log.Error("cannot persist the JWKS snapshot", "file", cfg.SnapshotFile, "err", err)
		}
	}
	s.runSinks(ctx, ks, snap)
}

// serve swaps in a snapshot. The generation moves when the JWKS bytes do.
func (s *Server) serve(snap *jwks.Snapshot, source string, ks *keyset.Keyset) {
	prev := s.handler.Current()
	s.handler.Set(snap)
	s.st.mu.Lock()
	if prev == nil || prev.ETag != snap.ETag {
		s.st.generation++
		s.st.servedAt = s.clock.Now()
	}
	s.st.source, s.st.version = source, snap.StateVersion
	if s.st.dcID == "" {
		s.st.dcID = snap.DCID
	}
	if ks != nil {
		s.st.kidPolicy, s.st.environment = ks.KidPolicy, ks.Environment
		s.st.keyset = ks
	}
	gen := s.st.generation
	s.st.mu.Unlock()
	changed := prev == nil || prev.ETag != snap.ETag
	if changed {
		s.log.Info("serving a new JWKS", "dc_id", snap.DCID, "generation", gen, "etag", snap.ETag, "source", source, "state_version", snap.StateVersion)
	}
	// Observed before the loops it wakes report: a self-check's event
	// never comes before the snapshot it checked.
	s.observe(Event{Kind: EventSnapshot, Generation: gen, ETag: snap.ETag, Source: source})
	if changed {
		poke(s.lintNow)
	}
	poke(s.evalNow)
}

// loadPersisted serves the snapshot saved by an earlier run, when there is
// one and it passes the checks; a damaged file is refused with an error.
func (s *Server) loadPersisted() {
	path := s.config().SnapshotFile
	if path == "" {
		return
	}
	snap, err := jwks.LoadSnapshot(path)
	if errors.Is(err, os.ErrNotExist) {
		s.log.Warn("the store is unreachable and no JWKS snapshot was persisted yet: not ready until the store answers")
		return
	}
	if err != nil {
		s.log.Error("refusing the persisted JWKS snapshot; waiting for the store", "err", err)
		s.metrics.rejected.Inc()
		s.observe(Event{Kind: EventRejected, Err: err})
		return
	}
	if dc := s.config().DCID; dc != "" && dc != snap.DCID {
		s.log.Error("the persisted JWKS snapshot is of another DC; not serving it", "want", dc, "found", snap.DCID)
		return
	}
	s.log.Warn("the store is unreachable: serving the persisted JWKS snapshot", "file", path, "etag", snap.ETag)
	s.serve(snap, "disk", nil)
}

func (s *Server) storeFailed(err error) {
	kind := errorKind(err)
	s.metrics.storeErrors.WithLabelValues(kind).Inc()
	s.st.mu.Lock()
	wasOK := s.st.storeErrKind == "" // log once per outage, not every poll
	s.st.storeOK, s.st.storeErrKind = false, kind
	s.st.mu.Unlock()
	if wasOK {
		s.log.Error("cannot read the store; serving the last good JWKS", "kind", kind, "err", err)
	}
	s.observe(Event{Kind: EventStoreError, Err: err})
}

func (s *Server) storeSucceeded() {
	s.st.mu.Lock()
	recovered := s.st.storeErrKind != ""
	s.st.storeOK, s.st.storeErrKind, s.st.storeSuccess = true, "", s.clock.Now()
	s.st.mu.Unlock()
	if recovered {
		s.log.Info("the store answers again")
		s.observe(Event{Kind: EventStoreOK})
	}
}
