package sandbox_test

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

var ctx = context.Background()

const (
	clientID = "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
	dcID     = "0123456789abcdef01234567"
	redirect = "https://dc.example.my/callback"
)

// offsetClock is the real time moved by an offset.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// setup starts a sandbox on loopback and makes a keyset for the DC.
func setup(t testing.TB) (*sandbox.Server, string, *x509.CertPool, keystore.Store, *keyset.Keyset) {
	return setupWith(t, nil)
}

func setupWith(t testing.TB, clock sandbox.Clock) (*sandbox.Server, string, *x509.CertPool, keystore.Store, *keyset.Keyset) {
	t.Helper()
	sb, err := sandbox.New(clock)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, issuer := sb.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	roots.AddCert(sb.CA())
	s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: keyset.Settings{DCID: dcID, ClientID: clientID, Organisation: "Example"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sb, issuer, roots, s, ks
}

func register(sb *sandbox.Server, ks *keyset.Keyset, transport string, profile ofmcheck.XSigProfile) {
	sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{transport}, Profile: profile,
		JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
}

// withReceiver registers the client with a webhook receiver on loopback
// and returns the receiver and the env that awaits its events.
func withReceiver(t testing.TB, sb *sandbox.Server, ks *keyset.Keyset, env ofmcheck.Env) (*ofmcheck.Receiver, ofmcheck.Env) {
	t.Helper()
	rc := &ofmcheck.Receiver{DCID: dcID}
	base, stop, err := sb.LocalReceiver(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(); stop() })
	sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{ks.Active(pki.Transport).Kid},
		Profile: env.Profile, WebhookURL: base, JWKS: func() (*jose.JSONWebKeySet, error) { return jwks.Build(ks, jwks.Options{}) }})
	env.AwaitEvent = rc.Await
	return rc, env
}

func TestTheWholeFlowAgainstTheSandboxOverMutualTLS(t *testing.T) {
	for _, profile := range []ofmcheck.XSigProfile{ofmcheck.XSigClassic, ofmcheck.XSigDetached} {
		t.Run(string(profile), func(t *testing.T) {
			sb, issuer, roots, s, ks := setup(t)
			cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
			if err != nil {
				t.Fatal(err)
			}
			rc, env := withReceiver(t, sb, ks, ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect, Profile: profile})
			rep := ofmcheck.Check(ctx, env, cred, nil)
			for _, st := range rep.Steps {
				t.Logf("%-14s ok=%v %v kid=%s %s %s", st.Name, st.OK, st.Duration.Round(time.Microsecond), st.Kid, st.Detail, st.Error)
			}
			if !rep.OK || len(rep.Steps) != 11 {
				t.Fatalf("the check failed")
			}
			for _, st := range rep.Steps {
				if st.Skipped {
					t.Errorf("step %s was skipped", st.Name)
				}
			}
			if evs := rc.Events(); len(evs) != 1 || evs[0].Status != "revoked" || evs[0].UpdatedBy != "dc" {
				t.Fatalf("the receiver recorded %+v", evs)
			}
			data := rep.Steps[5]
			if !strings.Contains(data.Detail, ks.Active(pki.Encryption).Kid) || data.Kid != ks.Active(pki.Signing).Kid || !ofmcheck.IsUUID(data.InteractionID) {
				t.Fatalf("the data call step does not name the keys used: %+v", data)
			}
		})
	}
}

func TestAnUnregisteredTransportCertificateIsRefused(t *testing.T) {
	sb, issuer, roots, s, ks := setup(t)
	register(sb, ks, "not-our-certificate", ofmcheck.XSigClassic)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	rep := ofmcheck.Check(ctx, ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}, cred, nil)
	last := rep.Steps[len(rep.Steps)-1]
	if rep.OK || last.Name != "par" || !strings.Contains(last.Error, "invalid_client") || !strings.Contains(last.Error, "not registered") {
		t.Fatalf("report %+v", rep)
	}
}

func TestAnUntrustedPlatformCertificateStopsTheCheck(t *testing.T) {
	_, issuer, _, s, ks := setup(t)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	rep := ofmcheck.Check(ctx, ofmcheck.Env{Issuer: issuer, Roots: x509.NewCertPool(), ClientID: clientID, DCID: dcID, RedirectURI: redirect}, cred, nil)
	if rep.OK || rep.Steps[0].Name != "discovery" || !strings.Contains(rep.Steps[0].Error, "certificate") {
		t.Fatalf("report %+v", rep.Steps)
	}
}

// The sandbox reads the DC's keys from its jwks_uri. When the DC rotates
// its signing key, the new kid is not in the sandbox's cached copy: one
// refetch finds it, without waiting for the 15-minute cache.
func TestTheSandboxFetchesTheJWKSAndRefetchesForANewKid(t *testing.T) {
	clock := &offsetClock{}
	sb, issuer, roots, s, ks := setupWith(t, clock)
	var hits atomic.Int32
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		cur, _, err := keyset.Load(r.Context(), s, dcID)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		doc, _ := jwks.Marshal(cur, jwks.Options{})
		w.Write(doc)
	}))
	defer jwksSrv.Close()
	sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{ks.Active(pki.Transport).Kid},
		JWKSURI: jwksSrv.URL})
	env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}
	check := func() ofmcheck.Report {
		cur, _, _ := keyset.Load(ctx, s, dcID)
		cred, err := ofmcheck.CredentialsFrom(ctx, s, cur)
		if err != nil {
			t.Fatal(err)
		}
		return ofmcheck.Check(ctx, env, cred, nil)
	}
	if rep := check(); !rep.OK || hits.Load() != 1 {
		t.Fatalf("first check: ok=%v, %d JWKS fetches (want 1): %+v", rep.OK, hits.Load(), rep.Steps)
	}
	e := &rotation.Engine{Store: s, DCID: dcID, Actor: "test"}
	if _, err := e.Rotate(ctx, pki.Signing, rotation.RotateOptions{Emergency: true}); err != nil {
		t.Fatal(err)
	}
	clock.offset.Store(int64(61 * time.Second)) // past the refetch rate limit
	if rep := check(); !rep.OK || hits.Load() != 2 {
		t.Fatalf("after the rotation: ok=%v, %d JWKS fetches (want 2): %+v", rep.OK, hits.Load(), rep.Steps)
	}
}

// Every misbehaviour of the platform is refused by the DC side at the
// data call, with the right error, and no plaintext gets through.
func TestEveryMisbehaviourIsRefused(t *testing.T) {
	sb, issuer, roots, s, ks := setup(t)
	register(sb, ks, ks.Active(pki.Transport).Kid, ofmcheck.XSigClassic)
	cred, _ := ofmcheck.CredentialsFrom(ctx, s, ks)
	env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect}
	for _, r := range sandbox.RunNegative(ctx, sb, env, cred) {
		t.Logf("%-20s %s", r.Switch, r.Got)
		if !r.Refused {
			t.Errorf("%s: want %s to fail with %q; got %s", r.Switch, r.Step, r.Error, r.Got)
		}
	}
	if rep := ofmcheck.Check(ctx, env, cred, nil); !rep.OK {
		t.Fatalf("the sandbox still misbehaves after the negative run: %+v", rep.Steps)
	}
}

// shiftedClock is an hour ahead: past any propagation window.
type shiftedClock struct{}

func (shiftedClock) Now() time.Time { return time.Now().Add(time.Hour) }
