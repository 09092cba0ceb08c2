package keyset_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/keyset"
	"github.com/ofmkeys/ofmkeys/keystore"
	"github.com/ofmkeys/ofmkeys/pki"
)

var (
	ctx = context.Background()
	now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
)

var settings = keyset.Settings{
	DCID: "0123456789abcdef01234567", ClientID: "6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b", Organisation: "Example Fintech Sdn Bhd",
}

func newStore(t *testing.T) *keystore.FileStore {
	t.Helper()
	s, err := keystore.OpenFileStore(filepath.Join(t.TempDir(), "store"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateMakesThreeActiveVersionsWithThumbprintKids(t *testing.T) {
	s := newStore(t)
	ks, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Versions) != 3 {
		t.Fatalf("%d versions", len(ks.Versions))
	}
	for _, p := range pki.Purposes {
		v := ks.Active(p)
		if v == nil {
			t.Fatalf("no active %s version", p)
		}
		key, chain, err := keyset.LoadKey(ctx, s, ks.DCID, v)
		if err != nil {
			t.Fatal(err)
		}
		if v.Kid != pki.X5tS256(chain[0]) || len(v.Kid) != 43 {
			t.Errorf("%s kid %q is not the x5t#S256 of its certificate", p, v.Kid)
		}
		if key.N.BitLen() != 2048 || v.Source != keyset.SelfSigned {
			t.Errorf("%s: %d bits, source %s", p, key.N.BitLen(), v.Source)
		}
		if err := pki.CheckProfile(chain[0], p); err != nil {
			t.Error(err)
		}
		if chain[0].Subject.CommonName != settings.ClientID {
			t.Errorf("CN %q, want the client_id", chain[0].Subject.CommonName)
		}
	}
	loaded, _, err := keyset.Load(ctx, s, settings.DCID)
	if err != nil || len(loaded.Versions) != 3 || loaded.KidPolicy != pki.KidX5tS256 || loaded.Environment != keyset.Sandbox {
		t.Fatalf("Load = %+v, %v", loaded, err)
	}
	if dc, err := keyset.ResolveDC(ctx, s, ""); err != nil || dc != settings.DCID {
		t.Fatalf("ResolveDC = %q, %v", dc, err)
	}
}

func TestCreateRefusesToOverwriteWithoutForce(t *testing.T) {
	s := newStore(t)
	first, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now); !errors.Is(err, keyset.ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second Create = %v, want ErrExists with a --force hint", err)
	}
	second, err := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings, Force: true}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Versions) != 6 {
		t.Fatalf("%d versions after --force, want 6 (old ones kept)", len(second.Versions))
	}
	for i, e := range second.Audit {
		if e.Seq != int64(i+1) {
			t.Fatalf("audit event %d has seq %d: the log must go on numbering, not restart", i+1, e.Seq)
		}
	}
	if n := len(second.Audit); n != 9 {
		t.Fatalf("%d audit events, want 3 generate + 3 retire + 3 generate", n)
	}
	for _, p := range pki.Purposes {
		if second.Active(p).Kid == first.Active(p).Kid {
			t.Errorf("%s kept its kid", p)
		}
		old := second.Find(first.Active(p).Kid)[0]
		if old.State != keyset.Retired {
			t.Errorf("old %s version is %s, want retired", p, old.State)
		}
		if _, _, err := keyset.LoadKey(ctx, s, settings.DCID, old); err != nil {
			t.Errorf("old %s key was lost: %v", p, err)
		}
	}
}

func TestCreateRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*keyset.CreateOptions)
		words string
	}{
		{"RSA-1024", func(o *keyset.CreateOptions) { o.Bits = 1024 }, "at least 2048"},
		{"a dc_id with a slash", func(o *keyset.CreateOptions) { o.DCID = "../etc" }, "dc_id"},
		{"no organisation", func(o *keyset.CreateOptions) { o.Organisation = "" }, "organisation is required"},
		{"no client_id", func(o *keyset.CreateOptions) { o.ClientID = "" }, "client_id is required"},
		{"a 6-month validity", func(o *keyset.CreateOptions) { o.NotAfter = now.AddDate(0, 6, 0) }, "12 months"},
		{"self-signed in production", func(o *keyset.CreateOptions) { o.Environment = keyset.Production }, "ofmkeys csr"},
		{"an unknown kid policy", func(o *keyset.CreateOptions) { o.KidPolicy = "md5" }, "kid policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			o := keyset.CreateOptions{Settings: settings}
			tc.mod(&o)
			if _, err := keyset.Create(ctx, s, o, now); err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Create = %v, want %q", err, tc.words)
			}
			if names, _ := s.List(ctx, keystore.Root); len(names) != 0 {
				t.Fatalf("a refused Create stored %v", names)
			}
		})
	}
}

