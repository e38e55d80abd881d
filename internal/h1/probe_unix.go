//go:build unix

package h1

import (
	"net"
	"syscall"
)

// stillOpen reports whether nc has nothing to read and is not closed: a
// non-blocking peek that finds no data. An idle backend connection with
// data waiting is out of step, and one at its end was closed; neither may
// carry a request.
func stillOpen(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: no data and no end. Returning true: never wait.
		open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && open
}
