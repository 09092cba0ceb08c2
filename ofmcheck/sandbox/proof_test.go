package sandbox_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/ofmcheck"
	"github.com/ofmkeys/ofmkeys/ofmcheck/sandbox"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// provenSetup registers the DC with a jwks_uri serving its current keyset
// and returns an engine whose Prover checks against the sandbox.
func provenSetup(t *testing.T) (*sandbox.Server, keystore.Store, *rotation.Engine, *ofmcheck.Prover) {
	t.Helper()
	sb, issuer, roots, s, ks := setup(t)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, _, _ := keyset.Load(r.Context(), s, dcID)
		doc, _ := jwks.Marshal(cur, jwks.Options{})
		w.Write(doc)
	}))
	t.Cleanup(jwksSrv.Close)
	sb.Register(sandbox.Client{ClientID: clientID, DCID: dcID, RedirectURIs: []string{redirect}, Transport: []string{ks.Active(pki.Transport).Kid}, JWKSURI: jwksSrv.URL})
	prover := &ofmcheck.Prover{
		Env:               ofmcheck.Env{Issuer: issuer, Roots: roots, ClientID: clientID, DCID: dcID, DPID: "DP9876543210", RedirectURI: redirect},
		Store:             s,
		RegisterTransport: func(tp string) { sb.AddTransport(clientID, tp) },
	}
	e := &rotation.Engine{Store: s, DCID: dcID, Actor: "proof-test", Prover: prover, AutoConfirm: true, Log: quiet}
	return sb, s, e, prover
}

func TestRotationsWhoseProofPasses(t *testing.T) {
	_, s, e, prover := provenSetup(t)
	// Signing: the new key is published and proven (the sandbox refetches
	// the JWKS for its kid) before anything signs with it for real.
	if _, err := e.Rotate(ctx, pki.Signing, rotation.RotateOptions{}); err != nil {
		t.Fatalf("signing rotation: %v", err)
	}
	if prover.Last == nil || !prover.Last.OK {
		t.Fatal("no passing proof was recorded")
	}
	ks, _, _ := keyset.Load(ctx, s, dcID)
	for _, v := range ks.Versions {
		if v.Halted != "" {
			t.Fatalf("%s %s halted: %s", v.Purpose, v.Kid, v.Halted)
		}
	}
	// Transport: staged, awaiting registration, then switched by the
	// engine once a handshake with the new certificate passes the check.
	old := ks.Active(pki.Transport).Kid
	if _, err := e.Rotate(ctx, pki.Transport, rotation.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks, _, _ = keyset.Load(ctx, s, dcID)
	if ks.Active(pki.Transport).Kid == old {
		t.Fatalf("the transport certificate was not switched after its proof: %+v", res)
	}
	if prover.Last.Steps[4].Kid != ks.Active(pki.Transport).Kid {
		t.Fatalf("the proof's token step used %s, not the new certificate", prover.Last.Steps[4].Kid)
	}
}

func TestAFailedProofHaltsTheRotation(t *testing.T) {
	sb, s, e, _ := provenSetup(t)
	sb.Misbehave(sandbox.TamperedJWE)
	_, err := e.Rotate(ctx, pki.Signing, rotation.RotateOptions{})
	if err == nil || !strings.Contains(err.Error(), "halted") || !strings.Contains(err.Error(), "data-call") {
		t.Fatalf("rotation with a failing proof: %v", err)
	}
	ks, _, _ := keyset.Load(ctx, s, dcID)
	var halted *keyset.Version
	for i := range ks.Versions {
		if ks.Versions[i].Halted != "" {
			halted = &ks.Versions[i]
		}
	}
	if halted == nil || halted.State != keyset.Published {
		t.Fatal("the new signing key is not halted where it stood")
	}
	if last := ks.Audit[len(ks.Audit)-1]; last.Action != "halt" || !strings.Contains(last.Reason, "proof failed") {
		t.Fatalf("the audit log does not record the halt: %+v", last)
	}
	// The engine does not go on with a halted rotation.
	sb.Misbehave(sandbox.Behave)
	e.Clock = shiftedClock{}
	if res, _ := e.Reconcile(ctx); len(res.Done) != 0 {
		t.Fatalf("a halted rotation moved on: %+v", res.Done)
	}
	steps := rotation.Plan(ks, e.Clock.Now(), e.Policy)
	found := false
	for _, st := range steps {
		found = found || strings.Contains(st.Problem, "halted")
	}
	if !found {
		t.Fatal("the plan does not show the halt")
	}
}