// testCA issues certificates the way PayNet's CA would.
type testCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	key := testkeys.Key(7)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test OFM CA"},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key}
}

// sign issues a certificate for a CSR, copying its requested extensions.
func (ca *testCA) sign(t *testing.T, csrPEM []byte, months int) []byte {
	t.Helper()
	b, _ := pemDecode(csrPEM)
	csr, err := x509.ParseCertificateRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: csr.Subject,
		NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(0, months, 0), ExtraExtensions: csr.Extensions}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return pki.EncodeCertificates([]*x509.Certificate{leaf, ca.cert})
}

func TestCSRThenImportOfTheCAIssuedCertificate(t *testing.T) {
	s := newStore(t)
	prod := settings
	prod.Environment = keyset.Production
	ca := newCA(t)
	for _, p := range pki.Purposes {
		csr, err := keyset.NewCSR(ctx, s, prod, p, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		v, err := keyset.Import(ctx, s, keyset.ImportOptions{Purpose: p, Chain: ca.sign(t, csr, 13), Settings: prod}, now)
		if err != nil {
			t.Fatalf("import %s: %v", p, err)
		}
		if v.State != keyset.Active || v.Source != keyset.CAIssued {
			t.Errorf("%s imported as %s/%s", p, v.State, v.Source)
		}
	}
	ks, _, _ := keyset.Load(ctx, s, prod.DCID)
	if len(ks.Pending) != 0 || len(ks.Versions) != 3 {
		t.Fatalf("after import: %d pending, %d versions", len(ks.Pending), len(ks.Versions))
	}
	for _, p := range pki.Purposes {
		if _, chain, err := keyset.LoadKey(ctx, s, ks.DCID, ks.Active(p)); err != nil || len(chain) != 2 {
			t.Fatalf("%s: chain of %d, %v", p, len(chain), err)
		}
	}
	if names, _ := s.List(ctx, "ofmkeys/"+prod.DCID+"/pending/signing"); len(names) != 0 {
		t.Errorf("pending keys left behind: %v", names)
	}

	// A second import for a purpose that has an active key is staged.
	csr, _ := keyset.NewCSR(ctx, s, prod, pki.Signing, 0, now)
	v, err := keyset.Import(ctx, s, keyset.ImportOptions{Purpose: pki.Signing, Chain: ca.sign(t, csr, 13), Settings: prod}, now)
	if err != nil || v.State != keyset.Staged {
		t.Fatalf("second signing import: %v, %v; want staged", v, err)
	}
}

func TestImportRefusesAndStoresNothing(t *testing.T) {
	ca := newCA(t)
	prod := settings
	prod.Environment = keyset.Production
	starterKey := testkeys.Key(3)
	selfSigned, _ := pki.SelfSign(starterKey, pki.Template{Purpose: pki.Transport, Subject: pki.Subject{Organisation: "X", CommonName: "c"}, Now: now})
	selfPEM := pki.EncodeCertificates([]*x509.Certificate{selfSigned})

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s keystore.Store) keyset.ImportOptions
		words string
	}{
		{"a certificate for no pending key", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			csr, _ := keyset.NewCSR(ctx, s, prod, pki.Signing, 0, now)
			_ = csr
			other, _ := pki.CreateCSR(testkeys.Key(4), pki.Signing, pki.Subject{Organisation: "X", CommonName: "c"})
			return keyset.ImportOptions{Purpose: pki.Signing, Chain: ca.sign(t, pki.EncodeCSR(other), 13), Settings: prod}
		}, "no pending key"},
		{"the wrong purpose for the pending key", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			csr, _ := keyset.NewCSR(ctx, s, prod, pki.Signing, 0, now)
			return keyset.ImportOptions{Purpose: pki.Transport, Chain: ca.sign(t, csr, 13), Settings: prod}
		}, "use --purpose signing"},
		{"a 6-month certificate in production", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			csr, _ := keyset.NewCSR(ctx, s, prod, pki.Signing, 0, now)
			return keyset.ImportOptions{Purpose: pki.Signing, Chain: ca.sign(t, csr, 6), Settings: prod}
		}, "12 months"},
		{"a key that does not match the certificate", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			return keyset.ImportOptions{Purpose: pki.Transport, Chain: selfPEM, Key: pki.EncodePrivateKey(testkeys.Key(4)), Settings: settings}
		}, "certifies another key"},
		{"a self-signed certificate in production", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			return keyset.ImportOptions{Purpose: pki.Transport, Chain: selfPEM, Key: pki.EncodePrivateKey(starterKey), Settings: prod}
		}, "only CA-issued"},
		{"a signing certificate imported as transport", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			sig, _ := pki.SelfSign(starterKey, pki.Template{Purpose: pki.Signing, Subject: pki.Subject{Organisation: "X", CommonName: "c"}, Now: now})
			return keyset.ImportOptions{Purpose: pki.Transport, Chain: pki.EncodeCertificates([]*x509.Certificate{sig}), Key: pki.EncodePrivateKey(starterKey), Settings: settings}
		}, "TLS Web Client Authentication"},
		{"junk instead of a certificate", func(t *testing.T, s keystore.Store) keyset.ImportOptions {
			return keyset.ImportOptions{Purpose: pki.Transport, Chain: []byte("junk"), Key: pki.EncodePrivateKey(starterKey), Settings: settings}
		}, "certificate: malformed PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			o := tc.setup(t, s)
			before := snapshot(t, s)
			_, err := keyset.Import(ctx, s, o, now)
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("Import = %v, want %q", err, tc.words)
			}
			if after := snapshot(t, s); after != before {
				t.Fatalf("a refused import changed the store:\n%s\n->\n%s", before, after)
			}
		})
	}
}

