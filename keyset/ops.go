package keyset

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// CreateOptions describe a new self-signed keyset.
type CreateOptions struct {
	Settings
	// Bits is the RSA size; zero means pki.DefaultRSABits.
	Bits int
	// NotAfter ends the certificates' validity; zero means
	// pki.DefaultValidityMonths from now.
	NotAfter time.Time
	// AllowShortValidity permits under 12 months (sandbox only).
	AllowShortValidity bool
	// Force replaces an existing set: its versions become retired (their
	// keys stay in the store) and the new ones active.
	Force bool
	// Actor is who does it, for the audit log; empty means "ofmkeys".
	Actor string
}

// Create makes the three keys in parallel, self-signs a certificate of the
// purpose's profile for each, stores the keys, then the keyset document
// with all three active. Self-signed certificates are for OFM's sandbox;
// production keysets are made with NewCSR and Import.
func Create(ctx context.Context, s keystore.Store, o CreateOptions, now time.Time) (*Keyset, error) {
	if err := o.Settings.Check(); err != nil {
		return nil, err
	}
	if o.Environment == Production {
		return nil, errors.New("production needs CA-issued certificates: make CSRs with `ofmkeys csr` and import the signed certificates with `ofmkeys import`")
	}
	if o.Bits == 0 {
		o.Bits = pki.DefaultRSABits
	}
	if err := pki.CheckKeySize(o.Bits); err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	tmpl := pki.Template{Subject: pki.Subject{Organisation: o.Organisation, CommonName: o.CommonName}, Now: now, NotAfter: o.NotAfter, AllowShortValidity: o.AllowShortValidity}
	// Check the validity before spending time on keys.
	if err := pki.CheckValidity(now.Add(-pki.Backdate), tmpl.ValidityEnd(), o.AllowShortValidity); err != nil {
		return nil, err
	}

	old, version, err := Load(ctx, s, o.DCID)
	switch {
	case errors.Is(err, ErrNoKeyset):
		old = nil
	case err != nil:
		return nil, err
	case len(old.Versions) > 0 && !o.Force:
		return nil, fmt.Errorf("%w: keyset %s has %d key versions; use --force to replace them (their keys are kept, retired)", ErrExists, o.DCID, len(old.Versions))
	}

	keys, err := pki.GenerateKeys(o.Bits, len(pki.Purposes))
	if err != nil {
		return nil, err
	}
	ks := &Keyset{
		DCID: o.DCID, ClientID: o.ClientID, Organisation: o.Organisation, CommonName: o.CommonName,
		Environment: o.Environment, KidPolicy: o.KidPolicy,
	}
	if old != nil {
		// The log goes on: new events follow the old ones' numbers.
		ks.Pending, ks.Audit = old.Pending, old.Audit
		for _, v := range old.Versions {
			if v.State != Retired {
				v.Transition(Retired, now, "replaced by ofmkeys init --force")
				ks.Record(now, actor(o.Actor), "retire", v.Purpose, v.Kid, "replaced by init --force")
			}
			ks.Versions = append(ks.Versions, v)
		}
	}
	for i, p := range pki.Purposes {
		tmpl.Purpose = p
		cert, err := pki.SelfSign(keys[i], tmpl)
		if err != nil {
			return nil, err
		}
		v, err := ks.AddVersion(ctx, s, p, keys[i], []*x509.Certificate{cert}, SelfSigned, Active, now)
		if err != nil {
			return nil, err
		}
		ks.Record(now, actor(o.Actor), "generate", p, v.Kid, "init: self-signed "+string(p)+" key")
	}
	if _, err := Save(ctx, s, ks, version, now); err != nil {
		return nil, fmt.Errorf("save keyset %s: %w", o.DCID, err)
	}
	return ks, nil
}

