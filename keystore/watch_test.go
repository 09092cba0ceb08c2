package keystore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keystore"
)

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no change signal after %s", what)
	}
}

// drain empties a coalesced signal left by earlier events.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestWatchSignalsWritesRenamesAndRecreatedFolders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "store")
	s, _ := keystore.OpenFileStore(dir, nil)
	p, _ := keystore.StatePath("dc")

	// Watching a store that does not exist yet.
	ch, err := s.Watch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, p, []byte(`1`), 0); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "the first write created the store")
	drain(ch)

	// A write by another process (here: another FileStore on the folder).
	other, _ := keystore.OpenFileStore(dir, nil)
	if _, err := other.Put(ctx, p, []byte(`2`), 1); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another writer's atomic rename")
	drain(ch)

	// The folder removed and made again (a restore from backup).
	folder := filepath.Join(dir, "data", "ofmkeys", "dc")
	if err := os.RemoveAll(folder); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "the folder was removed")
	drain(ch)
	if _, err := s.Put(ctx, p, []byte(`3`), 0); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "the folder came back")

	cancel()
	for range ch {
	}
}
