package rotation_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// crashPolicy is the policy of the crash tests: 60-day certificates.
var crashPolicy = rotation.Policy{RenewBefore: 30 * 24 * time.Hour, Validity: 60 * 24 * time.Hour, AllowShortValidity: true}

// TestMain runs the crash tests' child when asked to (see crashChild).
func TestMain(m *testing.M) {
	if os.Getenv("OFMKEYS_CRASH_STORE") != "" {
		crashChild()
	}
	os.Exit(m.Run())
}

// crashChild is the child process of TestCrashBetweenEveryPairOfWrites: it
// runs one reconcile pass and dies (exit 137, no cleanup) at the N-th
// failpoint it reaches.
func crashChild() {
	dir := os.Getenv("OFMKEYS_CRASH_STORE")
	at, _ := time.Parse(time.RFC3339, os.Getenv("OFMKEYS_CRASH_AT"))
	n, _ := strconv.Atoi(os.Getenv("OFMKEYS_CRASH_AFTER"))
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hits := 0
	e := &rotation.Engine{Store: s, DCID: settings.DCID, Policy: crashPolicy, Clock: &fakeClock{t: at}, Actor: "child", Log: quiet,
		Failpoint: func(name string) {
			if hits++; hits == n {
				os.Exit(137)
			}
		}}
	if _, err := e.Reconcile(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// copyStore copies a file store folder with the store's own modes.
func copyStore(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCrashBetweenEveryPairOfWrites(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	s, err := keystore.OpenFileStore(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(30*24*time.Hour + time.Minute) // every purpose is due
	phases := []time.Time{due, due.Add(31 * time.Minute), due.Add(31*time.Minute + 61*time.Minute), due.Add(31*time.Minute + 7*24*time.Hour + time.Minute)}

	crashes := 0
	for i, at := range phases {
		for n := 1; ; n++ {
			// A copy of the store as it was when the phase began.
			dir := filepath.Join(t.TempDir(), fmt.Sprintf("phase%d-crash%d", i, n))
			copyStore(t, base, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "OFMKEYS_CRASH_STORE="+dir, "OFMKEYS_CRASH_AT="+at.Format(time.RFC3339), "OFMKEYS_CRASH_AFTER="+strconv.Itoa(n))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err == nil {
				break // the pass finished before the n-th failpoint: every point of this phase is covered
			}
			if !errors.As(err, &exit) || exit.ExitCode() != 137 {
				t.Fatalf("phase %d, crash %d: the child failed otherwise: %v\n%s", i, n, err, out)
			}
			crashes++
			recoverAndFinish(t, dir, phases[i:], fmt.Sprintf("phase %d, crash at failpoint %d", i, n))
		}
		// Advance the base copy through this phase without crashing.
		e := &rotation.Engine{Store: s, DCID: settings.DCID, Policy: crashPolicy, Clock: &fakeClock{t: at}, Actor: "base", Log: quiet}
		if _, err := e.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if crashes < 15 {
		t.Fatalf("only %d crash points were exercised", crashes)
	}
	t.Logf("%d crash points, each recovered", crashes)
}

// recoverAndFinish restarts an engine on a crashed store, runs the rest of
// the rotation, and checks that it ends as an uninterrupted one would.
func recoverAndFinish(t *testing.T, dir string, phases []time.Time, what string) {
	t.Helper()
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := keyset.Load(ctx, s, settings.DCID)
	if err != nil {
		t.Fatalf("%s: the keyset does not load after the crash: %v", what, err)
	}
	if err := rotation.CheckInvariants(before, crashPolicy); err != nil {
		t.Fatalf("%s: right after the crash: %v", what, err)
	}
	published := map[string]bool{}
	for _, v := range before.Versions {
		if v.Since(keyset.Published) != (time.Time{}) || v.Since(keyset.Active) != (time.Time{}) {
			published[v.Kid] = true
		}
	}
	for _, at := range phases {
		e := &rotation.Engine{Store: s, DCID: settings.DCID, Policy: crashPolicy, Clock: &fakeClock{t: at}, Actor: "child", Log: quiet} // the same replica, restarted
		if _, err := e.Reconcile(ctx); err != nil {
			t.Fatalf("%s: reconcile after restart at %s: %v", what, at, err)
		}
		ks, _, _ := keyset.Load(ctx, s, settings.DCID)
		if err := rotation.CheckInvariants(ks, crashPolicy); err != nil {
			t.Fatalf("%s: at %s: %v", what, at, err)
		}
	}
	ks, _, _ := keyset.Load(ctx, s, settings.DCID)
	for _, p := range pki.Purposes {
		if n := countVersions(ks, p); n != 2 {
			t.Fatalf("%s: %d %s versions after the rotation, want 2 (the old and exactly one new)", what, n, p)
		}
		prefix, _ := keystore.Path(settings.DCID, "keys", string(p))
		if names, _ := s.List(ctx, prefix); len(names) != 2 {
			t.Fatalf("%s: %d %s key records, want 2 (an orphan was left or a key lost)", what, len(names), p)
		}
	}
	if ks.Active(pki.Signing).Since(keyset.Published).IsZero() {
		t.Fatalf("%s: the new signing key was never published before use", what)
	}
	for kid := range published {
		if len(ks.Find(kid)) == 0 {
			t.Fatalf("%s: published key %s was lost", what, kid)
		}
	}
}
