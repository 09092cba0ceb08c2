package jwks_test

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/jwks"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

var (
	ctx = context.Background()
	now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
)

var (
	fixtureOnce  sync.Once
	fixtureStore keystore.Store
	fixtureSet   *keyset.Keyset
)

// fixture is one keyset for the whole test binary.
func fixture(t testing.TB) (keystore.Store, *keyset.Keyset) {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			panic(err)
		}
		s, err := keystore.OpenFileStore(filepath.Join(dir, "store"), nil)
		if err != nil {
			panic(err)
		}
		ks, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: keyset.Settings{DCID: "0123456789abcdef01234567", ClientID: "client-1", Organisation: "Example"}}, now)
		if err != nil {
			panic(err)
		}
		fixtureStore, fixtureSet = s, ks
	})
	clone := *fixtureSet
	clone.Versions = slices.Clone(fixtureSet.Versions)
	return fixtureStore, &clone
}

func TestBuildPublishesSigAndEncWithOFMMembersOnly(t *testing.T) {
	_, ks := fixture(t)
	out, err := jwks.Marshal(ks, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("%d keys, want signing and encryption only (transport is not published by default)", len(doc.Keys))
	}
	want := []string{"alg", "e", "kid", "kty", "n", "use", "x5c", "x5t#S256"}
	for i, k := range doc.Keys {
		members := slices.Sorted(maps.Keys(k))
		if !slices.Equal(members, want) {
			t.Errorf("key %d members %v, want %v", i, members, want)
		}
		der, _ := base64.StdEncoding.DecodeString(k["x5c"].([]any)[0].(string))
		sum := sha256.Sum256(der)
		if k["kid"] != base64.RawURLEncoding.EncodeToString(sum[:]) || k["kid"] != k["x5t#S256"] {
			t.Errorf("key %d: kid %v is not the base64url SHA-256 of the certificate DER", i, k["kid"])
		}
	}
	if doc.Keys[0]["use"] != "sig" || doc.Keys[0]["alg"] != "PS256" || doc.Keys[1]["use"] != "enc" || doc.Keys[1]["alg"] != "RSA-OAEP-256" {
		t.Errorf("uses/algs: %v %v / %v %v", doc.Keys[0]["use"], doc.Keys[0]["alg"], doc.Keys[1]["use"], doc.Keys[1]["alg"])
	}
	assertNoPrivateMembers(t, out)
}

// assertNoPrivateMembers walks the whole document.
func assertNoPrivateMembers(t *testing.T, doc []byte) {
	t.Helper()
	var v any
	json.Unmarshal(doc, &v)
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if slices.Contains([]string{"d", "p", "q", "dp", "dq", "qi", "k"}, k) {
					t.Errorf("private member %q in the JWKS", k)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
}

func TestBuildPublishesOnlyThePublishedStates(t *testing.T) {
	_, ks := fixture(t)
	kidOf := func(p pki.Purpose) string { return ks.Active(p).Kid }
	sig, enc := kidOf(pki.Signing), kidOf(pki.Encryption)
	for _, tc := range []struct {
		state        keyset.State
		sigIn, encIn bool
	}{
		{keyset.Staged, false, false},
		{keyset.Published, true, true},
		{keyset.Active, true, true},
		{keyset.Retiring, true, false}, // signing stays for verifiers; encryption is withdrawn
		{keyset.Retired, false, false},
	} {
		for i := range ks.Versions {
			if ks.Versions[i].Purpose != pki.Transport {
				ks.Versions[i].State = tc.state
			}
		}
		set, err := jwks.Build(ks, jwks.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(set.Key(sig)) == 1; got != tc.sigIn {
			t.Errorf("%s signing key published = %v", tc.state, got)
		}
		if got := len(set.Key(enc)) == 1; got != tc.encIn {
			t.Errorf("%s encryption key published = %v", tc.state, got)
		}
	}
}

func TestCheckRefusesBrokenDocuments(t *testing.T) {
	_, ks := fixture(t)
	good, err := jwks.Marshal(ks, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(keys []map[string]any) []map[string]any) []byte {
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		json.Unmarshal(good, &doc)
		doc.Keys = f(doc.Keys)
		out, _ := json.Marshal(doc)
		return out
	}
	weak := testkeys.RSA(1024, 0)
	for _, tc := range []struct {
		name  string
		doc   []byte
		words string
	}{
		{"not JSON", []byte("{"), "not a JSON object"},
		{"no keys member", []byte(`{"kids":[]}`), "no \"keys\""},
		{"a duplicate kid", mutate(func(k []map[string]any) []map[string]any { k[1]["kid"] = k[0]["kid"]; return k }), "appears twice"},
		{"a private exponent", mutate(func(k []map[string]any) []map[string]any { k[0]["d"] = "AQAB"; return k }), "private or symmetric member \"d\""},
		{"a symmetric key", mutate(func(k []map[string]any) []map[string]any { k[0]["k"] = "AQAB"; return k }), "member \"k\""},
		{"x5c of another key", mutate(func(k []map[string]any) []map[string]any { k[0]["x5c"] = k[1]["x5c"]; return k }), "another key than n/e"},
		{"a wrong x5t#S256", mutate(func(k []map[string]any) []map[string]any { k[0]["x5t#S256"] = k[1]["x5t#S256"]; return k }), "x5t#S256 is not"},
		{"no use", mutate(func(k []map[string]any) []map[string]any { delete(k[0], "use"); return k }), "\"use\" missing"},
		{"RS256", mutate(func(k []map[string]any) []map[string]any { k[0]["alg"] = "RS256"; return k }), "OFM allows"},
		{"a kid with a path", mutate(func(k []map[string]any) []map[string]any { k[0]["kid"] = "../x"; return k }), "kid missing or not"},
		{"RSA-1024", mutate(func(k []map[string]any) []map[string]any {
			k[0]["n"] = base64.RawURLEncoding.EncodeToString(weak.N.Bytes())
			return k
		}), "at least 2048"},
		{"no encryption key", mutate(func(k []map[string]any) []map[string]any { return k[:1] }), "use enc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := jwks.Check(tc.doc, jwks.CheckOptions{RequireSigAndEnc: true})
			if !errors.Is(err, jwks.ErrInvalidJWKS) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Check = %v, want %q", err, tc.words)
			}
		})
	}
}

