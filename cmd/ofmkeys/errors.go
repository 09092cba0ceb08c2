package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// Exit codes (documented in the app description and the README).
const (
	exitFailure = 1 // the operation failed
	exitUsage   = 2 // bad command line or configuration
	exitVerify  = 3 // a signature did not verify / a JWE did not open
	exitStore   = 4 // the store cannot be used
)

// usageError is a command-line mistake.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// configError is a bad setting (flag value, env, config file).
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// exitStatus ends a command that has said everything with an exit code of
// its own (status: 1 warning, 2 critical); nothing more is printed.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// report prints err as "ofmkeys: error: …" and a hint when one helps,
// and returns the exit code.
func report(w io.Writer, err error) int {
	var es exitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintf(w, "ofmkeys: error: %s\n", msg)
	code, hint := classify(err)
	if hint != "" {
		fmt.Fprintf(w, "ofmkeys: hint: %s\n", hint)
	}
	return code
}

// classify picks the exit code and hint for an error.
func classify(err error) (int, string) {
	var ue usageError
	var ce configError
	switch {
	case errors.As(err, &ue):
		return exitUsage, "run `ofmkeys help` or `ofmkeys COMMAND --help` for usage"
	case errors.As(err, &ce):
		return exitUsage, "check the flag, its OFMKEYS_* variable and the --config file"
	case errors.Is(err, jwks.ErrVerify):
		return exitVerify, "check that the JWKS is the signer's and holds the kid of the JWS header"
	case errors.Is(err, jwks.ErrDecrypt):
		return exitVerify, "the JWE must be RSA-OAEP-256/A256GCM to an encryption key this keyset still holds"
	case errors.Is(err, keystore.ErrPassphrase):
		return exitStore, "set OFMKEYS_PASSPHRASE (or --passphrase-file) to the passphrase the store was created with"
	case errors.Is(err, keystore.ErrUnavailable):
		return exitStore, "check VAULT_ADDR and that Vault is up and unsealed (`vault status`); nothing was changed"
	case errors.Is(err, keystore.ErrPermission) && strings.Contains(err.Error(), "expired or revoked"):
		return exitStore, "get a new VAULT_TOKEN, or use AppRole (--vault-role-id-file, --vault-secret-id-file) so ofmkeys logs in itself"
	case errors.Is(err, keystore.ErrPermission):
		return exitStore, "grant the token examples/vault-policy.hcl for the mount and prefix ofmkeys uses"
	case errors.Is(err, keystore.ErrCorrupt):
		return exitStore, "restore the named document from a backup; ofmkeys changed nothing"
	case errors.Is(err, keyset.ErrIntegrity):
		return exitStore, "a key the keyset names is missing or damaged: restore the store from a backup (ofmkeys never silently makes a replacement)"
	case errors.Is(err, keystore.ErrConflict):
		return exitFailure, "another writer (a running daemon, another operator) changed the keyset at the same moment: run the command again; `ofmkeys plan` shows where things stand"
	case errors.Is(err, rotation.ErrLeaseHeld):
		return exitFailure, "a running `ofmkeys serve` rotates this keyset already; operator actions (rotate, confirm, rollback) work alongside it"
	case errors.Is(err, keyset.ErrNoKeyset):
		return exitFailure, "create one with `ofmkeys init --dc-id ID --client-id ID --org NAME`, or choose another with --dc-id / --store"
	case errors.Is(err, keyset.ErrExists):
		return exitFailure, "nothing was changed"
	case errors.Is(err, keyset.ErrNoVersion):
		return exitFailure, "`ofmkeys list` shows the purposes and kids of the keyset"
	case errors.Is(err, keystore.ErrInvalidPath):
		return exitUsage, "ids and kids are letters, digits, '_' and '-'"
	case errors.Is(err, pki.ErrWeakKey):
		return exitFailure, "OFM requires RSA keys of 2048 bits or more; ofmkeys makes 2048, 3072 or 4096"
	case errors.Is(err, pki.ErrShortValidity):
		return exitFailure, "OFM requires 12 months of validity at issue; in the sandbox --allow-short-validity permits less"
	case errors.Is(err, pki.ErrMalformedPEM):
		return exitFailure, "give a PEM file holding exactly the expected blocks (`openssl x509 -in FILE -noout -text` shows what a certificate file holds)"
	case errors.Is(err, pki.ErrKeyMismatch):
		return exitFailure, "the certificate was issued for another key: pair it with the key (or CSR) it was made for"
	case errors.Is(err, pki.ErrProfile):
		return exitFailure, "ask the CA to issue with the key usage the `ofmkeys csr` request carries (`openssl req -in CSR -noout -text`)"
	case errors.Is(err, pki.ErrChain):
		return exitFailure, "give --chain with the issuing CA certificates, leaf's issuer first"
	case errors.Is(err, pki.ErrNotValidNow):
		return exitFailure, "check the certificate dates and this machine's clock"
	}
	return exitFailure, ""
}
