package sandbox

import (
	"context"
	"io"
	"log"
	"net"

	"github.com/go-jose/go-jose/v4"

	"github.com/ofmkeys/ofmkeys/ofmcheck"
)

// LocalReceiver runs a DC webhook receiver on loopback for local runs:
// its server certificate comes from the sandbox CA (which the sandbox's
// deliveries trust), its clients must present the sandbox's platform
// certificate, and events are verified against the sandbox's keys. base is
// the URL to register as the client's WebhookURL; stop closes it.
func (s *Server) LocalReceiver(rc *ofmcheck.Receiver) (base string, stop func(), err error) {
	cert, err := s.IssueServerCertificate()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	if rc.Platform == nil {
		rc.Platform = func(context.Context, string) (*jose.JSONWebKeySet, error) { return s.PlatformJWKS(), nil }
	}
	srv := rc.Server(ofmcheck.WebhookTLS(cert, s.CAPool()))
	srv.ErrorLog = quietLog
	go srv.ServeTLS(ln, "", "")
	return "https://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// quietLog drops net/http's own error lines (handshakes refused on
// purpose in negative tests); what matters is answered to the peer.
var quietLog = log.New(io.Discard, "", 0)
