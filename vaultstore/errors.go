package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/ofmkeys/ofmkeys/keystore"
)

// errInvalidToken marks a 403 whose cause is the token itself (expired,
// revoked), as opposed to a policy that denies the path.
var errInvalidToken = errors.New("invalid token")

// classify maps an error from vault/api to keystore's sentinels, keeping
// Vault's message. It is the one place that knows Vault's error shapes.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		msg = strings.Join(strings.Fields(msg), " ")
		switch {
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: vault: %s", keystore.ErrNotFound, msg)
		case re.StatusCode == http.StatusBadRequest && strings.Contains(msg, "check-and-set"):
			return fmt.Errorf("%w: vault: %s", keystore.ErrConflict, msg)
		case re.StatusCode == http.StatusForbidden && strings.Contains(msg, "invalid token"):
			return fmt.Errorf("%w: %w: vault: the token is expired or revoked", keystore.ErrPermission, errInvalidToken)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: vault: %s (the token's policy does not allow this path)", keystore.ErrPermission, msg)
		case re.StatusCode == http.StatusPreconditionFailed, re.StatusCode == http.StatusTooManyRequests, re.StatusCode >= 500:
			return fmt.Errorf("%w: vault: HTTP %d: %s", keystore.ErrUnavailable, re.StatusCode, msg)
		}
		return fmt.Errorf("vault: HTTP %d: %s", re.StatusCode, msg)
	}
	if isTLS(err) {
		return fmt.Errorf("vault: TLS: %w (check VAULT_CACERT and the server's certificate)", err)
	}
	if isTransport(err) {
		return fmt.Errorf("%w: vault: %v", keystore.ErrUnavailable, err)
	}
	return err
}

// isTransport reports a failure to get any HTTP answer: the request may or
// may not have reached Vault.
func isTransport(err error) bool {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

func isTLS(err error) bool {
	s := err.Error()
	return strings.Contains(s, "x509: ") || strings.Contains(s, "tls: ")
}

func retryable(err error) bool {
	return errors.Is(err, keystore.ErrUnavailable) && !isTLS(err)
}

// do runs op with the store's retry policy: retryable failures back off
// exponentially (Attempts tries in all); an invalid token triggers one
// AppRole login and one more try; everything else returns at once.
func (s *Store) do(ctx context.Context, what string, op func(context.Context) error) error {
	wait := s.cfg.Backoff
	relogged := false
	var err error
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if s.appRole() && s.client.Token() == "" {
			// The login at start found Vault unreachable.
			if err = s.login(ctx); err != nil {
				if retryable(err) && attempt < s.cfg.Attempts {
					s.sleep(ctx, &wait)
					continue
				}
				return fmt.Errorf("vault: %s: %w", what, err)
			}
		}
		err = classify(op(ctx))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errInvalidToken) && s.appRole() && !relogged:
			relogged = true
			if lerr := s.login(ctx); lerr != nil {
				return fmt.Errorf("vault: %s: %w", what, lerr)
			}
			attempt--
			continue
		case !retryable(err) || attempt >= s.cfg.Attempts:
			if errors.Is(err, keystore.ErrNotFound) {
				return err
			}
			return fmt.Errorf("vault: %s: %w", what, err)
		}
		if err := s.sleep(ctx, &wait); err != nil {
			return err
		}
	}
}

// sleep waits *wait (or until ctx ends) and doubles it up to MaxBackoff.
func (s *Store) sleep(ctx context.Context, wait *time.Duration) error {
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	*wait = min(2**wait, s.cfg.MaxBackoff)
	return nil
}
