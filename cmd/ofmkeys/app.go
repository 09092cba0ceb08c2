package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "ofmkeys",
		Usage:   "keys and certificates of an Open Finance Malaysia Data Consumer",
		Version: version,
		Description: `ofmkeys makes the DC's transport, signing and encryption keys and certificates,
keeps the private keys in HashiCorp Vault or an encrypted local store, publishes the
JWKS whose kids are certificate thumbprints, and uses the keys without exporting them.

Every flag can also be set in the environment (OFMKEYS_ + the flag name in capitals,
dashes as underscores, e.g. OFMKEYS_DC_ID) or in a YAML config file given with --config
(keys are flag names). Flags win over the environment, which wins over the file.

Exit codes: 0 success; 1 failure; 2 usage or configuration error;
3 verification or decryption failed; 4 the store cannot be used (unreachable,
sealed, permission denied, wrong passphrase, corrupt).`,
		Reader:          stdin,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Suggest:         true,
		// Errors are printed by report, with hints and exit codes.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			initCommand(),
			listCommand(),
			showCommand(),
			csrCommand(),
			importCommand(),
			jwksCommand(),
			exportCommand(),
			signCommand(),
			verifyCommand(),
			encryptCommand(),
			decryptCommand(),
			serveCommand(),
			planCommand(),
			rotateCommand(),
			reconcileCommand(),
			confirmCommand(),
			rollbackCommand(),
			auditCommand(),
			checkCommand(),
			sandboxCommand(),
			statusCommand(),
		},
	}
	// The common flags go on every command, after its name, the way
	// people type them (ofmkeys list --store vault).
	var wire func([]*cli.Command)
	wire = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.Flags = append(c.Flags, globalFlags()...)
			before := applyConfig(c.Flags)
			c.Before = func(ctx *cli.Context) error {
				if err := before(ctx); err != nil {
					return err
				}
				return checkNow(ctx)
			}
			c.OnUsageError = app.OnUsageError
			wire(c.Subcommands)
		}
	}
	wire(app.Commands)
	return app
}

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "OFMKEYS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Flag constructors that wire the environment variable in one place.
func stringFlag(name, usage, value string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func boolFlag(name, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: []string{envName(name)}}
}

func intFlag(name, usage string, value int) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Usage: usage, Value: value, EnvVars: []string{envName(name)}}
}

func jsonFlag() cli.Flag { return boolFlag("json", "print JSON instead of a table") }

func globalFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("config", "YAML config file (keys are flag names)", ""),
		stringFlag("store", "where keys live: file:PATH (encrypted local store) or vault", "file:.ofmkeys"),
		stringFlag("dc-id", "the DC's dc_id (needed when the store holds several keysets)", ""),
		stringFlag("passphrase-file", "file holding the file store's passphrase (or set OFMKEYS_PASSPHRASE)", ""),
		stringFlag("vault-mount", "Vault KV v2 mount", "secret"),
		stringFlag("vault-prefix", "path inside the mount before ofmkeys/ (e.g. teams/payments)", ""),
		stringFlag("vault-role-id-file", "AppRole role_id file (with --vault-secret-id-file: log in with AppRole)", ""),
		stringFlag("vault-secret-id-file", "AppRole secret_id file", ""),
		stringFlag("vault-approle-mount", "AppRole auth mount", "approle"),
		&cli.StringFlag{Name: "now", Usage: "pretend the time is this (RFC 3339), for what-if runs and tests; empty: the clock", EnvVars: []string{envName("now")}, Hidden: true},
	}
}

// now is the command's clock: the real time unless --now says otherwise
// (validated by checkNow before any command runs).
func now(c *cli.Context) time.Time {
	if t, err := time.Parse(time.RFC3339, c.String("now")); err == nil {
		return t.UTC()
	}
	return time.Now().UTC()
}

func checkNow(c *cli.Context) error {
	if v := c.String("now"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return configError{fmt.Errorf("--now %q: want RFC 3339, e.g. 2027-01-31T09:00:00Z", v)}
		}
	}
	return nil
}

// settingsFlags are the DC settings a command needs when it creates a
// keyset (init, and csr or import on an empty store).
func settingsFlags() []cli.Flag {
	return []cli.Flag{
		stringFlag("client-id", "the DC's OAuth client_id (CN of the certificates by default)", ""),
		stringFlag("org", "organisation name (O= in the certificates)", ""),
		stringFlag("common-name", "CN of the certificates (default: the client_id)", ""),
		stringFlag("environment", "sandbox (self-signed allowed) or production (CA-issued only)", "sandbox"),
		stringFlag("kid-policy", "how kids are derived: x5t#S256, jwk-thumbprint or x5t", "x5t#S256"),
	}
}

func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", c.Args().First())}
	}
	return nil
}
