package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ofmkeys/ofmkeys/keystore"
)

// ErrLeaseHeld: another rotator holds the lease.
var ErrLeaseHeld = errors.New("another rotator holds the rotation lease")

// ErrLeaseLost: this rotator's lease was taken over (it could not renew in
// time); it stops acting at once.
var ErrLeaseLost = errors.New("the rotation lease was lost")

// leaseDoc is the lease document (keystore.LeasePath).
type leaseDoc struct {
	Holder   string    `json:"holder"`
	Expires  time.Time `json:"expires"`
	Acquired time.Time `json:"acquired"`
}

// Acquire takes the rotation lease, or renews it when this engine holds
// it. Only one rotator among all replicas holds it at a time: the lease is
// one document written with compare-and-set, with an expiry.
func (e *Engine) Acquire(ctx context.Context) error {
	p, err := keystore.LeasePath(e.DCID)
	if err != nil {
		return err
	}
	ttl := e.LeaseTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	now := e.now()
	data, version, err := e.Store.Get(ctx, p)
	var cur leaseDoc
	switch {
	case errors.Is(err, keystore.ErrNotFound):
	case err != nil:
		return err
	default:
		if json.Unmarshal(data, &cur) != nil {
			cur = leaseDoc{} // unreadable: treat as free, the CAS still guards
		}
	}
	if cur.Holder != "" && cur.Holder != e.actor() && now.Before(cur.Expires) {
		return fmt.Errorf("%w: %s until %s", ErrLeaseHeld, cur.Holder, cur.Expires.Format(time.RFC3339))
	}
	if cur.Holder == e.actor() && now.Before(cur.Expires.Add(-ttl/2)) {
		return nil // held, with more than half its time left: no write
	}
	next := leaseDoc{Holder: e.actor(), Expires: now.Add(ttl), Acquired: cur.Acquired}
	if cur.Holder != e.actor() {
		next.Acquired = now
	}
	doc, _ := json.Marshal(next)
	if _, err := e.Store.Put(ctx, p, doc, version); err != nil {
		if errors.Is(err, keystore.ErrConflict) {
			if cur.Holder == e.actor() {
				return ErrLeaseLost
			}
			return fmt.Errorf("%w: taken at the same moment by another rotator", ErrLeaseHeld)
		}
		return err
	}
	return nil
}

// Release gives the lease up if this engine holds it.
func (e *Engine) Release(ctx context.Context) error {
	p, err := keystore.LeasePath(e.DCID)
	if err != nil {
		return err
	}
	data, version, err := e.Store.Get(ctx, p)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var cur leaseDoc
	if json.Unmarshal(data, &cur) != nil || cur.Holder != e.actor() {
		return nil
	}
	doc, _ := json.Marshal(leaseDoc{})
	_, err = e.Store.Put(ctx, p, doc, version)
	if errors.Is(err, keystore.ErrConflict) {
		return nil
	}
	return err
}
