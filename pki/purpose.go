package pki

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// Purpose is what a key and its certificate are for. OFM-SPEC §1 names three.
type Purpose string

const (
	// Transport keys authenticate the DC in mutual TLS.
	Transport Purpose = "transport"
	// Signing keys make PS256 signatures (client assertions, JAR, x-signature).
	Signing Purpose = "signing"
	// Encryption keys receive RSA-OAEP-256/A256GCM JWEs from peers.
	Encryption Purpose = "encryption"
)

// Purposes lists every purpose in the order ofmkeys shows them.
var Purposes = []Purpose{Transport, Signing, Encryption}

// ParsePurpose accepts a purpose name as a user types it.
func ParsePurpose(s string) (Purpose, error) {
	for _, p := range Purposes {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown purpose %q: want transport, signing or encryption", s)
}

// Profile is the X.509 shape of a purpose's certificate (OFM-SPEC §1 [choice]
// defaults). Required bits must be present in an imported certificate;
// the others are what ofmkeys itself asks for.
type Profile struct {
	KeyUsage x509.KeyUsage
	// RequiredKeyUsage is the subset an imported certificate must carry.
	RequiredKeyUsage x509.KeyUsage
	ExtKeyUsage      []x509.ExtKeyUsage
}

// ProfileOf returns the certificate profile of a purpose.
func ProfileOf(p Purpose) Profile {
	switch p {
	case Transport:
		return Profile{
			KeyUsage:         x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			RequiredKeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage:      []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	case Signing:
		return Profile{
			KeyUsage:         x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			RequiredKeyUsage: x509.KeyUsageDigitalSignature,
		}
	case Encryption:
		return Profile{
			KeyUsage:         x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
			RequiredKeyUsage: x509.KeyUsageKeyEncipherment,
		}
	}
	panic(fmt.Sprintf("pki: unknown purpose %q", string(p)))
}

// keyUsageNames names key usage bits the way openssl prints them.
var keyUsageNames = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "Digital Signature"},
	{x509.KeyUsageContentCommitment, "Non Repudiation"},
	{x509.KeyUsageKeyEncipherment, "Key Encipherment"},
	{x509.KeyUsageDataEncipherment, "Data Encipherment"},
	{x509.KeyUsageKeyAgreement, "Key Agreement"},
	{x509.KeyUsageCertSign, "Certificate Sign"},
	{x509.KeyUsageCRLSign, "CRL Sign"},
}

func keyUsageString(ku x509.KeyUsage) string {
	if names := KeyUsageNames(ku); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "none"
}

// KeyUsageNames names the key usage bits set in ku, as openssl does.
func KeyUsageNames(ku x509.KeyUsage) []string {
	var out []string
	for _, n := range keyUsageNames {
		if ku&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// ExtKeyUsageNames names extended key usages, as openssl does.
func ExtKeyUsageNames(us []x509.ExtKeyUsage) []string {
	var out []string
	for _, u := range us {
		out = append(out, extKeyUsageName(u))
	}
	return out
}