func signingKey(t testing.TB) (*rsa.PrivateKey, string, *jose.JSONWebKeySet) {
	t.Helper()
	s, ks := fixture(t)
	v := ks.Active(pki.Signing)
	key, _, err := keyset.LoadKey(ctx, s, ks.DCID, v)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwks.Build(ks, jwks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return key, v.Kid, set
}

func TestSignVerifyRoundTripAttachedAndDetached(t *testing.T) {
	key, kid, set := signingKey(t)
	jws, err := jwks.Sign(key, kid, []byte(`{"hello":"ofm"}`), false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jwks.Verify(jws, nil, set)
	if err != nil || string(got.Payload) != `{"hello":"ofm"}` || got.Kid != kid || got.Alg != "PS256" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	det, err := jwks.Sign(key, kid, []byte("body bytes"), true)
	if err != nil || !strings.Contains(det, "..") {
		t.Fatalf("detached = %q, %v", det, err)
	}
	if _, err := jwks.Verify(det, []byte("body bytes"), set); err != nil {
		t.Fatalf("detached verify: %v", err)
	}
	if _, err := jwks.Verify(det, []byte("body bytes "), set); !errors.Is(err, jwks.ErrVerify) {
		t.Fatalf("detached JWS over bytes that differ by one space: %v", err)
	}
	if _, err := jwks.Verify(jws, []byte("x"), set); err == nil || !strings.Contains(err.Error(), "carries its payload") {
		t.Fatalf("attached JWS where detached is expected: %v", err)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRefusesHostileTokens(t *testing.T) {
	key, kid, set := signingKey(t)
	payload := b64(`{"a":1}`)
	rs256, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	rsObj, _ := rs256.Sign([]byte(`{"a":1}`))
	rsJWS, _ := rsObj.CompactSerialize()

	// HS256 keyed with our public key's DER: the classic confusion attack.
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	hsInput := b64(`{"alg":"HS256","kid":"`+kid+`"}`) + "." + payload
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))
	hsJWS := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	attacker := testkeys.Key(6)
	embed, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: attacker}, (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", kid))
	embObj, _ := embed.Sign([]byte(`{"a":1}`))
	embJWS, _ := embObj.CompactSerialize()

	ps, _ := jwks.Sign(key, kid, []byte(`{"a":1}`), false)
	parts := strings.Split(ps, ".")
	critUnknown, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithHeader("crit", []string{"exp"}).WithHeader("exp", 1))
	critObj, _ := critUnknown.Sign([]byte("{}"))
	critJWS, _ := critObj.CompactSerialize()
	otherKid, _ := jwks.Sign(testkeys.Key(6), "someone-else", []byte("{}"), false)

	for _, tc := range []struct{ name, jws string }{
		{"alg none", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + payload + "."},
		{"alg NONE", b64(`{"alg":"NONE","kid":"`+kid+`"}`) + "." + payload + "."},
		{"HS256 with the public key as secret", hsJWS},
		{"RS256 where PS256 is required", rsJWS},
		{"an attacker key embedded as jwk", embJWS},
		{"a kid with a path", b64(`{"alg":"PS256","kid":"../../etc/passwd"}`) + "." + parts[1] + "." + parts[2]},
		{"a 10 kB kid", b64(`{"alg":"PS256","kid":"`+strings.Repeat("a", 10000)+`"}`) + "." + parts[1] + "." + parts[2]},
		{"a non-string kid", b64(`{"alg":"PS256","kid":7}`) + "." + parts[1] + "." + parts[2]},
		{"no kid", b64(`{"alg":"PS256"}`) + "." + parts[1] + "." + parts[2]},
		{"an unknown kid", otherKid},
		{"a flipped signature", parts[0] + "." + parts[1] + "." + flipChar(parts[2], 20)},
		{"four parts", ps + ".x"},
		{"100k dots", strings.Repeat(".", 100000)},
		{"an unknown crit", critJWS},
		{"a duplicate alg", b64(`{"alg":"PS256","alg":"none","kid":"`+kid+`"}`) + "." + parts[1] + "." + parts[2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := jwks.Verify(tc.jws, nil, set); !errors.Is(err, jwks.ErrVerify) {
				t.Fatalf("Verify = %v, want ErrVerify", err)
			}
		})
	}
}

func TestDecryptOpensWithTheRightKeyAndRefusesEverythingElse(t *testing.T) {
	cur, old := testkeys.Key(0), testkeys.Key(1)
	keys := []jwks.Decryptor{{Kid: "current", Key: cur}, {Kid: "previous", Key: old}}

	noKid, _ := jwks.Encrypt(&old.PublicKey, "", []byte("to the old key"))
	if pt, kid, err := jwks.Decrypt(noKid, keys); err != nil || string(pt) != "to the old key" || kid != "previous" {
		t.Fatalf("a kid-less JWE to the previous key: %q %q %v", pt, kid, err)
	}
	withKid, _ := jwks.Encrypt(&cur.PublicKey, "current", []byte("hi"))
	if pt, _, err := jwks.Decrypt(withKid, keys); err != nil || string(pt) != "hi" {
		t.Fatalf("JWE with kid: %v", err)
	}
	wrongKid, _ := jwks.Encrypt(&cur.PublicKey, "previous", []byte("hi"))
	stranger, _ := jwks.Encrypt(&testkeys.Key(2).PublicKey, "", []byte("hi"))
	unknownKid, _ := jwks.Encrypt(&cur.PublicKey, "gone", []byte("hi"))

	build := func(alg jose.KeyAlgorithm, enc jose.ContentEncryption, key any, opts *jose.EncrypterOptions) string {
		e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatalf("build %s/%s: %v", alg, enc, err)
		}
		o, _ := e.Encrypt([]byte(strings.Repeat("A", 1<<16)))
		s, _ := o.CompactSerialize()
		return s
	}
	parts := strings.Split(withKid, ".")
	flip := func(i int) string {
		p := slices.Clone(parts)
		b, _ := base64.RawURLEncoding.DecodeString(p[i])
		b[len(b)/2] ^= 1
		p[i] = base64.RawURLEncoding.EncodeToString(b)
		return strings.Join(p, ".")
	}
	pbes2 := b64(`{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","p2c":2147483647,"p2s":"AAAAAAAAAAAAAAAAAAAAAA"}`) + "." + parts[1] + "." + parts[2] + "." + parts[3] + "." + parts[4]

	for _, tc := range []struct{ name, jwe string }{
		{"RSA1_5", build(jose.RSA1_5, jose.A256GCM, &cur.PublicKey, nil)},
		{"A128KW", build(jose.A128KW, jose.A256GCM, make([]byte, 16), nil)},
		{"dir", build(jose.DIRECT, jose.A256GCM, make([]byte, 32), nil)},
		{"A128GCM content", build(jose.RSA_OAEP_256, jose.A128GCM, &cur.PublicKey, nil)},
		{"zip DEF", build(jose.RSA_OAEP_256, jose.A256GCM, &cur.PublicKey, &jose.EncrypterOptions{Compression: jose.DEFLATE})},
		{"PBES2 with p2c 2^31", pbes2},
		{"an empty encrypted_key", parts[0] + ".." + parts[2] + "." + parts[3] + "." + parts[4]},
		{"a truncated tag", strings.Join(append(slices.Clone(parts[:4]), parts[4][:8]), ".")},
		{"a flipped ciphertext bit", flip(3)},
		{"a flipped IV bit", flip(2)},
		{"a wrong-length IV", parts[0] + "." + parts[1] + ".AAAA." + parts[3] + "." + parts[4]},
		{"a kid naming another held key", wrongKid},
		{"a kid no held key has", unknownKid},
		{"addressed to a stranger", stranger},
		{"a kid with a path", b64(`{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"../x"}`) + "." + parts[1] + "." + parts[2] + "." + parts[3] + "." + parts[4]},
		{"four parts", strings.Join(parts[:4], ".")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			pt, _, err := jwks.Decrypt(tc.jwe, keys)
			if !errors.Is(err, jwks.ErrDecrypt) || pt != nil {
				t.Fatalf("Decrypt = %q, %v; want ErrDecrypt and no plaintext", pt, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("refusal took %v: work was done before the refusal", d)
			}
		})
	}
}

func TestParseSetRefusesPrivateKeys(t *testing.T) {
	priv := jose.JSONWebKey{Key: testkeys.Key(0), KeyID: "k", Use: "sig", Algorithm: "PS256"}
	doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv}})
	if _, err := jwks.ParseSet(doc); !errors.Is(err, jwks.ErrInvalidJWKS) {
		t.Fatalf("ParseSet of a private JWKS = %v", err)
	}
}

// flipChar changes the base64url character at i to another one (a
// character in the middle: the last may only carry padding bits).
func flipChar(s string, i int) string {
	r := byte('A')
	if s[i] == 'A' {
		r = 'B'
	}
	return s[:i] + string(r) + s[i+1:]
}