// AddVersion stores a key and appends its version (in state st) to ks; the
// caller saves ks. The key is written before the document names it, so a
// crash in between leaves at worst an unnamed key (which rotation adopts),
// never a named one that is missing.
func (ks *Keyset) AddVersion(ctx context.Context, s keystore.Store, p pki.Purpose, key *rsa.PrivateKey, chain []*x509.Certificate, src Source, st State, now time.Time) (*Version, error) {
	leaf := chain[0]
	kid, err := ks.KidPolicy.Kid(leaf)
	if err != nil {
		return nil, err
	}
	if len(ks.Find(kid)) > 0 {
		return nil, fmt.Errorf("%w: keyset %s already has a key with kid %s", ErrExists, ks.DCID, kid)
	}
	chainPEM := string(pki.EncodeCertificates(chain))
	if err := putKey(ctx, s, ks.DCID, KeyRecord{Kid: kid, Purpose: p, PrivateKey: string(pki.EncodePrivateKey(key)), Chain: chainPEM, CreatedAt: now}); err != nil {
		return nil, fmt.Errorf("store %s key %s: %w", p, kid, err)
	}
	v := Version{
		Kid: kid, Purpose: p, Source: src, NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		X5tS256: pki.X5tS256(leaf), Chain: chainPEM, CreatedAt: now,
	}
	v.Transition(st, now, string(src))
	ks.Versions = append(ks.Versions, v)
	return &ks.Versions[len(ks.Versions)-1], nil
}

// NewCSR makes a key for a purpose and a CSR for a CA to sign. The key
// waits in the store (keystore.PendingPath) until Import receives its
// certificate. When the store has no keyset for settings.DCID yet, an empty
// one is created from settings.
func NewCSR(ctx context.Context, s keystore.Store, settings Settings, p pki.Purpose, bits int, now time.Time) ([]byte, error) {
	now = now.UTC().Truncate(time.Second)
	ks, version, err := loadOrNew(ctx, s, settings)
	if err != nil {
		return nil, err
	}
	if bits == 0 {
		bits = pki.DefaultRSABits
	}
	key, err := pki.GenerateKey(bits)
	if err != nil {
		return nil, err
	}
	der, err := pki.CreateCSR(key, p, ks.subject())
	if err != nil {
		return nil, err
	}
	csrPEM := pki.EncodeCSR(der)
	id := pki.JWKThumbprint(&key.PublicKey)
	path, err := keystore.PendingPath(ks.DCID, string(p), id)
	if err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(KeyRecord{Format: FormatVersion, Kid: id, Purpose: p, PrivateKey: string(pki.EncodePrivateKey(key)), CreatedAt: now})
	if err := putCreateOnly(ctx, s, path, rec); err != nil {
		return nil, fmt.Errorf("store pending %s key: %w", p, err)
	}
	ks.Pending = append(ks.Pending, Pending{ID: id, Purpose: p, CreatedAt: now, CSR: string(csrPEM)})
	ks.Record(now, "ofmkeys", "csr", p, id, "key made, waiting for its CA certificate")
	if _, err := Save(ctx, s, ks, version, now); err != nil {
		return nil, fmt.Errorf("save keyset %s: %w", ks.DCID, err)
	}
	return csrPEM, nil
}

// ImportOptions describe a certificate to import.
type ImportOptions struct {
	Purpose pki.Purpose
	// Chain is the certificate chain, PEM, leaf first.
	Chain []byte
	// Key is the private key, PEM, for a pair made elsewhere (a PayNet
	// sandbox starter pack); nil means a key made here by NewCSR.
	Key []byte
	// KeyPassphrase opens an encrypted Key.
	KeyPassphrase []byte
	// Settings create the keyset when the store has none yet.
	Settings Settings
	// Actor is who does it, for the audit log; empty means "ofmkeys".
	Actor string
}

