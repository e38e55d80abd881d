package config

import (
	"fmt"
	"strings"
	"unicode"
)

// NormalizePath is the form in which listener paths are compared: the path
// without trailing slashes ("/orders/" and "/orders" are one path), "/"
// for the root.
func NormalizePath(p string) string {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "/"
	}
	return p
}

// pathProblem says what is wrong with a listener path that starts with
// '/', or "".
func pathProblem(p string) string {
	if strings.ContainsAny(p, "?#") {
		return "a path has no query or fragment"
	}
	if strings.IndexFunc(p, unicode.IsSpace) >= 0 {
		return "a path has no white space"
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p[1:], "/"), "/") {
		switch seg {
		case "":
			if len(p) > 1 {
				return "empty segment (\"//\")"
			}
		case ".", "..":
			return "dot segments are not allowed"
		}
	}
	return ""
}

// PathConflicts reports the listener paths of api that an API in deployed
// already serves, for the management API before it deploys api. APIs with
// api's ID are skipped: a redeployment does not conflict with itself. It
// returns nil or an error listing each conflict on its own line.
func PathConflicts(api *API, deployed []API) error {
	owner := map[string]string{}
	for i := range deployed {
		d := &deployed[i]
		if d.ID == api.ID {
			continue
		}
		for _, l := range d.Listeners {
			if l.Type != "http" {
				continue
			}
			for _, p := range l.Paths {
				owner[NormalizePath(p)] = d.ID
			}
		}
	}
	var msgs []string
	for _, l := range api.Listeners {
		if l.Type != "http" {
			continue
		}
		for _, p := range l.Paths {
			if other, taken := owner[NormalizePath(p)]; taken {
				msgs = append(msgs, fmt.Sprintf("path %q is already used by api %q", p, other))
			}
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}
