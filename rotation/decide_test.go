package rotation_test

import (
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

func TestDecisionChainReasons(t *testing.T) {
	s := newStore(t)
	base, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, NotAfter: t0.Add(60 * 24 * time.Hour), AllowShortValidity: true}, t0)
	if err != nil {
		t.Fatal(err)
	}
	clone := func(mod func(ks *keyset.Keyset)) *keyset.Keyset {
		ks := *base
		ks.Versions = append([]keyset.Version(nil), base.Versions...)
		if mod != nil {
			mod(&ks)
		}
		return &ks
	}
	sig := func(ks *keyset.Keyset) *keyset.Version { return ks.Active(pki.Signing) }
	for _, tc := range []struct {
		name string
		ks   *keyset.Keyset
		now  time.Time
		pol  rotation.Policy
		want rotation.Reason
		act  bool
	}{
		{"fresh: not due", clone(nil), t0, crashPolicy, rotation.ReasonNotDue, false},
		{"at the renewal time: due", clone(nil), t0.Add(30*24*time.Hour + time.Minute), crashPolicy, rotation.ReasonDue, true},
		{"past expiry: expired", clone(nil), t0.Add(61 * 24 * time.Hour), crashPolicy, rotation.ReasonExpired, true},
		{"no active key: missing", clone(func(ks *keyset.Keyset) { sig(ks).State = keyset.Retired }), t0, crashPolicy, rotation.ReasonMissing, true},
		{"a successor published: in progress", clone(func(ks *keyset.Keyset) {
			v := *sig(ks)
			v.Kid, v.State = "next", keyset.Published
			ks.Versions = append(ks.Versions, v)
		}), t0, crashPolicy, rotation.ReasonInProgress, false},
		{"the kid policy changed: profile drift", clone(func(ks *keyset.Keyset) { ks.KidPolicy = pki.KidJWKThumbprint }), t0, crashPolicy, rotation.ReasonProfileDrift, true},
		{"larger keys configured: profile drift", clone(nil), t0, rotation.Policy{Bits: 3072}, rotation.ReasonProfileDrift, true},
		{"renew-before longer than the life: bad lifetime, no loop", clone(nil), t0, rotation.Policy{RenewBefore: 90 * 24 * time.Hour}, rotation.ReasonBadLifetime, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rotation.Decide(tc.ks, pki.Signing, tc.now, tc.pol)
			if d.Reason != tc.want || d.Act != tc.act {
				t.Fatalf("Decide = %s (act %v): %s; want %s (act %v)", d.Reason, d.Act, d.Message, tc.want, tc.act)
			}
		})
	}
}
