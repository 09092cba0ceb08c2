// Package vaulttest starts a real Vault server (tools/vaultdev, built by
// `make test`) on a free loopback port for tests, and stops it when the
// test ends. Tests that need Vault fail, never skip, when it cannot start.
package vaulttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Server is a running Vault dev server.
type Server struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	UnsealKey string `json:"unseal_key"`
	cmd       *exec.Cmd
}

// Binary finds the vaultdev binary: $OFMKEYS_VAULTDEV, or
// tools/vaultdev/bin/vaultdev in the repository around the working folder.
func Binary() (string, error) {
	if p := os.Getenv("OFMKEYS_VAULTDEV"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "tools", "vaultdev", "bin", "vaultdev")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("tools/vaultdev/bin/vaultdev not found: run `make vaultdev` (make test builds it)")
		}
		dir = parent
	}
}

// Start runs a fresh Vault server for the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("vault dev server: %v", err)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vault dev server: %v", err)
	}
	s := &Server{cmd: cmd}
	t.Cleanup(s.stop)
	line := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Bytes()
		}
		close(line)
	}()
	select {
	case b, ok := <-line:
		if !ok {
			t.Fatal("vault dev server exited before printing its address")
		}
		if err := json.Unmarshal(b, s); err != nil {
			t.Fatalf("vault dev server said %q: %v", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("vault dev server did not start in 30 s")
	}
	return s
}

func (s *Server) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Client returns an API client with the given token (root when empty).
func (s *Server) Client(t testing.TB, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if token == "" {
		token = s.RootToken
	}
	c.SetToken(token)
	return c
}

// Seal seals the server; requests then get 503 "Vault is sealed".
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	if err := s.Client(t, "").Sys().Seal(); err != nil {
		t.Fatal(err)
	}
}

// Unseal unseals the server with its one key share.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	st, err := s.Client(t, "").Sys().Unseal(s.UnsealKey)
	if err != nil || st.Sealed {
		t.Fatalf("unseal: %v (sealed=%v)", err, st != nil && st.Sealed)
	}
}

// Token creates a token with the given policies (and no default policy).
func (s *Server) Token(t testing.TB, policies ...string) string {
	t.Helper()
	sec, err := s.Client(t, "").Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// Policy writes an ACL policy.
func (s *Server) Policy(t testing.TB, name, hcl string) {
	t.Helper()
	if err := s.Client(t, "").Sys().PutPolicy(name, hcl); err != nil {
		t.Fatal(err)
	}
}
