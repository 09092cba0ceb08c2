// Command ofmkeys manages an Open Finance Malaysia Data Consumer's
// transport, signing and encryption keys and certificates: it makes them,
// keeps them in Vault or an encrypted local store, publishes the JWKS, and
// signs, verifies, encrypts and decrypts with them.
//
// Only this package prints or exits; see app.go for the commands and
// errors.go for the exit codes.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	if err := app.RunContext(ctx, flagsFirst(app, args)); err != nil {
		return report(stderr, err)
	}
	return 0
}
