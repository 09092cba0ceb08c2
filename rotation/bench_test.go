package rotation_test

import (
	"testing"

	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/pki"
	"github.com/ofmkeys/ofmkeys/rotation"
)

// BenchmarkRotationStep compares one full rotation step of the signing key
// (key generation, the key's write, the keyset's compare-and-set writes,
// and the new JWKS snapshot) with generating the RSA-2048 key alone.
func BenchmarkRotationStep(b *testing.B) {
	b.Run("raw-keygen", func(b *testing.B) {
		for b.Loop() {
			if _, err := pki.GenerateKey(2048); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rotation-step", func(b *testing.B) {
		s := newStore(b)
		if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, t0); err != nil {
			b.Fatal(err)
		}
		e := &rotation.Engine{Store: s, DCID: settings.DCID, Clock: &fakeClock{t: t0}, Actor: "bench", Log: quiet}
		for b.Loop() {
			if _, err := e.Rotate(ctx, pki.Signing, rotation.RotateOptions{Emergency: true}); err != nil {
				b.Fatal(err)
			}
			ks, version, err := keyset.Load(ctx, s, settings.DCID)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jwks.NewSnapshot(ks, version, jwks.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
