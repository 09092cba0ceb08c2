package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"

	"github.com/go-jose/go-jose/v4"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "run a local OFM platform (AS, RS, test DPs, consent webhook sender) that enforces PayNet's rules",
		Description: `Serves discovery, its JWKS, PAR, authorize (auto-approved for the test user), token,
introspection, revocation, userinfo, /v1/providers, consents and account data over TLS with
client certificates, until SIGINT or SIGTERM. Its CA, server certificate and signing key
are made at each start: --ca-out writes the CA for clients to trust.

Clients come from --clients FILE (see examples/sandbox-clients.yaml), and --register adds
the keyset of the configured store on the fly: its keys are read from --jwks-uri when set
(e.g. an ofmkeys serve), else straight from the store. --env-out writes the environment
file that ofmkeys check --env needs to run against this sandbox.`,
		Flags: []cli.Flag{
			stringFlag("listen", "address to listen on", "127.0.0.1:8443"),
			stringFlag("clients", "YAML file of registered clients", ""),
			boolFlag("register", "register the keyset of the configured store"),
			stringFlag("jwks-uri", "with --register: the client's jwks_uri (default: its keys straight from the store)", ""),
			stringFlag("webhook-url", "with --register: where consent events go (the DC's base URL)", ""),
			stringFlag("webhook-ca", "PEM CAs a DC's webhook server may chain to (besides the sandbox's own)", ""),
			stringFlag("ca-out", "write the sandbox CA certificate (PEM) here", ""),
			stringFlag("env-out", "with --register: write an environment file for ofmkeys check --env here", ""),
			stringFlag("misbehave", "start misbehaving in one way (see ofmkeys check --negative)", ""),
			stringFlag("tls-fault", "serve broken TLS: unknown-ca, wrong-name, expired, sha1, missing-intermediate or cbc-only", ""),
		},
		Action: runSandbox,
	}
}

// sandboxClients is a --clients file.
type sandboxClients struct {
	Clients []struct {
		ClientID      string   `yaml:"client_id"`
		DCID          string   `yaml:"dc_id"`
		JWKSURI       string   `yaml:"jwks_uri"`
		Transport     []string `yaml:"transport"`
		RedirectURIs  []string `yaml:"redirect_uris"`
		WebhookURL    string   `yaml:"webhook_url"`
		Profile       string   `yaml:"profile"`
		TLSClientAuth bool     `yaml:"tls_client_auth"`
	} `yaml:"clients"`
}

func readClients(path string) ([]sandbox.Client, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f sandboxClients
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var out []sandbox.Client
	for i, c := range f.Clients {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s: client %d (%s): %s", path, i+1, c.ClientID, fmt.Sprintf(format, args...))
		}
		if c.Profile == "" {
			c.Profile = string(ofmcheck.XSigClassic)
		}
		if err := (&keyset.Settings{DCID: c.DCID, ClientID: c.ClientID, Organisation: "-"}).Check(); err != nil {
			return nil, bad("%v", err)
		}
		switch {
		case !jwks.IsURL(c.JWKSURI):
			return nil, bad("jwks_uri %q is not a URL", c.JWKSURI)
		case len(c.Transport) == 0:
			return nil, bad("transport: list the x5t#S256 of every registered transport certificate (ofmkeys list shows them as kids)")
		case len(c.RedirectURIs) == 0:
			return nil, bad("redirect_uris: at least one")
		case c.Profile != string(ofmcheck.XSigClassic) && c.Profile != string(ofmcheck.XSigDetached):
			return nil, bad("profile %q: want classic or detached", c.Profile)
		}
		out = append(out, sandbox.Client{ClientID: c.ClientID, DCID: c.DCID, JWKSURI: c.JWKSURI, Transport: c.Transport, RedirectURIs: c.RedirectURIs,
			WebhookURL: c.WebhookURL, Profile: ofmcheck.XSigProfile(c.Profile), TLSClientAuth: c.TLSClientAuth})
	}
	return out, nil
}

