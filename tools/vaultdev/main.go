// Command vaultdev runs a real Vault server in memory for ofmkeys' tests,
// as `vault server -dev` does, built from Vault's own Go modules: Vault is
// not packaged for Debian and no binary can be downloaded where ofmkeys is
// built. It mounts KV v2 at secret/ and AppRole at approle/, listens on
// loopback, and prints one JSON line on stdout:
//
//	{"addr":"http://127.0.0.1:PORT","root_token":"…","unseal_key":"…"}
//
// The unseal key lets tests seal and unseal the server through the API.
// It lives in its own module so that Vault's dependency graph (and its BUSL
// licence) stay out of the ofmkeys module; the binary is never committed.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// noPlugins is a builtin plugin registry with nothing in it: the backends
// we need are wired directly, and a nil registry crashes the catalog.
type noPlugins struct{}

func (noPlugins) Contains(string, consts.PluginType) bool { return false }
func (noPlugins) Get(string, consts.PluginType) (func() (interface{}, error), bool) {
	return nil, false
}
func (noPlugins) Keys(consts.PluginType) []string { return nil }
func (noPlugins) DeprecationStatus(string, consts.PluginType) (consts.DeprecationStatus, bool) {
	return consts.Unknown, false
}
func (noPlugins) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on (port 0: any free port)")
	rootID := flag.String("root-token", "root", "id of the root token")
	logLevel := flag.String("log-level", "error", "Vault's log level (stderr)")
	flag.Parse()
	if err := run(*addr, *rootID, *logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run(addr, rootID, logLevel string) error {
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.LevelFromString(logLevel)})
	backend, err := inmem.NewInmem(nil, logger)
	if err != nil {
		return err
	}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:           backend,
		Logger:             logger,
		DisableMlock:       true,
		BuiltinRegistry:    noPlugins{},
		LogicalBackends:    map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{"approle": approle.Factory},
	})
	if err != nil {
		return fmt.Errorf("new core: %w", err)
	}
	ctx := namespace.ContextWithNamespace(context.Background(), namespace.RootNamespace)
	init, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1, Name: "shamir"},
	})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	unsealKey := init.SecretShares[0]
	if ok, err := core.Unseal(append([]byte(nil), unsealKey...)); err != nil || !ok {
		return fmt.Errorf("unseal: %v", err)
	}
	root, err := request(ctx, core, init.RootToken, "auth/token/create", map[string]interface{}{
		"id": rootID, "policies": []string{"root"}, "no_parent": true, "no_default_policy": true,
	})
	if err != nil {
		return err
	}
	token := root.Auth.ClientToken
	if _, err := request(ctx, core, init.RootToken, "auth/token/revoke-self", nil); err != nil {
		return err
	}
	if _, err := request(ctx, core, token, "sys/mounts/secret", map[string]interface{}{
		"type": "kv", "path": "secret/", "options": map[string]string{"version": "2"},
	}); err != nil {
		return err
	}
	if _, err := request(ctx, core, token, "sys/auth/approle", map[string]interface{}{"type": "approle"}); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	srv := &http.Server{Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
		Core:           core,
		ListenerConfig: &configutil.Listener{Address: host},
	})}
	go srv.Serve(ln)

	line, _ := json.Marshal(map[string]string{
		"addr":       "http://" + ln.Addr().String(),
		"root_token": token,
		"unseal_key": base64.StdEncoding.EncodeToString(unsealKey),
	})
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return srv.Close()
}

func request(ctx context.Context, core *vault.Core, token, path string, data map[string]interface{}) (*logical.Response, error) {
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation, ClientToken: token, Path: path, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if resp != nil && resp.IsError() {
		return nil, fmt.Errorf("%s: %w", path, resp.Error())
	}
	return resp, nil
}
