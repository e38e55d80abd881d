//go:build !linux

package h1

import "net"

// LoopsSupported reports whether ServeLoops runs event loops here.
const LoopsSupported = false

// ServeLoops is Serve where event loops are not implemented.
func (s *Server) ServeLoops(ln net.Listener, n int) error { return s.Serve(ln) }