func runSandbox(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if !c.Bool("register") && c.String("clients") == "" {
		return usageError{errors.New("the sandbox needs clients: --clients FILE, --register (the keyset of the configured store), or both")}
	}
	if sw := sandbox.Switch(c.String("misbehave")); sw != "" && !slices.Contains(sandbox.Switches, sw) {
		return configError{fmt.Errorf("--misbehave %q: want one of %v", sw, sandbox.Switches)}
	}
	var clients []sandbox.Client
	if f := c.String("clients"); f != "" {
		var err error
		if clients, err = readClients(f); err != nil {
			return configError{err}
		}
	}
	sb, err := sandbox.New(nil)
	if err != nil {
		return err
	}
	if f := c.String("webhook-ca"); f != "" {
		raw, err := os.ReadFile(f)
		if err != nil || !sb.WebhookRoots.AppendCertsFromPEM(raw) {
			return configError{fmt.Errorf("--webhook-ca %s: no PEM certificate could be read (%v)", f, err)}
		}
	}
	for _, cl := range clients {
		sb.Register(cl)
	}
	if err := sb.SetTLSFault(sandbox.TLSFault(c.String("tls-fault"))); err != nil {
		return configError{fmt.Errorf("--tls-fault: %w (want one of %v)", err, sandbox.TLSFaults)}
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return configError{fmt.Errorf("--listen: %w", err)}
	}
	srv, issuer := sb.Serve(ln)
	defer func() { srv.Close(); sb.Close() }()
	if f := c.String("ca-out"); f != "" {
		if err := keystore.WriteFileAtomic(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sb.CA().Raw})); err != nil {
			return fmt.Errorf("--ca-out: %w", err)
		}
	}
	if c.Bool("register") {
		registered, err := registerKeyset(c, sb, issuer)
		if err != nil {
			return err
		}
		clients = append(clients, registered)
	}
	sb.Misbehave(sandbox.Switch(c.String("misbehave")))
	fmt.Fprintf(c.App.Writer, "Sandbox OFP at %s\nDiscovery: %s/.well-known/openid-configuration\n", issuer, issuer)
	if f := c.String("ca-out"); f != "" {
		fmt.Fprintf(c.App.Writer, "CA certificate: %s\n", f)
	}
	for _, cl := range clients {
		keys := cl.JWKSURI
		if keys == "" {
			keys = "the store"
		}
		fmt.Fprintf(c.App.Writer, "Client %s (dc_id %s): keys from %s, %d transport certificate(s)\n", cl.ClientID, cl.DCID, keys, len(cl.Transport))
	}
	if f := c.String("env-out"); f != "" {
		fmt.Fprintf(c.App.Writer, "Environment for ofmkeys check --env: %s\n", f)
	}
	fmt.Fprintln(c.App.Writer, "Ready.")
	<-c.Context.Done()
	return nil
}

// registerKeyset registers the store's keyset: every transport
// certificate not retired, its keys from --jwks-uri or from the store.
func registerKeyset(c *cli.Context, sb *sandbox.Server, issuer string) (sandbox.Client, error) {
	var cl sandbox.Client
	err := withKeyset(c, func(ctx context.Context, s keystore.Store, ks *keyset.Keyset) error {
		cl = sandbox.Client{ClientID: ks.ClientID, DCID: ks.DCID, RedirectURIs: []string{sandboxRedirect}, WebhookURL: c.String("webhook-url"), JWKSURI: c.String("jwks-uri")}
		for _, v := range ks.Versions {
			if v.Purpose == pki.Transport && v.State != keyset.Retired {
				cl.Transport = append(cl.Transport, v.Kid)
			}
		}
		if cl.JWKSURI == "" {
			// Read at every use, so that rotations made meanwhile are seen.
			cl.JWKS = func() (*jose.JSONWebKeySet, error) {
				cur, _, err := keyset.Load(context.Background(), s, ks.DCID)
				if err != nil {
					return nil, err
				}
				return jwks.Build(cur, jwks.Options{})
			}
		} else if !jwks.IsURL(cl.JWKSURI) {
			return configError{fmt.Errorf("--jwks-uri %q is not a URL", cl.JWKSURI)}
		}
		sb.Register(cl)
		if f := c.String("env-out"); f != "" {
			return writeEnvironment(f, issuer, ks, c.String("ca-out"))
		}
		return nil
	})
	return cl, err
}

// writeEnvironment writes the file check --env reads, for this sandbox.
func writeEnvironment(path, issuer string, ks *keyset.Keyset, caFile string) error {
	if caFile == "" {
		return configError{errors.New("--env-out needs --ca-out: the check must trust the sandbox's CA")}
	}
	u, _ := url.Parse(issuer)
	doc := fmt.Sprintf("# The ofmkeys sandbox at %s (made by ofmkeys sandbox --env-out).\nissuer: %s\nclient_id: %s\ndc_id: %s\ndp_id: DP9876543210\nredirect_uri: %s\nca_file: %s\nauthorization: auto\n",
		u.Host, issuer, ks.ClientID, ks.DCID, sandboxRedirect, caFile)
	return keystore.WriteFileAtomic(path, []byte(doc))
}
