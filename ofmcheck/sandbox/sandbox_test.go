package sandbox_test

import (
	"context"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
)

var ctx = context.Background()

const (
	clientID = "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
	dcID     = "0123456789abcdef01234567"
	redirect = "https://dc.example.my/callback"
)

// setup starts a sandbox on loopback and makes a keyset for the DC.
func setup(t *testing.T) (*sandbox.Server, string, *x509.CertPool, keystore.Store, *keyset.Keyset) {
	t.Helper()
	sb, err := sandbox.New(nil)
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

func TestTheWholeFlowAgainstTheSandboxOverMutualTLS(t *testing.T) {
	for _, profile := range []ofmcheck.XSigProfile{ofmcheck.XSigClassic, ofmcheck.XSigDetached} {
		t.Run(string(profile), func(t *testing.T) {
			sb, issuer, roots, s, ks := setup(t)
			register(sb, ks, ks.Active(pki.Transport).Kid, profile)
			cred, err := ofmcheck.CredentialsFrom(ctx, s, ks)
			if err != nil {
				t.Fatal(err)
			}
			env := ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect, Profile: profile}
			rep := ofmcheck.Check(ctx, env, cred, nil)
			for _, st := range rep.Steps {
				t.Logf("%-14s ok=%v %v kid=%s %s %s", st.Name, st.OK, st.Duration.Round(time.Microsecond), st.Kid, st.Detail, st.Error)
			}
			if !rep.OK || len(rep.Steps) != 7 {
				t.Fatalf("the check failed")
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