// Import checks a CA-issued (or existing) certificate against OFM's rules
// and the purpose's profile and adds it as a new version: active when the
// purpose has no active key, staged otherwise (rotation promotes it).
// Nothing is stored when a check fails.
func Import(ctx context.Context, s keystore.Store, o ImportOptions, now time.Time) (*Version, error) {
	now = now.UTC().Truncate(time.Second)
	chain, err := pki.ParseCertificates(o.Chain)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	ks, version, err := loadOrNew(ctx, s, o.Settings)
	if err != nil {
		return nil, err
	}
	if version == 0 && o.Key == nil {
		return nil, fmt.Errorf("%w for dc_id %s: a certificate for a key made here needs `ofmkeys csr` first; to import a key made elsewhere give --key", ErrNoKeyset, o.Settings.DCID)
	}

	var key *rsa.PrivateKey
	src := Imported
	pendingIdx := -1
	if o.Key != nil {
		if key, err = pki.ParsePrivateKey(o.Key, o.KeyPassphrase); err != nil {
			return nil, fmt.Errorf("private key: %w", err)
		}
	} else {
		leafKey, ok := chain[0].PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: the certificate holds a %T key; OFM requires RSA", pki.ErrWeakKey, chain[0].PublicKey)
		}
		id := pki.JWKThumbprint(leafKey)
		for i, pk := range ks.Pending {
			if pk.ID == id {
				pendingIdx = i
			}
		}
		if pendingIdx < 0 {
			return nil, fmt.Errorf("no pending key of keyset %s matches this certificate: was its CSR made with `ofmkeys csr`? To import a key made elsewhere give --key", ks.DCID)
		}
		if pp := ks.Pending[pendingIdx].Purpose; pp != o.Purpose {
			return nil, fmt.Errorf("this certificate is for the pending %s key, not %s: use --purpose %s", pp, o.Purpose, pp)
		}
		if key, err = loadPending(ctx, s, ks.DCID, ks.Pending[pendingIdx]); err != nil {
			return nil, err
		}
		src = CAIssued
	}
	if err := pki.CheckCertificate(chain, pki.CheckOptions{Purpose: o.Purpose, Now: now, Key: key, AllowShortValidity: ks.Environment == Sandbox}); err != nil {
		return nil, err
	}
	if ks.Environment == Production && pki.SelfSigned(chain[0]) {
		return nil, errors.New("production accepts only CA-issued certificates and this one is self-signed: send `ofmkeys csr` output to PayNet's CA")
	}
	state := Active
	if ks.Active(o.Purpose) != nil {
		state = Staged
	}
	v, err := ks.AddVersion(ctx, s, o.Purpose, key, chain, src, state, now)
	if err != nil {
		return nil, err
	}
	ks.Record(now, actor(o.Actor), "import", o.Purpose, v.Kid, fmt.Sprintf("%s certificate imported as %s", src, state))
	var done *Pending
	if pendingIdx >= 0 {
		p := ks.Pending[pendingIdx]
		done = &p
		ks.Pending = append(ks.Pending[:pendingIdx], ks.Pending[pendingIdx+1:]...)
	}
	imported := *v
	if _, err := Save(ctx, s, ks, version, now); err != nil {
		return nil, fmt.Errorf("save keyset %s: %w", ks.DCID, err)
	}
	if done != nil {
		// The key now lives at its key path; the pending copy is no longer
		// named by the keyset. A failure here leaves a harmless copy.
		if path, err := keystore.PendingPath(ks.DCID, string(done.Purpose), done.ID); err == nil {
			_ = s.Delete(ctx, path)
		}
	}
	return &imported, nil
}

func actor(a string) string {
	if a == "" {
		return "ofmkeys"
	}
	return a
}

// loadOrNew loads the keyset of settings.DCID, or makes a new, empty one
// (version 0, not yet stored) from settings when the store has none.
func loadOrNew(ctx context.Context, s keystore.Store, settings Settings) (*Keyset, int64, error) {
	ks, version, err := Load(ctx, s, settings.DCID)
	if !errors.Is(err, ErrNoKeyset) {
		return ks, version, err
	}
	if err := settings.Check(); err != nil {
		return nil, 0, fmt.Errorf("no keyset for dc_id %s yet, so its settings are needed: %w", settings.DCID, err)
	}
	return &Keyset{DCID: settings.DCID, ClientID: settings.ClientID, Organisation: settings.Organisation,
		CommonName: settings.CommonName, Environment: settings.Environment, KidPolicy: settings.KidPolicy}, 0, nil
}

func loadPending(ctx context.Context, s keystore.Store, dcID string, p Pending) (*rsa.PrivateKey, error) {
	path, err := keystore.PendingPath(dcID, string(p.Purpose), p.ID)
	if err != nil {
		return nil, err
	}
	data, _, err := s.Get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("pending %s key %s: %w", p.Purpose, p.ID, err)
	}
	var rec KeyRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%w: pending %s key %s: %v", keystore.ErrCorrupt, p.Purpose, p.ID, err)
	}
	return pki.ParsePrivateKey([]byte(rec.PrivateKey), nil)
}
