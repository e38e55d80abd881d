package rabbitmq

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

// Message headers that travel as AMQP basic properties rather than in the
// headers table.
const (
	headerContentType     = "content-type"
	headerContentEncoding = "content-encoding"
)

// encodeHeaders splits message headers into the AMQP headers table and the
// content-type and content-encoding properties (their first value). A
// header with one value is a string; a multi-valued one an array of strings. A name the wire cannot
// carry (over 255 bytes) is refused with a 400 rejection, since retrying
// the same message cannot succeed.
func encodeHeaders(h mediation.Headers, p *amqp.Publishing) error {
	if len(h) == 0 {
		return nil
	}
	for name, values := range h {
		if len(values) == 0 {
			continue
		}
		switch name {
		case headerContentType, headerContentEncoding:
			// Properties hold one value: a message has one content type.
			if len(values[0]) > maxName {
				return reject("header %q is longer than the 255 bytes AMQP allows for it", name)
			}
			if name == headerContentType {
				p.ContentType = values[0]
			} else {
				p.ContentEncoding = values[0]
			}
			continue
		}
		if len(name) > maxName {
			return reject("header name %.40q... is longer than the 255 bytes AMQP allows", name)
		}
		if p.Headers == nil {
			p.Headers = make(amqp.Table, len(h))
		}
		if len(values) == 1 {
			p.Headers[name] = values[0]
			continue
		}
		arr := make([]any, len(values))
		for i, v := range values {
			arr[i] = v
		}
		p.Headers[name] = arr
	}
	return nil
}

func reject(format string, args ...any) error {
	return &mediation.Rejection{
		Status: http.StatusBadRequest,
		Title:  "The message cannot be sent to RabbitMQ",
		Detail: fmt.Sprintf(format, args...),
	}
}

// decodeHeaders turns the AMQP headers table and the content properties of
// a delivery into message headers: names lower-cased (names that differ only
// in case are merged, in sorted order), arrays become multiple values, and
// every other AMQP type is rendered as text (numbers in Go's shortest form,
// timestamps as RFC 3339, nested tables and arrays as JSON). nil when there
// is none.
func decodeHeaders(t amqp.Table, contentType, contentEncoding string) mediation.Headers {
	if len(t) == 0 && contentType == "" && contentEncoding == "" {
		return nil
	}
	h := make(mediation.Headers, len(t)+2)
	for _, name := range tableNames(t) {
		key := strings.ToLower(name)
		if arr, ok := t[name].([]any); ok {
			for _, v := range arr {
				h[key] = append(h[key], fieldText(v))
			}
			if len(arr) == 0 && h[key] == nil {
				h[key] = []string{}
			}
			continue
		}
		h[key] = append(h[key], fieldText(t[name]))
	}
	if contentType != "" {
		h[headerContentType] = []string{contentType}
	}
	if contentEncoding != "" {
		h[headerContentEncoding] = []string{contentEncoding}
	}
	return h
}

// tableNames returns the names of t, sorted when two of them may merge
// (some name has upper-case letters), so that merged values come in a
// stable order; the usual all-lower-case table costs no sort.
func tableNames(t amqp.Table) []string {
	names := make([]string, 0, len(t))
	mixed := false
	for k := range t {
		names = append(names, k)
		mixed = mixed || strings.ContainsFunc(k, unicode.IsUpper)
	}
	if mixed {
		slices.Sort(names)
	}
	return names
}

// fieldText renders one AMQP field value as text.
func fieldText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	case amqp.Table, []any:
		b, err := json.Marshal(jsonValue(v))
		if err != nil { // only strings, maps and slices: cannot fail
			return fmt.Sprint(v)
		}
		return string(b)
	}
	return scalarText(v)
}

func scalarText(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int8:
		return strconv.FormatInt(int64(v), 10)
	case int16:
		return strconv.FormatInt(int64(v), 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.FormatInt(int64(v), 10)
	case uint8:
		return strconv.FormatUint(uint64(v), 10)
	case uint16:
		return strconv.FormatUint(uint64(v), 10)
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return decimalText(v)
	}
	return fmt.Sprint(v)
}

// decimalText renders an AMQP decimal (value × 10^-scale) exactly.
func decimalText(d amqp.Decimal) string {
	neg := d.Value < 0
	digits := strconv.FormatInt(int64(d.Value), 10)
	if neg {
		digits = digits[1:]
	}
	if scale := int(d.Scale); scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// jsonValue converts nested AMQP values into what encoding/json renders
// without surprises: tables become objects, arrays arrays, the rest text
// (so that []byte is not base64 and numbers keep their exact form).
func jsonValue(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = jsonValue(x)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = jsonValue(x)
		}
		return a
	case nil:
		return nil
	case string:
		return v
	case []byte:
		return string(v)
	}
	return scalarText(v)
}
