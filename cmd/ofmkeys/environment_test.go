package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

// authorization: manual, as against PayNet's sandbox: the check prints the
// authorize URL, a person (here a goroutine playing the browser) approves,
// and the redirect comes back to a loopback listener, or is pasted.
func TestManualAuthorizationTakesTheBrowsersRedirect(t *testing.T) {
	for _, mode := range []string{"listener", "paste"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			store := "file:" + filepath.Join(dir, "store")
			const dcID, clientID = "0123456789abcdef01234567", "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
			if code := run(context.Background(), []string{"ofmkeys", "init", "--store", store, "--dc-id", dcID, "--client-id", clientID, "--org", "Example"}, nil, io.Discard, io.Discard); code != 0 {
				t.Fatalf("init exited %d", code)
			}
			s, err := keystore.OpenFileStore(filepath.Join(dir, "store"), nil)
			if err != nil {
				t.Fatal(err)
			}
			ks, _, err := keyset.Load(context.Background(), s, dcID)
			if err != nil {
				t.Fatal(err)
			}
			redirect := "https://dc.example.my/callback"
			if mode == "listener" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				redirect = "http://" + ln.Addr().String() + "/callback"
				ln.Close()
			}
			sb, err := sandbox.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv, issuer := sb.Serve(ln)
			defer srv.Close()
			sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{ks.Active(pki.Transport).Kid},
				JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
			ca := filepath.Join(dir, "ca.pem")
			os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sb.CA().Raw}), 0o644)
			envFile := filepath.Join(dir, "env.yaml")
			os.WriteFile(envFile, fmt.Appendf(nil, "issuer: %s\ndp_id: DP9876543210\nredirect_uri: %s\nca_file: ca.pem\nauthorization: manual\n", issuer, redirect), 0o644)

			// The browser: trusts the platform's CA, has no client certificate.
			roots := x509.NewCertPool()
			roots.AddCert(sb.CA())
			browser := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			if mode == "paste" {
				browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			}
			defer browser.CloseIdleConnections()
			errR, errW := io.Pipe()
			inR, inW := io.Pipe()
			done := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(errR)
				for sc.Scan() {
					line := strings.TrimSpace(sc.Text())
					if !strings.HasPrefix(line, issuer+"/authorize?") {
						continue
					}
					resp, err := browser.Get(line)
					if err != nil {
						done <- err.Error()
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if mode == "paste" {
						go fmt.Fprintln(inW, resp.Header.Get("Location")) // the check reads it once it asked
					}
					done <- string(body)
				}
			}()
			var out bytes.Buffer
			code := run(context.Background(), []string{"ofmkeys", "check", "--store", store, "--env", envFile}, inR, &out, errW)
			errW.Close()
			if code != 0 {
				t.Fatalf("check exited %d:\n%s", code, out.String())
			}
			got := <-done
			if mode == "listener" && !strings.Contains(got, "ofmkeys has the answer") {
				t.Fatalf("the browser saw %q", got)
			}
			if !strings.Contains(out.String(), "consent approved by the user") {
				t.Fatalf("report:\n%s", out.String())
			}
		})
	}
}

// The examples/ files are read by the same code as users' files.
func TestTheExampleEnvironmentsAndClientsAreValid(t *testing.T) {
	for _, f := range []string{"sandbox-env.yaml", "paynet-sandbox-env.yaml"} {
		raw, _ := os.ReadFile(filepath.Join("../../examples", f))
		dc := ""
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "dc_id: "); ok {
				dc = v
			}
		}
		if _, err := readEnvironment(filepath.Join("../../examples", f), &keyset.Keyset{DCID: dc}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	clients, err := readClients("../../examples/sandbox-clients.yaml")
	if err != nil || len(clients) != 1 || clients[0].WebhookURL == "" {
		t.Fatalf("sandbox-clients.yaml: %v %+v", err, clients)
	}
}

// examples/ofmkeys.yaml names every setting of serve (as a key or a
// commented one), only settings that exist, and its values make a valid
// daemon configuration (the files it names stood in by test files).
func TestTheExampleConfigIsCompleteAndValid(t *testing.T) {
	const path = "../../examples/ofmkeys.yaml"
	values, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(nil, io.Discard, io.Discard)
	known := allFlagNames(app)
	for k := range values {
		if !known[k] {
			t.Errorf("unknown setting %s", k)
		}
	}
	raw, _ := os.ReadFile(path)
	var serve *cli.Command
	for _, c := range app.Commands {
		if c.Name == "serve" {
			serve = c
		}
	}
	defaults := map[string]string{}
	for _, f := range append(serve.Flags, globalFlags()...) {
		name := f.Names()[0]
		if name == "help" || name == "now" || name == "config" {
			continue
		}
		if !regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(name) + `:`).Match(raw) {
			t.Errorf("examples/ofmkeys.yaml does not mention %s", name)
		}
		if df, ok := f.(cli.DocGenerationFlag); ok {
			defaults[name] = df.GetValue()
		}
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert, _ := sandbox.New(nil)
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.CA().Raw}), 0o644)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	cfg, err := serveConfig(func(name string) string {
		v, ok := values[name]
		if !ok {
			v = strings.Trim(defaults[name], `"`)
		}
		switch {
		case strings.HasSuffix(name, "-ca") && v != "":
			return ca
		case strings.HasSuffix(name, "-file") && v != "" && name != "snapshot-file" && name != "sink-jwks-file" && name != "sink-pid-file":
			return secret
		}
		return v
	})
	if err != nil {
		t.Fatalf("the example's values: %v", err)
	}
	if len(cfg.Monitor.Notifiers) != 2 || len(cfg.Monitor.Watch) != 2 || cfg.Webhook.Listen == "" || !cfg.Rotation.Enabled {
		t.Fatalf("config %+v", cfg)
	}
}
