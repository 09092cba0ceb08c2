package daemon

import "net/http"

// HTTPHandler exposes the handler chain to benchmarks.
func (s *Server) HTTPHandler() http.Handler { return s.routes() }
