// Package keystoretest is the contract every keystore.Store backend must
// pass. A backend's tests call Run with a function that returns a fresh,
// empty store; the suite writes only under keystore paths it builds.
package keystoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ofmkeys/ofmkeys/keystore"
)

// Run runs the contract suite. newStore is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) keystore.Store) {
	t.Helper()
	ctx := context.Background()
	p := func(t *testing.T, segs ...string) string {
		t.Helper()
		s, err := keystore.Path(segs...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("a missing document is ErrNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, _, err := s.Get(ctx, p(t, "dc", "state")); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get = %v, want ErrNotFound", err)
		}
	})

	t.Run("create, read back, update with the read version", func(t *testing.T) {
		s := newStore(t)
		path := p(t, "dc", "state")
		v, err := s.Put(ctx, path, []byte(`{"n":1}`), 0)
		if err != nil || v != 1 {
			t.Fatalf("create = %d, %v; want 1", v, err)
		}
		data, v, err := s.Get(ctx, path)
		if err != nil || v != 1 || string(data) != `{"n":1}` {
			t.Fatalf("Get = %q, %d, %v", data, v, err)
		}
		v, err = s.Put(ctx, path, []byte(`{"n":2}`), 1)
		if err != nil || v != 2 {
			t.Fatalf("update = %d, %v; want 2", v, err)
		}
		data, v, _ = s.Get(ctx, path)
		if string(data) != `{"n":2}` || v != 2 {
			t.Fatalf("after update Get = %q, %d", data, v)
		}
	})

	t.Run("compare-and-set refuses a stale or wrong version and writes nothing", func(t *testing.T) {
		s := newStore(t)
		path := p(t, "dc", "state")
		if _, err := s.Put(ctx, path, []byte(`"a"`), 0); err != nil {
			t.Fatal(err)
		}
		for _, v := range []int64{0, 2, 7} {
			if _, err := s.Put(ctx, path, []byte(`"b"`), v); !errors.Is(err, keystore.ErrConflict) {
				t.Errorf("Put with version %d = %v, want ErrConflict", v, err)
			}
		}
		if _, err := s.Put(ctx, p(t, "dc", "other"), []byte(`"x"`), 3); !errors.Is(err, keystore.ErrConflict) {
			t.Errorf("Put of an absent document with version 3 = %v, want ErrConflict", err)
		}
		if data, v, _ := s.Get(ctx, path); string(data) != `"a"` || v != 1 {
			t.Errorf("document changed by refused writes: %q v%d", data, v)
		}
	})

	t.Run("list shows documents and folders directly under a prefix", func(t *testing.T) {
		s := newStore(t)
		for _, path := range []string{p(t, "dc", "state"), p(t, "dc", "keys", "signing", "k1"), p(t, "dc", "keys", "signing", "k2"), p(t, "dc", "keys", "encryption", "k3")} {
			if _, err := s.Put(ctx, path, []byte(`{}`), 0); err != nil {
				t.Fatal(err)
			}
		}
		for prefix, want := range map[string][]string{
			p(t, "dc"):                    {"keys/", "state"},
			p(t, "dc", "keys"):            {"encryption/", "signing/"},
			p(t, "dc", "keys", "signing"): {"k1", "k2"},
			p(t, "nobody"):                nil,
		} {
			got, err := s.List(ctx, prefix)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("List(%s) = %v, %v; want %v", prefix, got, err, want)
			}
		}
	})

	t.Run("delete removes every version and is idempotent", func(t *testing.T) {
		s := newStore(t)
		path := p(t, "dc", "keys", "signing", "k1")
		if _, err := s.Put(ctx, path, []byte(`1`), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, path, []byte(`2`), 1); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, path); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, path); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Get after Delete = %v", err)
		}
		if err := s.Delete(ctx, path); err != nil {
			t.Fatalf("second Delete = %v", err)
		}
		if v, err := s.Put(ctx, path, []byte(`3`), 0); err != nil || v != 1 {
			t.Fatalf("create after Delete = %d, %v; want version 1", v, err)
		}
	})

	t.Run("Version, where implemented, agrees with Get", func(t *testing.T) {
		s := newStore(t)
		vs, ok := s.(keystore.Versioner)
		if !ok {
			t.Skip("the backend does not implement keystore.Versioner")
		}
		path := p(t, "dc", "state")
		if _, err := vs.Version(ctx, path); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("Version of a missing document = %v", err)
		}
		for want := int64(1); want <= 3; want++ {
			if _, err := s.Put(ctx, path, []byte(`{}`), want-1); err != nil {
				t.Fatal(err)
			}
			if v, err := vs.Version(ctx, path); err != nil || v != want {
				t.Fatalf("Version = %d, %v; want %d", v, err, want)
			}
		}
		if _, err := vs.Version(ctx, "ofmkeys/../x"); !errors.Is(err, keystore.ErrInvalidPath) {
			t.Fatalf("Version of a hostile path = %v", err)
		}
	})

	t.Run("hostile paths are refused before any I/O", func(t *testing.T) {
		s := newStore(t)
		for _, bad := range []string{"", "/ofmkeys/dc", "ofmkeys//dc", "ofmkeys/../etc/passwd", "ofmkeys/dc/..", "ofmkeys/dc/k\x00id",
			"ofmkeys/dc/keys/signing/../../x", "ofmkeys/dc/ke ys", "ofmkeys/dc/" + strings.Repeat("a", 200), "ofmkeys\\dc"} {
			if _, _, err := s.Get(ctx, bad); !errors.Is(err, keystore.ErrInvalidPath) {
				t.Errorf("Get(%q) = %v, want ErrInvalidPath", bad, err)
			}
			if _, err := s.Put(ctx, bad, []byte(`{}`), 0); !errors.Is(err, keystore.ErrInvalidPath) {
				t.Errorf("Put(%q) = %v, want ErrInvalidPath", bad, err)
			}
			if err := s.Delete(ctx, bad); !errors.Is(err, keystore.ErrInvalidPath) {
				t.Errorf("Delete(%q) = %v, want ErrInvalidPath", bad, err)
			}
		}
		if names, _ := s.List(ctx, keystore.Root); len(names) != 0 {
			t.Errorf("hostile writes left %v", names)
		}
	})

	t.Run("a large document round-trips", func(t *testing.T) {
		s := newStore(t)
		big := `"` + strings.Repeat("0123456789abcdef", 1<<14) + `"`
		if _, err := s.Put(ctx, p(t, "dc", "big"), []byte(big), 0); err != nil {
			t.Fatal(err)
		}
		if data, _, err := s.Get(ctx, p(t, "dc", "big")); err != nil || string(data) != big {
			t.Fatalf("256 KiB document did not round-trip: %v", err)
		}
	})

	t.Run("a cancelled context stops an operation", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Put(cctx, p(t, "dc", "state"), []byte(`{}`), 0); err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		if _, _, err := s.Get(ctx, p(t, "dc", "state")); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("a cancelled Put wrote: %v", err)
		}
	})

	t.Run("concurrent compare-and-set increments lose no update", func(t *testing.T) {
		s := newStore(t)
		path := p(t, "dc", "counter")
		if _, err := s.Put(ctx, path, []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		const workers, each = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := Increment(ctx, s, path, each); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		data, v, _ := s.Get(ctx, path)
		if want := fmt.Sprint(workers * each); string(data) != want || v != workers*each+1 {
			t.Fatalf("counter = %s at version %d, want %s at %d", data, v, want, workers*each+1)
		}
	})
}

// Increment adds n to the integer document at path, one compare-and-set
// write at a time, retrying on ErrConflict: the read-modify-write loop every
// ofmkeys writer follows. Tests use it to show that no update is lost.
func Increment(ctx context.Context, s keystore.Store, path string, n int) error {
	for done := 0; done < n; {
		data, v, err := s.Get(ctx, path)
		if err != nil {
			return err
		}
		var cur int
		if _, err := fmt.Sscan(string(data), &cur); err != nil {
			return fmt.Errorf("counter %q: %w", data, err)
		}
		_, err = s.Put(ctx, path, []byte(fmt.Sprint(cur+1)), v)
		switch {
		case err == nil:
			done++
		case errors.Is(err, keystore.ErrConflict):
		default:
			return err
		}
	}
	return nil
}
