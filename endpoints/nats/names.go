package nats

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// maxDurableName bounds durable consumer names: JetStream keeps consumers
// in files named after them.
const maxDurableName = 128

// durableName returns the JetStream durable consumer of a group
// subscription: "<prefix>_<group>", or the group alone without a prefix.
// Characters JetStream refuses in names (".", "*", ">", path separators,
// spaces, controls) become "_", and a name that had to change or be
// shortened gets a hash of the group, so that two groups never share one
// consumer by accident.
func durableName(prefix, group string) string {
	var b strings.Builder
	if prefix != "" {
		b.WriteString(prefix)
		b.WriteByte('_')
	}
	changed := false
	for _, r := range group {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || isSpaceOrControl(r) || r == '\uFFFD' {
			b.WriteByte('_')
			changed = true
			continue
		}
		b.WriteRune(r)
	}
	name := b.String()
	if !changed && len(name) <= maxDurableName {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(group))
	sum := strconv.FormatUint(h.Sum64(), 36)
	if keep := maxDurableName - len(sum) - 1; len(name) > keep {
		name = strings.ToValidUTF8(name[:keep], "") // drop a rune cut in two
	}
	return name + "_" + sum
}
