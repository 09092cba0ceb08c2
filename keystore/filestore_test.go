package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/keystore/keystoretest"
)

func TestFileStoreContract(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStoreContractWithPassphrase(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keystore.Store {
		s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), []byte("correct horse battery staple"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

var ctx = context.Background()

func TestFileStoreKeepsFilesPrivateAndSealed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := keystore.KeyPath("dc1", "signing", "kid1")
	secret := `{"private_key":"-----BEGIN PRIVATE KEY-----MIIsecret"}`
	if _, err := s.Put(ctx, path, []byte(secret), 0); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		if !d.IsDir() {
			raw, _ := os.ReadFile(p)
			if strings.Contains(string(raw), "PRIVATE KEY") || strings.Contains(string(raw), "MIIsecret") {
				t.Errorf("%s holds the document in clear", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreRefusesCorruptTruncatedOrMovedDocuments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, _ := keystore.OpenFileStore(dir, nil)
	a, _ := keystore.Path("dc", "a")
	b, _ := keystore.Path("dc", "b")
	for _, p := range []string{a, b} {
		if _, err := s.Put(ctx, p, []byte(`"`+p+`"`), 0); err != nil {
			t.Fatal(err)
		}
	}
	fileA := filepath.Join(dir, "data", "ofmkeys", "dc", "a.rec")
	fileB := filepath.Join(dir, "data", "ofmkeys", "dc", "b.rec")
	good, _ := os.ReadFile(fileA)

	for _, tc := range []struct {
		name  string
		mess  func()
		words string
	}{
		{"truncated", func() { os.WriteFile(fileA, good[:len(good)/2], 0o600) }, "fails authentication"},
		{"cut inside the header", func() { os.WriteFile(fileA, good[:10], 0o600) }, "truncated"},
		{"empty", func() { os.WriteFile(fileA, nil, 0o600) }, "truncated"},
		{"a flipped byte", func() {
			bad := append([]byte(nil), good...)
			bad[len(bad)-len(bad)/4] ^= 1 // inside the sealed part
			os.WriteFile(fileA, bad, 0o600)
		}, "fails authentication"},
		{"another document's file moved in", func() {
			other, _ := os.ReadFile(fileB)
			os.WriteFile(fileA, other, 0o600)
		}, "fails authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.mess()
			_, _, err := s.Get(ctx, a)
			if !errors.Is(err, keystore.ErrCorrupt) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Get = %v, want ErrCorrupt mentioning %q", err, tc.words)
			}
			if _, err := s.Put(ctx, a, []byte(`"overwrite"`), 1); !errors.Is(err, keystore.ErrCorrupt) {
				t.Fatalf("Put over a corrupt document = %v, want ErrCorrupt (it must not be overwritten)", err)
			}
			os.WriteFile(fileA, good, 0o600)
		})
	}
}

func TestFileStorePassphrase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := keystore.OpenFileStore(dir, []byte("first passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := keystore.StatePath("dc")
	s.Put(ctx, p, []byte(`{}`), 0)
	if _, err := os.Stat(filepath.Join(dir, "data.key")); !os.IsNotExist(err) {
		t.Errorf("a passphrase store wrote a key file: %v", err)
	}

	_, err = keystore.OpenFileStore(dir, []byte("wrong passphrase"))
	if !errors.Is(err, keystore.ErrPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if strings.Contains(err.Error(), "wrong passphrase\"") || strings.Contains(err.Error(), "first passphrase") {
		t.Fatalf("error quotes a passphrase: %v", err)
	}
	if _, err := keystore.OpenFileStore(dir, nil); !errors.Is(err, keystore.ErrPassphrase) || !strings.Contains(err.Error(), "none was given") {
		t.Fatalf("no passphrase: %v", err)
	}
	s2, err := keystore.OpenFileStore(dir, []byte("first passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	if data, _, err := s2.Get(ctx, p); err != nil || string(data) != `{}` {
		t.Fatalf("reopen: %q %v", data, err)
	}
}

func TestFileStoreRefusesAWorldReadableKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := keystore.StatePath("dc")
	if _, err := s.Put(ctx, p, []byte(`{}`), 0); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "data.key"), 0o644)
	if _, err := keystore.OpenFileStore(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("open with a 0644 key file: %v", err)
	}
}

// TestFileStoreTwoProcesses runs two copies of this test binary that
// increment one counter with compare-and-set at the same time.
func TestFileStoreTwoProcesses(t *testing.T) {
	if dir := os.Getenv("OFMKEYS_TEST_INCREMENT_DIR"); dir != "" {
		s, err := keystore.OpenFileStore(dir, nil)
		if err == nil {
			p, _ := keystore.Path("dc", "counter")
			err = keystoretest.Increment(ctx, s, p, 50)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	dir := filepath.Join(t.TempDir(), "store")
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := keystore.Path("dc", "counter")
	s.Put(ctx, p, []byte("0"), 0)
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreTwoProcesses$")
		cmd.Env = append(os.Environ(), "OFMKEYS_TEST_INCREMENT_DIR="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	data, v, err := s.Get(ctx, p)
	if err != nil || string(data) != "100" || v != 101 {
		t.Fatalf("counter = %s at version %d (%v), want 100 at 101", data, v, err)
	}
}

func TestPathBuildersRefuseHostileSegments(t *testing.T) {
	for _, kid := range []string{"../x", "a/b", "k\x00", "", ".hidden", strings.Repeat("k", 129), "ké"} {
		if _, err := keystore.KeyPath("dc", "signing", kid); !errors.Is(err, keystore.ErrInvalidPath) {
			t.Errorf("KeyPath(kid %q) = %v", kid, err)
		}
	}
	if p, err := keystore.KeyPath("0123456789abcdef01234567", "signing", "P0EX2xiN1GjNNsc_gExSUEeynJBcHa2cy0EdJXNHZbQ"); err != nil || p != "ofmkeys/0123456789abcdef01234567/keys/signing/P0EX2xiN1GjNNsc_gExSUEeynJBcHa2cy0EdJXNHZbQ" {
		t.Errorf("KeyPath = %q, %v", p, err)
	}
}

func TestFileStoreIsCreatedByTheFirstWriteOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := keystore.OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := keystore.StatePath("dc")
	if _, _, err := s.Get(ctx, p); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get on a store never written = %v", err)
	}
	if names, err := s.List(ctx, keystore.Root); err != nil || len(names) != 0 {
		t.Fatalf("List = %v, %v", names, err)
	}
	if err := s.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("reading created the store folder: %v", err)
	}
	if _, err := s.Put(ctx, p, []byte(`{}`), 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"store.json", "data.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the first write did not create %s: %v", f, err)
		}
	}
}
