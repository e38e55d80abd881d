package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// structFields maps the YAML keys of a struct type to its fields.
type structFields struct {
	byName map[string][]int // key → field index path
	names  []string         // keys, sorted, for messages
}

var fieldCache sync.Map // reflect.Type → *structFields

// fieldsOf returns the keys of struct type t. A field's key is its yaml tag
// name, else its json tag name, else its name with a lower-case first
// letter; "-" skips it. Anonymous struct fields without a name, and fields
// tagged ",inline", contribute their own fields.
func fieldsOf(t reflect.Type) *structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*structFields)
	}
	fs := &structFields{byName: map[string][]int{}}
	collectFields(t, nil, fs, 0)
	for name := range fs.byName {
		fs.names = append(fs.names, name)
	}
	slices.Sort(fs.names)
	fieldCache.Store(t, fs)
	return fs
}

func collectFields(t reflect.Type, prefix []int, fs *structFields, depth int) {
	if depth > 8 { // inline cycles are impossible by value; this is a backstop
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, inline, skip := fieldKey(f)
		if skip {
			continue
		}
		idx := append(slices.Clone(prefix), i)
		if inline && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, idx, fs, depth+1)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if _, dup := fs.byName[name]; !dup || len(idx) < len(fs.byName[name]) {
			fs.byName[name] = idx // the shallower field wins, as in encoding/json
		}
	}
}

func fieldKey(f reflect.StructField) (name string, inline, skip bool) {
	tag, hasTag := f.Tag.Lookup("yaml")
	if !hasTag {
		tag, hasTag = f.Tag.Lookup("json")
	}
	if tag == "-" {
		return "", false, true
	}
	name, opts, _ := strings.Cut(tag, ",")
	for o := range strings.SplitSeq(opts, ",") {
		if o == "inline" {
			inline = true
		}
	}
	if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
		inline = true
	}
	if inline {
		return "", true, false
	}
	if !f.IsExported() {
		return "", false, true
	}
	if name == "" {
		r, size := utf8.DecodeRuneInString(f.Name)
		name = string(unicode.ToLower(r)) + f.Name[size:]
	}
	return name, false, false
}

// suggest returns the known name closest to an unknown one, or "" when none
// is close enough to be a likely typo.
func suggest(unknown string, known []string) string {
	best, bestDist := "", -1
	u := strings.ToLower(unknown)
	for _, k := range known {
		d := editDistance(u, strings.ToLower(k))
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	limit := max(1, min(len(unknown), len(best))/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, with an
// adjacent transposition counting as one edit ("lsiteners").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// joinNames renders names for a message, at most a dozen.
func joinNames(names []string) string {
	const limit = 12
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + ", ..."
	}
	return strings.Join(names, ", ")
}
