package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ofmkeys/ofmkeys/daemon"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/pki"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the daemon: host the JWKS, follow the store, check itself, write file sinks",
		Description: `Serves the keyset's JWKS at /.well-known/jwks.json and /jwks from a precomputed
snapshot, with /healthz, /readyz and /metrics (Prometheus). Changes made with the CLI
are served within 2 s. The last good JWKS is kept in --snapshot-file and served after
a restart while the store is unreachable. After every change the daemon fetches its
--public-url and lints it as a peer would.

SIGTERM or SIGINT stop it gracefully; SIGHUP re-reads the --config file and the TLS
files (the listen address, store and dc_id change only on restart).`,
		Flags: append(append(policyFlags(), monitorFlags()...),
			stringFlag("listen", "address to listen on", daemon.DefaultListen),
			stringFlag("public-url", "the registered jwks_uri, fetched by the self-check (default: the listen address)", ""),
			intFlag("max-age", "Cache-Control max-age in seconds (at most 900: OFM consumers cache 15 minutes)", 300),
			stringFlag("content-type", "JWKS media type: application/jwk-set+json, or application/json for picky clients", jwks.MediaJWKSet),
			stringFlag("poll-interval", "how often the store's state version is read (watched file stores also signal at once)", "2s"),
			stringFlag("snapshot-file", "where the last good JWKS (public data only) is kept for restarts with the store down; empty: nowhere", ".ofmkeys-jwks.json"),
			stringFlag("tls-cert", "serve HTTPS with this certificate (PEM; reloaded when it changes)", ""),
			stringFlag("tls-key", "the TLS certificate's key (PEM)", ""),
			boolFlag("publish-transport", "also publish the transport key"),
			stringFlag("sink-dir", "keep the active certificates and keys of --sink-purposes in this folder", ""),
			stringFlag("sink-purposes", "purposes written to --sink-dir, comma-separated", "transport"),
			stringFlag("sink-jwks-file", "keep the served JWKS in this file too (for a CDN or bucket)", ""),
			stringFlag("sink-command", "run this (sh -c) after the sinks change", ""),
			stringFlag("sink-pid-file", "signal the process in this PID file after the sinks change", ""),
			stringFlag("sink-signal", "the signal for --sink-pid-file", "HUP"),
			boolFlag("sandbox", "run a local sandbox OFP in-process and prove the keys against it at start and after every rotation step"),
			stringFlag("proof-env", "prove the keys against the environment this file describes (authorization: auto) at start and after every rotation step", ""),
			stringFlag("webhook-listen", "receive PayNet's consent events (POST /consents/events, mutual TLS) on this address; empty: no receiver", ""),
			stringFlag("webhook-cert", "the webhook receiver's server certificate (PEM)", ""),
			stringFlag("webhook-key", "the webhook receiver's key (PEM)", ""),
			stringFlag("webhook-client-ca", "PayNet's CA bundle (PEM): the only client certificates the receiver accepts", ""),
			stringFlag("webhook-platform-jwks", "PayNet's JWKS URL: event signatures are verified against it", ""),
			&cli.BoolFlag{Name: "rotate", Usage: "rotate keys on schedule (only the replica holding the lease acts); --rotate=false leaves it to ofmkeys reconcile", Value: true, EnvVars: []string{envName("rotate")}},
			stringFlag("rotation-interval", "the longest wait between two rotation passes", "1m"),
			stringFlag("pid-file", "write the daemon's process id here (removed on exit), for reloads with kill -HUP", ""),
			stringFlag("log-format", "text or json", "text"),
			stringFlag("log-level", "debug, info, warn or error", "info"),
		),
		Action: runServe,
	}
}

