// Package ofmcheck is the Data Consumer's side of Open Finance Malaysia:
// the JOSE objects a DC sends (ClientAssertion, RequestObject, XSignature
// in both of PayNet's profiles) and the responses it must unwrap
// (UnwrapResponse: a signed JWS carrying a JWE for the DC's encryption key),
// each with the checks the other side applies, so that the local sandbox OFP
// and `ofmkeys check` share one implementation of the rules (OFM-SPEC §3-§5).
//
// Every parse uses OFM's algorithms only (PS256, RSA-OAEP-256, A256GCM);
// every time check takes "now" from the caller.
package ofmcheck
