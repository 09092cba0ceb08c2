package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ofmkeys/ofmkeys/internal/vaulttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"ofmkeys": main})
}

// TestScripts runs the CLI scripts in testdata/script against the real
// binary, a real Vault server (VAULT_ADDR is set for every script, each with
// its own prefix), openssl, and panva/jose under Node as the independent
// JOSE implementation.
func TestScripts(t *testing.T) {
	v := vaulttest.Start(t)
	interop, err := filepath.Abs("../../tools/jose-interop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(interop, "node_modules", "jose")); err != nil {
		t.Fatalf("panva/jose is not installed in tools/jose-interop: run `make test` (it runs npm ci there): %v", err)
	}
	for _, tool := range []string{"openssl", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed by the interop scripts: %v", tool, err)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("OFMKEYS_NOW", "2026-12-04T10:00:00Z")
			env.Setenv("VAULT_ADDR", v.Addr)
			env.Setenv("VAULT_TOKEN", v.RootToken)
			env.Setenv("OFMKEYS_VAULT_PREFIX", "scripts/"+filepath.Base(env.WorkDir))
			env.Setenv("JOSE_INTEROP", interop)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// exits CODE PROG ARGS...: run PROG and require exit code CODE.
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: exits CODE PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				if err != nil {
					ts.Fatalf("exits: bad code %q", args[0])
				}
				err = ts.Exec(args[1], args[2:]...)
				got := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					got = ee.ExitCode()
				} else if err != nil {
					ts.Fatalf("exits: %v", err)
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
		},
	})
}
