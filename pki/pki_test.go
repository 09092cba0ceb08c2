package pki_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/pki"
)

var now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

var subject = pki.Subject{Organisation: "Example Fintech Sdn Bhd", CommonName: "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"}

func selfSigned(t *testing.T, p pki.Purpose, key *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	c, err := pki.SelfSign(key, pki.Template{Purpose: p, Subject: subject, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckKeySizeAcceptsOnlyOFMSizes(t *testing.T) {
	for _, tc := range []struct {
		bits int
		ok   bool
		want string
	}{
		{2048, true, ""}, {3072, true, ""}, {4096, true, ""},
		{1024, false, "OFM requires at least 2048"},
		{2047, false, "OFM requires at least 2048"},
		{0, false, "OFM requires at least 2048"},
		{5000, false, "use 2048, 3072 or 4096"},
		{16384, false, "use 2048, 3072 or 4096"},
	} {
		err := pki.CheckKeySize(tc.bits)
		if (err == nil) != tc.ok || (err != nil && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, pki.ErrWeakKey))) {
			t.Errorf("CheckKeySize(%d) = %v", tc.bits, err)
		}
	}
}

func TestGenerateKeysMakesDistinctKeysOfTheSize(t *testing.T) {
	keys, err := pki.GenerateKeys(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if k.N.BitLen() != 2048 {
			t.Errorf("key %d is %d bits", i, k.N.BitLen())
		}
		for j := range i {
			if k.Equal(keys[j]) {
				t.Errorf("keys %d and %d are equal", i, j)
			}
		}
	}
	if _, err := pki.GenerateKeys(1024, 3); !errors.Is(err, pki.ErrWeakKey) {
		t.Errorf("GenerateKeys(1024) = %v, want ErrWeakKey", err)
	}
}

func TestSelfSignFollowsThePurposeProfile(t *testing.T) {
	for _, tc := range []struct {
		purpose pki.Purpose
		ku      x509.KeyUsage
		eku     []x509.ExtKeyUsage
	}{
		{pki.Transport, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{pki.Signing, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, nil},
		{pki.Encryption, x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment, nil},
	} {
		t.Run(string(tc.purpose), func(t *testing.T) {
			c := selfSigned(t, tc.purpose, testkeys.Key(0))
			if c.KeyUsage != tc.ku {
				t.Errorf("key usage %v, want %v", c.KeyUsage, tc.ku)
			}
			if len(c.ExtKeyUsage) != len(tc.eku) || (len(tc.eku) > 0 && c.ExtKeyUsage[0] != tc.eku[0]) {
				t.Errorf("EKU %v, want %v", c.ExtKeyUsage, tc.eku)
			}
			if c.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
			}
			if got, want := c.NotBefore, now.Add(-pki.Backdate); !got.Equal(want) {
				t.Errorf("notBefore %v, want %v (backdated)", got, want)
			}
			if got, want := c.NotAfter, now.AddDate(0, 13, 0); !got.Equal(want) {
				t.Errorf("notAfter %v, want %v (13 months)", got, want)
			}
			if c.Subject.CommonName != subject.CommonName || c.Subject.Organization[0] != subject.Organisation {
				t.Errorf("subject %v", c.Subject)
			}
			if c.IsCA {
				t.Error("leaf is a CA")
			}
			if err := pki.CheckCertificate([]*x509.Certificate{c}, pki.CheckOptions{Purpose: tc.purpose, Now: now, Key: testkeys.Key(0)}); err != nil {
				t.Errorf("own certificate fails the import check: %v", err)
			}
		})
	}
}

func TestSelfSignRefusesShortValidityUnlessAllowed(t *testing.T) {
	tmpl := pki.Template{Purpose: pki.Signing, Subject: subject, Now: now, NotAfter: now.AddDate(0, 6, 0)}
	if _, err := pki.SelfSign(testkeys.Key(0), tmpl); !errors.Is(err, pki.ErrShortValidity) || !strings.Contains(err.Error(), "12 months") {
		t.Fatalf("6-month certificate: %v, want ErrShortValidity", err)
	}
	tmpl.AllowShortValidity = true
	c, err := pki.SelfSign(testkeys.Key(0), tmpl)
	if err != nil {
		t.Fatalf("6-month certificate with the sandbox setting: %v", err)
	}
	if !c.NotAfter.Equal(now.AddDate(0, 6, 0)) {
		t.Errorf("notAfter %v", c.NotAfter)
	}
}

func TestSerialsArePositive128BitRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 300 {
		c := selfSigned(t, pki.Signing, testkeys.Key(0))
		s := c.SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 128 || len(s.Bytes()) > 20 {
			t.Fatalf("serial %x out of range", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %x repeated", s)
		}
		seen[s.String()] = true
	}
}

func TestCreateCSRCarriesTheProfile(t *testing.T) {
	der, err := pki.CreateCSR(testkeys.Key(1), pki.Transport, subject)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	// crypto/x509 lifts requested extensions into a template via CreateCertificate.
	var sawKU, sawEKU bool
	for _, e := range csr.Extensions {
		sawKU = sawKU || e.Id.String() == "2.5.29.15"
		sawEKU = sawEKU || e.Id.String() == "2.5.29.37"
	}
	if !sawKU || !sawEKU {
		t.Errorf("CSR extensions KU=%v EKU=%v, want both", sawKU, sawEKU)
	}
	if csr.Subject.CommonName != subject.CommonName {
		t.Errorf("CN %q", csr.Subject.CommonName)
	}
}

// ca makes a CA and a leaf it issued for key, with the given profile.
func caIssued(t *testing.T, key *rsa.PrivateKey, mod func(*x509.Certificate)) (leaf, ca *x509.Certificate) {
	t.Helper()
	caKey := testkeys.Key(5)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "client", Organization: []string{"Example"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return leaf, ca
}

func TestCheckCertificateRefusesEachBrokenRule(t *testing.T) {
	key := testkeys.Key(1)
	good, ca := caIssued(t, key, nil)
	noClientAuth, _ := caIssued(t, key, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
	expired, _ := caIssued(t, key, func(c *x509.Certificate) { c.NotBefore = now.AddDate(-2, 0, 0); c.NotAfter = now.AddDate(0, 0, -1) })
	future, _ := caIssued(t, key, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour); c.NotAfter = now.AddDate(2, 0, 0) })
	short, _ := caIssued(t, key, func(c *x509.Certificate) { c.NotAfter = now.AddDate(0, 3, 0) })
	weak, _ := caIssued(t, testkeys.RSA(1024, 0), nil)

	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		opts  pki.CheckOptions
		want  error
		words string
	}{
		{"a good CA-issued chain passes", []*x509.Certificate{good, ca}, pki.CheckOptions{Purpose: pki.Transport, Key: key}, nil, ""},
		{"another key is a mismatch", []*x509.Certificate{good, ca}, pki.CheckOptions{Purpose: pki.Transport, Key: testkeys.Key(2)}, pki.ErrKeyMismatch, "certifies another key"},
		{"a transport cert without clientAuth is refused", []*x509.Certificate{noClientAuth}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrProfile, "TLS Web Client Authentication"},
		{"an expired cert is refused", []*x509.Certificate{expired}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrNotValidNow, "expired on"},
		{"a not-yet-valid cert is refused", []*x509.Certificate{future}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrNotValidNow, "not valid before"},
		{"a 3-month cert is refused in production", []*x509.Certificate{short}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrShortValidity, "12 months"},
		{"a 3-month cert passes when short validity is allowed", []*x509.Certificate{short}, pki.CheckOptions{Purpose: pki.Transport, AllowShortValidity: true}, nil, ""},
		{"RSA-1024 is refused", []*x509.Certificate{weak}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrWeakKey, "at least 2048"},
		{"a chain in the wrong order is refused", []*x509.Certificate{ca, good}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrChain, "leaf first"},
		{"a CA-issued CA certificate is no leaf", []*x509.Certificate{subCA(t)}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrProfile, "is a CA certificate"},
		{"an issuer that is not the issuer is refused", []*x509.Certificate{good, good}, pki.CheckOptions{Purpose: pki.Transport}, pki.ErrChain, "leaf first"},
		{"an encryption cert without keyEncipherment is refused", []*x509.Certificate{selfSignedFor(t, pki.Signing)}, pki.CheckOptions{Purpose: pki.Encryption}, pki.ErrProfile, "Key Encipherment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = now
			err := pki.CheckCertificate(tc.chain, tc.opts)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("error %v, want %v containing %q", err, tc.want, tc.words)
			}
		})
	}
}

