package config

import (
	"net"
	"strconv"
	"strings"
)

func (l *loader) checkConfig(c *Config) {
	l.checkServer(&c.Server)
	for i := range c.APIs {
		l.checkAPI(&c.APIs[i])
	}
}

func (l *loader) checkServer(s *Server) {
	l.checkListen(&s.HTTP.Listen, &s.HTTP, s)
	if s.Admin.Listen != "off" {
		l.checkListen(&s.Admin.Listen, &s.Admin, s)
		// Port 0 asks the kernel for a free port: equal strings are fine then.
		if s.Admin.Listen == s.HTTP.Listen && !strings.HasSuffix(s.Admin.Listen, ":0") {
			l.errorf(l.node(&s.Admin.Listen, &s.Admin, s), "admin listen address %q is the data plane's too (server.http.listen); use another port, or \"off\"", s.Admin.Listen)
		}
	}
	for _, d := range []*Duration{&s.ShutdownTimeout, &s.HTTP.ReadHeaderTimeout, &s.HTTP.IdleTimeout} {
		if *d < 0 {
			l.errorf(l.node(d), "duration must not be negative")
		}
	}
	if s.HTTP.EventLoops < -1 || s.HTTP.EventLoops > 1024 {
		l.errorf(l.node(&s.HTTP.EventLoops), "eventLoops must be \"off\" or a count from 0 (one per core) to 1024")
	}
	if s.HTTP.MaxHeaderBytes < 0 {
		l.errorf(l.node(&s.HTTP.MaxHeaderBytes), "maxHeaderBytes must not be negative")
	}
	if s.Store != "" && !hasAnyPrefix(s.Store, "postgres://", "postgresql://") {
		l.errorf(l.node(&s.Store), "store must be empty (the embedded store under dataDir) or a postgres:// URL")
	}
	if s.Redis != "" && !hasAnyPrefix(s.Redis, "redis://", "rediss://", "unix://") {
		l.errorf(l.node(&s.Redis), "redis must be a redis://, rediss:// or unix:// URL")
	}
	switch s.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.errorf(l.node(&s.Log.Level), "unknown log level %q (want debug, info, warn or error)", s.Log.Level)
	}
	switch s.Log.Format {
	case "json", "text":
	default:
		l.errorf(l.node(&s.Log.Format), "unknown log format %q (want json or text)", s.Log.Format)
	}
}

// checkListen checks a host:port listen address; outer are the values to
// point at when the address is a default.
func (l *loader) checkListen(addr *string, outer ...any) {
	_, port, err := net.SplitHostPort(*addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = strconv.ErrRange
		}
	}
	if err != nil {
		l.errorf(l.node(append([]any{addr}, outer...)...), "invalid listen address %q: want host:port, such as \":8080\" or \"127.0.0.1:8081\"", *addr)
	}
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
