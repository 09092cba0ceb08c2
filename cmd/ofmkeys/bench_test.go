package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
)

// BenchmarkInit compares, in one run, making an OFM keyset with `ofmkeys
// init` (three RSA-2048 keys in parallel, three self-signed certificates,
// stored encrypted) with the openssl route a team would otherwise type:
// `openssl req -x509 -newkey rsa:2048 …` three times. Both are whole
// processes, started the same way. `make bench` prints the ratio.
func BenchmarkInit(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "ofmkeys")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build ofmkeys: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		b.Fatalf("openssl is needed for the comparison: %v", err)
	}
	b.Run("ofmkeys", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			store := filepath.Join(b.TempDir(), fmt.Sprint(i))
			mustRun(b, bin, "init", "--store", "file:"+store, "--dc-id", "0123456789abcdef01234567", "--client-id", "client-1", "--org", "Example")
		}
	})
	b.Run("openssl", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			dir := b.TempDir()
			for _, p := range []string{"transport", "signing", "encryption"} {
				mustRun(b, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "396",
					"-subj", "/O=Example/CN=client-1", "-keyout", filepath.Join(dir, p+".key"), "-out", filepath.Join(dir, p+".crt"))
			}
		}
	})
}

// BenchmarkCreateKeyset is keyset.Create in-process: the cost without
// process start-up, for reference.
func BenchmarkCreateKeyset(b *testing.B) {
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		s, err := keystore.OpenFileStore(filepath.Join(b.TempDir(), fmt.Sprint(i)), nil)
		if err != nil {
			b.Fatal(err)
		}
		_, err = keyset.Create(ctx, s, keyset.CreateOptions{Settings: keyset.Settings{DCID: "dc", ClientID: "client-1", Organisation: "Example"}}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
	}
}

func mustRun(b *testing.B, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "OFMKEYS_NOW=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
}
