package main

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
			"freeport": freeport,
			"waitfor":  waitfor,
			"waitfile": waitfile,
			"fetch":    fetchCmd,
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

// freeport VAR: set VAR to a free loopback TCP port.
func freeport(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ts.Setenv(args[0], strconv.Itoa(pickPort(ts)))
}

// handedOut are the ports freeport gave, never given twice.
var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// pickPort finds a free port below Linux's ephemeral range (32768+), so
// that a listener on port 0 elsewhere in the tests (the sandboxes) cannot
// be given it between freeport and the daemon's bind.
func pickPort(ts *testscript.TestScript) int {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if handedOut[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut[port] = true
		return port
	}
	ts.Fatalf("freeport: no free port found")
	return 0
}

// waitfor URL [NEEDLE|@FILE]: wait (10 s at most) until GET URL answers 200
// and its headers and body contain NEEDLE (or the text of FILE). The
// daemon under test is another process: polling is the only way to see it.
func waitfor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfor URL [NEEDLE|@FILE]")
	}
	needle := ""
	if len(args) == 2 {
		needle = args[1]
		if strings.HasPrefix(needle, "@") {
			needle = strings.TrimSpace(ts.ReadFile(needle[1:]))
		}
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get(args[0])
		if err == nil {
			dump, _ := httputil.DumpResponse(resp, true)
			resp.Body.Close()
			last = string(dump)
			if resp.StatusCode == 200 && strings.Contains(last, needle) {
				if neg {
					ts.Fatalf("%s answered with %q", args[0], needle)
				}
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !neg {
		ts.Fatalf("%s did not answer 200 with %q in 10 s; last: %s", args[0], needle, last)
	}
}

// waitfile FILE: wait (10 s at most) until another process has written
// FILE (ofmkeys sandbox writes its --env-out once it listens).
func waitfile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitfile FILE")
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
	}
	ts.Fatalf("%s was not written in 10 s", args[0])
}

// fetch URL FILE: save the body of GET URL.
func fetchCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: fetch URL FILE")
	}
	resp, err := http.Get(args[0])
	if err != nil {
		ts.Fatalf("fetch: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		ts.Fatalf("fetch %s: %s", args[0], resp.Status)
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), body, 0o644); err != nil {
		ts.Fatalf("fetch: %v", err)
	}
}