// serveConfig builds the daemon's configuration from flag values given as
// text by get, the same way at start and on reload.
func serveConfig(get func(string) string) (daemon.Config, error) {
	cfg := daemon.Config{
		Listen:       get("listen"),
		PublicURL:    get("public-url"),
		DCID:         get("dc-id"),
		SnapshotFile: get("snapshot-file"),
		TLSCertFile:  get("tls-cert"),
		TLSKeyFile:   get("tls-key"),
		Serve:        jwks.ServeOptions{ContentType: get("content-type")},
		Sinks: daemon.Sinks{
			Dir: get("sink-dir"), JWKSFile: get("sink-jwks-file"), Command: get("sink-command"), PIDFile: get("sink-pid-file"),
		},
		Webhook: daemon.Webhook{Listen: get("webhook-listen"), CertFile: get("webhook-cert"), KeyFile: get("webhook-key"),
			ClientCAFile: get("webhook-client-ca"), PlatformJWKS: get("webhook-platform-jwks")},
	}
	maxAge, err := strconv.Atoi(get("max-age"))
	if err != nil || maxAge < 0 || maxAge > 900 {
		return cfg, fmt.Errorf("--max-age %q: want 0 to 900 seconds (OFM consumers cache a JWKS for at most 15 minutes)", get("max-age"))
	}
	cfg.Serve.MaxAge = time.Duration(maxAge) * time.Second
	if cfg.PollInterval, err = time.ParseDuration(get("poll-interval")); err != nil || cfg.PollInterval < 100*time.Millisecond {
		return cfg, fmt.Errorf("--poll-interval %q: want a duration of 100ms or more, e.g. 2s", get("poll-interval"))
	}
	if cfg.JWKS.PublishTransport, err = strconv.ParseBool(orFalse(get("publish-transport"))); err != nil {
		return cfg, fmt.Errorf("--publish-transport %q: want true or false", get("publish-transport"))
	}
	for _, p := range strings.Split(get("sink-purposes"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		purpose, err := pki.ParsePurpose(p)
		if err != nil {
			return cfg, fmt.Errorf("--sink-purposes: %w", err)
		}
		cfg.Sinks.Purposes = append(cfg.Sinks.Purposes, purpose)
	}
	if cfg.Sinks.Signal, err = parseSignal(get("sink-signal")); err != nil {
		return cfg, err
	}
	if cfg.Rotation.Enabled, err = strconv.ParseBool(orFalse(get("rotate"))); err != nil {
		return cfg, fmt.Errorf("--rotate %q: want true or false", get("rotate"))
	}
	if cfg.Rotation.Interval, err = time.ParseDuration(get("rotation-interval")); err != nil || cfg.Rotation.Interval < time.Second {
		return cfg, fmt.Errorf("--rotation-interval %q: want a duration of 1s or more", get("rotation-interval"))
	}
	if cfg.Rotation.Policy, err = policyFromText(get); err != nil {
		return cfg, err
	}
	if cfg.Sandbox, err = strconv.ParseBool(orFalse(get("sandbox"))); err != nil {
		return cfg, fmt.Errorf("--sandbox %q: want true or false", get("sandbox"))
	}
	if cfg.Monitor, err = monitorFromText(get); err != nil {
		return cfg, err
	}
	if f := get("proof-env"); f != "" {
		if cfg.ProofEnv, err = proofEnvironment(f); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Check()
}

func orFalse(s string) string {
	if s == "" {
		return "false"
	}
	return s
}

func parseSignal(s string) (syscall.Signal, error) {
	sigs := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT}
	if sig, ok := sigs[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("--sink-signal %q: want HUP, USR1, USR2, TERM or INT", s)
}

// flagText is a flag's current value as text.
func flagText(c *cli.Context, name string) string {
	switch v := c.Value(name).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// reloadedText re-reads the config file for a SIGHUP: flags given on the
// command line or in the environment keep their values; the others take
// the file's value, or their default when the file no longer sets them.
func reloadedText(c *cli.Context) (func(string) string, error) {
	file := map[string]string{}
	if path := c.String("config"); path != "" {
		var err error
		if file, err = readConfig(path); err != nil {
			return nil, err
		}
	}
	defaults := map[string]string{}
	for _, f := range c.Command.Flags {
		if df, ok := f.(cli.DocGenerationFlag); ok {
			defaults[f.Names()[0]] = df.GetValue()
		}
	}
	return func(name string) string {
		if c.IsSet(name) && !setByFile(c, name) {
			return flagText(c, name)
		}
		if v, ok := file[name]; ok {
			return v
		}
		return defaults[name]
	}, nil
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, configError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, configError{fmt.Errorf("--log-format %q: want text or json", c.String("log-format"))}
}

func runServe(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	logger, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg, err := serveConfig(func(name string) string { return flagText(c, name) })
	if err != nil {
		return configError{err}
	}
	s, closeStore, err := openStore(c)
	if err != nil {
		return err
	}
	defer closeStore()
	srv, err := daemon.New(s, cfg, daemon.WithLogger(logger), daemon.WithObserver(func(e daemon.Event) {
		switch e.Kind {
		case daemon.EventListening:
			scheme := "http"
			if cfg.TLSCertFile != "" {
				scheme = "https"
			}
			base := scheme + "://" + e.Addr
			fmt.Fprintf(c.App.Writer, "Serving the JWKS at %s%s\nStatus at %s%s, health at %s%s, metrics at %s%s\nTry: curl -si %s%s\n",
				base, daemon.PathWellKnown, base, daemon.PathStatus, base, daemon.PathHealth, base, daemon.PathMetrics, base, daemon.PathWellKnown)
			if e.Sandbox != "" {
				fmt.Fprintf(c.App.Writer, "Sandbox OFP at %s (the keys are proven against it)\n", e.Sandbox)
			}
			if e.Webhook != "" {
				fmt.Fprintf(c.App.Writer, "Consent events received at https://%s%s (mutual TLS)\n", e.Webhook, ofmcheck.WebhookPath)
			}
		case daemon.EventProof:
			printProof(c, e)
		}
	}))
	if err != nil {
		return configError{err}
	}

	if pf := c.String("pid-file"); pf != "" {
		if err := keystore.WriteFileAtomic(pf, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
			return fmt.Errorf("--pid-file: %w", err)
		}
		defer os.Remove(pf)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-c.Context.Done():
				return
			case <-hup:
				get, err := reloadedText(c)
				if err == nil {
					cfg, err = serveConfig(get)
				}
				if err == nil {
					err = srv.Reload(cfg)
				}
				if err != nil {
					logger.Error("SIGHUP: the new configuration is refused; the current one stays", "err", err)
					continue
				}
				logger.Info("SIGHUP: configuration reloaded")
			}
		}
	}()
	return srv.Run(c.Context)
}

// printProof prints a proof's report as a short table.
func printProof(c *cli.Context, e daemon.Event) {
	if e.Report == nil {
		return
	}
	result := "passed"
	if !e.Report.OK {
		result = "FAILED"
	}
	fmt.Fprintf(c.App.Writer, "\nProof %s in %s:\n", result, e.Report.Duration.Round(time.Millisecond))
	w := newTable(c)
	for _, st := range e.Report.Steps {
		mark, detail := "ok", st.Detail
		if !st.OK {
			mark, detail = "FAIL", st.Error
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", st.Name, mark, st.Duration.Round(100*time.Microsecond), detail)
	}
	w.Flush()
}

// proofEnvironment reads serve's --proof-env: an environment file with
// automatic authorization and no webhook block (the daemon's own receiver,
// --webhook-*, takes the events).
func proofEnvironment(path string) (*ofmcheck.Env, error) {
	e, err := readEnvironment(path, nil)
	if err != nil {
		return nil, configError{fmt.Errorf("--proof-env: %w", err)}
	}
	switch {
	case e.Authorization != "auto":
		return nil, configError{fmt.Errorf("--proof-env %s: the daemon proves unattended: want authorization: auto (manual is for ofmkeys check --env)", path)}
	case e.Webhook != nil:
		return nil, configError{fmt.Errorf("--proof-env %s: leave the webhook out; serve receives events with --webhook-listen", path)}
	}
	env, _, err := e.env(nil)
	if err != nil {
		return nil, configError{fmt.Errorf("--proof-env: %w", err)}
	}
	return &env, nil
}