func TestImportOfAStarterPackInTheSandbox(t *testing.T) {
	s := newStore(t)
	key := testkeys.Key(3)
	short, _ := pki.SelfSign(key, pki.Template{Purpose: pki.Transport, Subject: pki.Subject{Organisation: "X", CommonName: "c"}, Now: now, NotAfter: now.AddDate(0, 3, 0), AllowShortValidity: true})
	v, err := keyset.Import(ctx, s, keyset.ImportOptions{Purpose: pki.Transport, Chain: pki.EncodeCertificates([]*x509.Certificate{short}), Key: pki.EncodePrivateKey(key), Settings: settings}, now)
	if err != nil {
		t.Fatalf("sandbox import of a 3-month self-signed pair: %v", err)
	}
	if v.Source != keyset.Imported || v.State != keyset.Active {
		t.Fatalf("%s/%s", v.Source, v.State)
	}
}

func TestLoadKeyReportsAMissingKeyAsAnIntegrityError(t *testing.T) {
	s := newStore(t)
	ks, _ := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now)
	v := ks.Active(pki.Signing)
	p, _ := keystore.KeyPath(ks.DCID, "signing", v.Kid)
	s.Delete(ctx, p)
	if _, _, err := keyset.LoadKey(ctx, s, ks.DCID, v); !errors.Is(err, keyset.ErrIntegrity) {
		t.Fatalf("LoadKey = %v, want ErrIntegrity", err)
	}
}

func TestSelectByPurposeOrKidNeverTouchesTheStore(t *testing.T) {
	s := newStore(t)
	ks, _ := keyset.Create(ctx, s, keyset.CreateOptions{Settings: settings}, now)
	if v, err := ks.Select("encryption"); err != nil || v.Purpose != pki.Encryption {
		t.Fatal(err)
	}
	kid := ks.Active(pki.Signing).Kid
	if v, err := ks.Select(kid); err != nil || v.Kid != kid {
		t.Fatal(err)
	}
	for _, bad := range []string{"../../etc/passwd", "k\x00", "nope"} {
		if _, err := ks.Select(bad); !errors.Is(err, keyset.ErrNoVersion) {
			t.Errorf("Select(%q) = %v", bad, err)
		}
	}
}

// snapshot lists every document and its version under the root.
func snapshot(t *testing.T, s keystore.Store) string {
	t.Helper()
	var out strings.Builder
	var walk func(prefix string)
	walk = func(prefix string) {
		names, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(prefix + "/" + strings.TrimSuffix(n, "/"))
				continue
			}
			_, v, _ := s.Get(ctx, prefix+"/"+n)
			out.WriteString(prefix + "/" + n + "@" + big.NewInt(v).String() + "\n")
		}
	}
	walk(keystore.Root)
	return out.String()
}
