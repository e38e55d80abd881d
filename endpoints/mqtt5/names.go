package mqtt5

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MQTT strings are at most 65535 bytes of UTF-8 without NUL (MQTT 5 §1.5.4).
const maxMQTTString = 65535

// parseServerURL checks serverUrl and returns it with the default port
// filled in, as autopaho dials u.Host as it is.
func parseServerURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("required, such as mqtt://127.0.0.1:1883")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not a URL such as mqtt://host:1883", s)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	var port string
	switch u.Scheme {
	case "mqtt", "tcp":
		port = "1883"
	case "mqtts", "tls", "ssl":
		port = "8883"
	case "ws":
		port = "80"
	case "wss":
		port = "443"
	default:
		return nil, fmt.Errorf("scheme %q is not mqtt, mqtts, ws or wss", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("put credentials in username and password, not in the URL")
	}
	if !isWebSocketScheme(u.Scheme) && u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("%s:// takes no path (%q); MQTT over WebSocket is ws:// or wss://", u.Scheme, u.Path)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("takes no query or fragment")
	}
	host, p := u.Hostname(), u.Port()
	if host == "" {
		return nil, errors.New("missing host")
	}
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return nil, errors.New("empty port")
		}
		if !isWebSocketScheme(u.Scheme) {
			u.Host = net.JoinHostPort(host, port)
		}
	} else if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		return nil, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return u, nil
}

func isTLSScheme(s string) bool {
	return s == "mqtts" || s == "tls" || s == "ssl" || s == "wss"
}

func isWebSocketScheme(s string) bool { return s == "ws" || s == "wss" }

func checkMQTTString(s string) error {
	switch {
	case len(s) > maxMQTTString:
		return fmt.Errorf("longer than %d bytes", maxMQTTString)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL character")
	}
	return nil
}

func checkClientID(id string) error {
	if len(id) > maxClientID {
		return fmt.Errorf("longer than %d bytes", maxClientID)
	}
	if strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }) {
		return errors.New("must not contain spaces or control characters")
	}
	return checkMQTTString(id)
}

// checkTopicName applies MQTT's rules for the topic of a PUBLISH: no
// wildcards, and not a $ topic, which brokers reserve for themselves.
func checkTopicName(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic")
	case strings.ContainsAny(t, "+#"):
		return errors.New(`wildcards "+" and "#" are for consumer.topic; a publish goes to one topic`)
	case strings.HasPrefix(t, "$"):
		return errors.New(`topics starting with "$" are reserved by the broker`)
	}
	return checkMQTTString(t)
}

// checkFilter applies MQTT's rules for topic filters: "+" is a whole level,
// "#" a whole last level.
func checkFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	if strings.HasPrefix(f, "$share/") {
		return errors.New("write the filter without $share/...; set consumer.sharedGroup for a shared subscription")
	}
	if err := checkMQTTString(f); err != nil {
		return err
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return errors.New(`"#" must be the last level`)
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return fmt.Errorf("level %q: wildcards must fill a whole level, as in a/+/b or a/#", l)
		}
	}
	return nil
}

// checkShareName applies MQTT's rules for the ShareName of $share/.
func checkShareName(s string) error {
	if strings.ContainsAny(s, "/+#") {
		return errors.New(`must not contain "/", "+" or "#"`)
	}
	return checkMQTTString(s)
}

// subscriptionFilter is what a subscription subscribes to: the filter,
// shared under sharedGroup and/or the request's group when either is set.
func subscriptionFilter(c *Consumer, group string) string {
	share := c.SharedGroup
	if group != "" {
		g := safeShareName(group)
		if share != "" {
			share += "." + g
		} else {
			share = g
		}
	}
	if share == "" {
		return c.Topic
	}
	return "$share/" + share + "/" + c.Topic
}

// safeShareName replaces what a share name cannot hold; group names come
// from the gateway (subscription ids), not from configuration.
func safeShareName(g string) string {
	if checkShareName(g) == nil {
		return g
	}
	return "h" + hashName(g)
}

// groupClientSuffix names a group subscription's client in a stable way, so
// that it finds its persistent session again after a restart: the group
// itself when it is short and plain, else a hash of it.
func groupClientSuffix(g string) string {
	if len(g) <= 64 && !strings.ContainsFunc(g, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return g
	}
	return "h" + hashName(g)
}

func hashName(s string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 36)
}
