package ofmcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// Prover is the rotation engine's proof: it runs Check against Env with
// the candidate key in place of the purpose's active one. A failure halts
// that purpose's rotation (rotation.Engine records it).
type Prover struct {
	Env   Env
	Store keystore.Store
	// RegisterTransport, when set, is told of a new transport
	// certificate's thumbprint before its handshake is tried (the local
	// sandbox registers it; PayNet's needs an operator, and is left nil).
	RegisterTransport func(x5tS256 string)
	// Now is the clock of the check; nil means time.Now.
	Now func() time.Time
	// Last is the last report, for status pages and logs.
	Last *Report
}

// Prove implements rotation.Prover.
func (p *Prover) Prove(ctx context.Context, ks *keyset.Keyset, purpose pki.Purpose, v *keyset.Version) error {
	cred, err := CredentialsFrom(ctx, p.Store, ks)
	if err != nil {
		return err
	}
	key, chain, err := keyset.LoadKey(ctx, p.Store, ks.DCID, v)
	if err != nil {
		return err
	}
	switch purpose {
	case pki.Signing:
		cred.SigningKey, cred.SigningKid = key, v.Kid
	case pki.Transport:
		cred.Transport, cred.TransportKid = tls.Certificate{PrivateKey: key, Leaf: chain[0]}, v.Kid
		for _, c := range chain {
			cred.Transport.Certificate = append(cred.Transport.Certificate, c.Raw)
		}
		if p.RegisterTransport != nil {
			p.RegisterTransport(v.Kid)
		}
	case pki.Encryption:
		// Every held encryption key is offered; the platform encrypts to
		// the first one in the JWKS, the new key once it is preferred.
	}
	rep := Check(ctx, p.Env, cred, p.Now)
	p.Last = &rep
	if !rep.OK {
		last := rep.Steps[len(rep.Steps)-1]
		return fmt.Errorf("the proof with %s key %s failed at %s: %s", purpose, v.Kid, last.Name, last.Error)
	}
	return nil
}