func selfSignedFor(t *testing.T, p pki.Purpose) *x509.Certificate {
	return selfSigned(t, p, testkeys.Key(0))
}

func TestParsePEMRefusesMalformedInput(t *testing.T) {
	key := testkeys.Key(0)
	pkcs8 := pki.EncodePrivateKey(key)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testkeys.Key(1))})
	cert := pki.EncodeCertificates([]*x509.Certificate{selfSignedFor(t, pki.Signing)})
	//lint:ignore SA1019 legacy encrypted PEM is what old tools produce; we must read it.
	encrypted, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	encPEM := pem.EncodeToMemory(encrypted)

	keyCases := []struct {
		name, in, pass, words string
	}{
		{"junk before the block", "hello\n" + string(pkcs8), "", "line 1: unexpected text"},
		{"trailing data after the block", string(pkcs8) + "trailing\n", "", "line 29: unexpected text"},
		{"two keys", string(pkcs8) + string(pkcs8), "", "found 2 private keys"},
		{"PKCS#1 and PKCS#8 mixed", string(pkcs1) + string(pkcs8), "", "found 2 private keys"},
		{"a certificate where a key should be", string(cert), "", "want a private key"},
		{"no PEM at all", "not pem", "", "unexpected text"},
		{"empty input", "", "", "no PEM data"},
		{"a truncated block", string(pkcs8[:len(pkcs8)-30]), "", "does not decode"},
		{"an encrypted key without passphrase", string(encPEM), "", "no passphrase was given"},
		{"an encrypted key with the wrong passphrase", string(encPEM), "wrong", "wrong passphrase"},
	}
	for _, tc := range keyCases {
		t.Run("key: "+tc.name, func(t *testing.T) {
			_, err := pki.ParsePrivateKey([]byte(tc.in), []byte(tc.pass))
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("error %v, want %q", err, tc.words)
			}
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "hello") {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
	if k, err := pki.ParsePrivateKey(encPEM, []byte("s3cret")); err != nil || !k.Equal(key) {
		t.Errorf("encrypted key with the right passphrase: %v", err)
	}
	if k, err := pki.ParsePrivateKey(pkcs1, nil); err != nil || !k.Equal(testkeys.Key(1)) {
		t.Errorf("PKCS#1 key: %v", err)
	}
	if _, err := pki.ParsePrivateKey(pki.EncodePrivateKey(testkeys.RSA(1024, 0)), nil); !errors.Is(err, pki.ErrWeakKey) {
		t.Errorf("RSA-1024 key: %v, want ErrWeakKey", err)
	}

	for _, tc := range []struct{ name, in, words string }{
		{"a key where a certificate should be", string(pkcs8), "want CERTIFICATE"},
		{"junk between certificates", string(cert) + "junk\n" + string(cert), "unexpected text \"junk\""},
		{"a corrupt DER body", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"},
	} {
		t.Run("cert: "+tc.name, func(t *testing.T) {
			_, err := pki.ParseCertificates([]byte(tc.in))
			if !errors.Is(err, pki.ErrMalformedPEM) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("error %v, want %q", err, tc.words)
			}
		})
	}
}

// Known answers: the thumbprints of testdata/kat-cert.pem as computed by
// openssl (`openssl x509 -outform DER | openssl dgst -sha256 -binary |
// base64url`), and RFC 7638 §3.1's example key.
func TestThumbprintsMatchKnownAnswers(t *testing.T) {
	data, err := os.ReadFile("testdata/kat-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pki.ParseCertificates(data)
	if err != nil {
		t.Fatal(err)
	}
	c := chain[0]
	for _, tc := range []struct{ got, want string }{
		{pki.X5tS256(c), "P0EX2xiN1GjNNsc_gExSUEeynJBcHa2cy0EdJXNHZbQ"},
		{pki.X5t(c), "BS8bBAjTB6-B2o0G2Aw9R3uh8R8"},
		{pki.FingerprintSHA256(c), "3F:41:17:DB:18:8D:D4:68:CD:36:C7:3F:80:4C:52:50:47:B2:9C:90:5C:1D:AD:9C:CB:41:1D:25:73:47:65:B4"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	if kid, _ := pki.KidX5tS256.Kid(c); kid != "P0EX2xiN1GjNNsc_gExSUEeynJBcHa2cy0EdJXNHZbQ" || len(kid) != 43 {
		t.Errorf("default kid %q", kid)
	}

	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got := pki.JWKThumbprint(pub); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RFC 7638 thumbprint %s", got)
	}
}

func TestParseKidPolicy(t *testing.T) {
	for in, want := range map[string]pki.KidPolicy{"": pki.KidX5tS256, "x5t#S256": pki.KidX5tS256, "jwk-thumbprint": pki.KidJWKThumbprint, "x5t": pki.KidX5t} {
		if got, err := pki.ParseKidPolicy(in); err != nil || got != want {
			t.Errorf("ParseKidPolicy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := pki.ParseKidPolicy("sha1"); err == nil || !strings.Contains(err.Error(), "x5t#S256") {
		t.Errorf("unknown policy: %v", err)
	}
}

// subCA is a CA certificate issued by another CA.
func subCA(t *testing.T) *x509.Certificate {
	c, _ := caIssued(t, testkeys.Key(2), func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
	})
	return c
}
