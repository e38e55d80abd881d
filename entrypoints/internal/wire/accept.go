package wire

import (
	"net/http"
	"strconv"
	"strings"
)

// AcceptQ returns the quality the Accept header values give mediaType
// ("type/subtype", lower case): the q of the most specific matching range
// (exact, then type/*, then */*), 0 when none matches. No Accept header
// accepts everything with q 1.
func AcceptQ(accept []string, mediaType string) float64 {
	if len(accept) == 0 {
		return 1
	}
	typ, _, _ := strings.Cut(mediaType, "/")
	best, bestSpec := 0.0, -1
	eachRange(accept, func(rng string, q float64) {
		spec := -1
		switch {
		case rng == mediaType:
			spec = 2
		case rng == typ+"/*":
			spec = 1
		case rng == "*/*":
			spec = 0
		}
		if spec > bestSpec {
			best, bestSpec = q, spec
		}
	})
	return best
}

// Explicit reports whether the Accept header values name mediaType itself,
// not through a wildcard, and accept it (AcceptQ above 0).
func Explicit(accept []string, mediaType string) bool {
	named := false
	eachRange(accept, func(rng string, _ float64) {
		if rng == mediaType {
			named = true
		}
	})
	return named && AcceptQ(accept, mediaType) > 0
}

// Negotiate returns the offer the client prefers: the highest AcceptQ, the
// earliest offer on a tie; "" when none is acceptable.
func Negotiate(accept []string, offers ...string) string {
	best, bestQ := "", 0.0
	for _, o := range offers {
		if q := AcceptQ(accept, o); q > bestQ {
			best, bestQ = o, q
		}
	}
	return best
}

// eachRange calls fn with every media range (lower case, parameters
// dropped) and its q value.
func eachRange(accept []string, fn func(rng string, q float64)) {
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			rng, params, _ := strings.Cut(part, ";")
			rng = strings.ToLower(strings.TrimSpace(rng))
			if rng == "" {
				continue
			}
			fn(rng, quality(params))
		}
	}
}

// quality reads q= from media-range parameters; absent or malformed is 1,
// and values are clamped to [0, 1].
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q != q { // q != q: NaN
			return 1
		}
		return min(max(q, 0), 1)
	}
	return 1
}

// headerHasToken reports whether a comma-separated header contains token,
// case-insensitively.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
