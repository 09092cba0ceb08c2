package jwks_test

import (
	"strings"
	"testing"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/jwks"
)

// Verify, Decrypt and Check take hostile input: they must refuse it
// without panicking and never return a plaintext on error.
func FuzzVerify(f *testing.F) {
	key, kid, set := signingKey(f)
	good, _ := jwks.Sign(key, kid, []byte(`{"a":1}`), false)
	f.Add(good)
	f.Add(good + ".")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, jws string) {
		if v, err := jwks.Verify(jws, nil, set); err == nil && v.Kid != kid {
			t.Fatalf("verified with kid %q", v.Kid)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	keys := []jwks.Decryptor{{Kid: "k", Key: testkeys.Key(0)}}
	good, _ := jwks.Encrypt(&testkeys.Key(0).PublicKey, "", []byte("secret"))
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwiemlwIjoiREVGIn0....")
	f.Fuzz(func(t *testing.T, jwe string) {
		pt, _, err := jwks.Decrypt(jwe, keys)
		if err != nil && pt != nil {
			t.Fatal("plaintext returned with an error")
		}
	})
}

func FuzzCheck(f *testing.F) {
	_, ks := fixture(f)
	doc, _ := jwks.Marshal(ks, jwks.Options{})
	f.Add(doc)
	f.Add([]byte(`{"keys":[{"kty":"RSA","d":"x"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_ = jwks.Check(doc, jwks.CheckOptions{RequireSigAndEnc: true})
	})
}
