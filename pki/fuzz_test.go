package pki_test

import (
	"os"
	"testing"

	"github.com/ofmkeys/ofmkeys/internal/testkeys"
	"github.com/ofmkeys/ofmkeys/pki"
)

// The PEM parsers must refuse any input without panicking. Seeds run in
// every `go test`; `go test -fuzz FuzzParse…` explores further.
func FuzzParseCertificates(f *testing.F) {
	cert, _ := os.ReadFile("testdata/kat-cert.pem")
	f.Add(cert)
	f.Add(append(append([]byte{}, cert...), cert...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("junk\n-----BEGIN CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := pki.ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	f.Add(pki.EncodePrivateKey(testkeys.Key(0)), []byte(""))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("x"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, data, pass []byte) {
		k, err := pki.ParsePrivateKey(data, pass)
		if err == nil && k.N.BitLen() < pki.MinRSABits {
			t.Fatalf("accepted RSA-%d", k.N.BitLen())
		}
	})
}
