//go:build linux

// Command eventloop is a study, not a product: the least a proxy can do
// per request, on one epoll loop per core with raw non-blocking sockets
// instead of a goroutine per connection on Go's netpoller. It forwards
// every GET to one backend over keep-alive connections and relays
// Content-Length responses; anything else is out of scope. The http-proxy
// benchmark runs it beside nginx and Sluice when SLUICE_BENCH_STUDY=eventloop,
// to measure what the data path's design costs on this machine.
//
//	eventloop LISTEN_ADDR BACKEND_ADDR
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
)

// epollET is EPOLLET as the uint32 EpollEvent wants (syscall's is negative).
const epollET = 1 << 31

// side is one connection, a client's or a backend's.
type side struct {
	fd      int
	in, out []byte
	peer    *side // the other end of the request in flight
	backend bool
}

// loop owns its connections: nothing is shared between loops.
type loop struct {
	ep      int
	conns   map[int]*side
	idle    []*side // idle backend connections
	backend syscall.Sockaddr
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: eventloop LISTEN_ADDR BACKEND_ADDR")
		os.Exit(2)
	}
	listen, backendAddr := os.Args[1], os.Args[2]
	baddr, _ := net.ResolveTCPAddr("tcp", backendAddr)
	var sa syscall.SockaddrInet4
	copy(sa.Addr[:], baddr.IP.To4())
	sa.Port = baddr.Port
	laddr, _ := net.ResolveTCPAddr("tcp", listen)
	n := runtime.NumCPU()
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread()
			run(laddr, &sa)
		}()
	}
	select {}
}

func run(laddr *net.TCPAddr, backend syscall.Sockaddr) {
	lfd, _ := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, 0xf, 1) // SO_REUSEPORT: one listener per loop
	var la syscall.SockaddrInet4
	copy(la.Addr[:], laddr.IP.To4())
	la.Port = laddr.Port
	if err := syscall.Bind(lfd, &la); err != nil {
		panic(err)
	}
	syscall.Listen(lfd, 4096)
	ep, _ := syscall.EpollCreate1(0)
	syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)})
	l := &loop{ep: ep, conns: map[int]*side{}, backend: backend}
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err != nil {
			continue
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == lfd {
				for {
					cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					syscall.SetsockoptInt(cfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
					s := &side{fd: cfd}
					l.conns[cfd] = s
					syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, cfd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: int32(cfd)})
				}
				continue
			}
			s := l.conns[fd]
			if s == nil {
				continue
			}
			if events[i].Events&syscall.EPOLLOUT != 0 && len(s.out) > 0 {
				l.flush(s)
			}
			if events[i].Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.readAll(s, buf)
			}
		}
	}
}

func (l *loop) close(s *side) {
	delete(l.conns, s.fd)
	syscall.Close(s.fd)
	if p := s.peer; p != nil {
		p.peer = nil // a client's answer, if any, goes nowhere
		if s.backend {
			l.close(p) // a client whose backend died gets the close
		}
	}
}

func (l *loop) readAll(s *side, buf []byte) {
	for {
		n, err := syscall.Read(s.fd, buf)
		if n > 0 {
			s.in = append(s.in, buf[:n]...)
			if n == len(buf) {
				continue
			}
		}
		if n == 0 || (err != nil && err != syscall.EAGAIN) {
			l.close(s)
			return
		}
		break
	}
	if s.backend {
		l.onBackend(s)
	} else {
		l.onClient(s)
	}
}

var reqTail = []byte(" HTTP/1.1\r\nHost: backend\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: gw\r\n\r\n")

func (l *loop) onClient(c *side) {
	for c.peer == nil {
		end := bytes.Index(c.in, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		line := c.in[:bytes.IndexByte(c.in, '\r')]
		sp := bytes.IndexByte(line, ' ')
		sp2 := bytes.LastIndexByte(line, ' ')
		b := l.getBackend()
		if b == nil {
			l.close(c)
			return
		}
		b.peer, c.peer = c, b
		b.out = append(b.out, line[:sp+1]...)
		b.out = append(b.out, line[sp+1:sp2]...)
		b.out = append(b.out, reqTail...)
		c.in = c.in[:copy(c.in, c.in[end+4:])]
		l.flush(b)
	}
}

func (l *loop) getBackend() *side {
	if n := len(l.idle); n > 0 {
		b := l.idle[n-1]
		l.idle = l.idle[:n-1]
		return b
	}
	fd, _ := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	err := syscall.Connect(fd, l.backend)
	if err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		return nil
	}
	b := &side{fd: fd, backend: true}
	l.conns[fd] = b
	syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)})
	return b
}

func (l *loop) onBackend(b *side) {
	end := bytes.Index(b.in, []byte("\r\n\r\n"))
	if end < 0 {
		return
	}
	head := b.in[:end]
	i := bytes.Index(bytes.ToLower(head), []byte("content-length:"))
	if i < 0 {
		return
	}
	j := bytes.IndexByte(head[i:], '\r')
	if j < 0 {
		j = len(head) - i
	}
	cl, _ := strconv.Atoi(string(bytes.TrimSpace(head[i+15 : i+j])))
	total := end + 4 + cl
	if len(b.in) < total {
		return
	}
	c := b.peer
	if c != nil { // nil: the client left
		c.out = append(c.out, b.in[:total]...)
	}
	b.in = b.in[:copy(b.in, b.in[total:])]
	b.peer = nil
	l.idle = append(l.idle, b)
	if c == nil {
		return
	}
	c.peer = nil
	l.flush(c)
	if len(c.in) > 0 {
		l.onClient(c)
	}
}

func (l *loop) flush(s *side) {
	for len(s.out) > 0 {
		n, err := syscall.Write(s.fd, s.out)
		if n > 0 {
			s.out = s.out[:copy(s.out, s.out[n:])]
			continue
		}
		if err == syscall.EAGAIN {
			return // EPOLLOUT (edge) will come
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			l.close(s)
			return
		}
	}
}
