package h1

import (
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HTTPRequest converts the parsed head to the *http.Request net/http would
// have made of it, for plans, policies and handlers written for net/http.
// path is the request path as the caller routes it (unescaped, cleaned);
// body reads the request body. The request's context is Background: the
// fast path serves short exchanges, and a client that leaves is seen when
// writing to it.
func (r *Request) HTTPRequest(path string, body io.Reader) *http.Request {
	// A handful of allocations per request, whatever its headers: one
	// for the request with its URL, one string holding every value the
	// head gives, one array for the header slices, and the map.
	type requestWithURL struct {
		http.Request
		url url.URL
	}
	n := len(r.Host) + len(r.Target)
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	var b strings.Builder
	b.Grow(n)
	b.Write(r.Host)
	b.Write(r.Target)
	for _, h := range r.Headers {
		b.Write(h.Value)
	}
	text := b.String()
	take := func(k int) string {
		s := text[:k]
		text = text[k:]
		return s
	}
	host, target := take(len(r.Host)), take(len(r.Target))

	hr := &requestWithURL{}
	hr.url.Path = path
	if r.Query != nil {
		hr.url.RawQuery = target[len(target)-len(r.Query):]
		hr.url.ForceQuery = len(r.Query) == 0 // a lone "?"
	}
	hr.Request = http.Request{
		Method:     r.Method,
		URL:        &hr.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, len(r.Headers)),
		Host:       host,
		RemoteAddr: r.RemoteAddr,
		RequestURI: target,
		Close:      r.Close,
		Body:       http.NoBody,
	}
	if r.ContentLength > 0 {
		hr.ContentLength = r.ContentLength
		hr.Body = io.NopCloser(body)
	}
	values := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		v := take(len(h.Value))
		name := canonicalName(h.Name)
		if name == "Host" {
			continue // net/http keeps it in Request.Host only
		}
		if prior, ok := hr.Header[name]; ok {
			hr.Header[name] = append(prior, v)
			continue
		}
		values[i] = v
		hr.Header[name] = values[i : i+1 : i+1] // full: an append copies
	}
	// net/http's one rewrite of a request header, for HTTP/1.0 caches.
	if p := hr.Header["Pragma"]; len(p) > 0 && p[0] == "no-cache" && hr.Header["Cache-Control"] == nil {
		hr.Header["Cache-Control"] = []string{"no-cache"}
	}
	return &hr.Request
}

// commonNames maps header names as clients usually send them to their
// canonical form, so that looking them up allocates nothing.
var commonNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection",
		"Content-Type", "Content-Length", "Authorization", "Cookie", "Cache-Control", "Origin",
		"Referer", "X-Api-Key", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
		"X-Request-Id", "If-None-Match", "If-Modified-Since", "Pragma", "Traceparent",
		"Last-Event-Id", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest",
	} {
		c := http.CanonicalHeaderKey(n)
		m[n], m[c] = c, c
		lower := []byte(n)
		for i, b := range lower {
			if 'A' <= b && b <= 'Z' {
				lower[i] = b + 'a' - 'A'
			}
		}
		m[string(lower)] = c // HTTP/2-style lower case, as some clients send
	}
	return m
}()

func canonicalName(b []byte) string {
	if n, ok := commonNames[string(b)]; ok {
		return n
	}
	return http.CanonicalHeaderKey(string(b))
}
