package vaultstore_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/internal/vaulttest"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

// The policy in examples/ is all ofmkeys needs, and no more.
func TestExamplePolicyIsEnoughAndNoMore(t *testing.T) {
	hcl, err := os.ReadFile("../examples/vault-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := vaulttest.Start(t)
	v.Policy(t, "ofmkeys", string(hcl))
	s := open(t, config(v.Addr, v.Token(t, "ofmkeys")))

	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	settings := keyset.Settings{DCID: "0123456789abcdef01234567", ClientID: "client-1", Organisation: "Example"}
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now); err != nil {
		t.Fatalf("init under the example policy: %v", err)
	}
	dc, err := keyset.ResolveDC(ctx, s, "")
	if err != nil || dc != settings.DCID {
		t.Fatalf("listing keysets: %q, %v", dc, err)
	}
	ks, _, err := keyset.Load(ctx, s, dc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := keyset.LoadKey(ctx, s, dc, ks.Active(pki.Signing)); err != nil {
		t.Fatalf("reading a key: %v", err)
	}
	csr, err := keyset.NewCSR(ctx, s, settings, pki.Transport, 0, now)
	if err != nil || len(csr) == 0 {
		t.Fatalf("making a CSR (a pending key): %v", err)
	}

	// Outside ofmkeys/ it is denied.
	_, err = v.Client(t, v.Token(t, "ofmkeys")).Logical().Write("secret/data/payments/db", map[string]any{"data": map[string]any{"password": "x"}})
	if err == nil {
		t.Fatal("the policy allows writing outside ofmkeys/")
	}
	other := config(v.Addr, v.Token(t, "ofmkeys"))
	other.Prefix = "payments"
	if _, _, err := open(t, other).Get(ctx, "ofmkeys/x/state"); !errors.Is(err, keystore.ErrPermission) {
		t.Fatalf("reading outside the policy = %v, want ErrPermission", err)
	}
}
