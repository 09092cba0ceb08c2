// Package pki is the toolbox of small verbs ofmkeys uses for its keys and
// certificates: generate an RSA key (GenerateKey, GenerateKeys), make a
// self-signed certificate (SelfSign) or a CSR (CreateCSR) with the profile of
// a purpose (ProfileOf), parse PEM strictly (ParseCertificates,
// ParsePrivateKey), check an issued or imported certificate against the
// purpose's profile and OFM's rules (CheckCertificate), and compute
// thumbprints and kids (Thumbprint, Kid).
//
// Every verb re-parses what it produces and checks key/certificate pairs
// after each load. Nothing here reads the clock: callers pass "now".
// Nothing here prints, writes files or keeps state.
package pki
