package solace

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// Message headers that travel as AMQP properties rather than application
// properties.
const (
	headerContentType     = "content-type"
	headerContentEncoding = "content-encoding"
)

// multiValuedProperty lists, as a JSON array, the application properties
// that hold a multi-valued header as a JSON array of strings. AMQP 1.0
// application properties are simple values, one per name: this keeps the
// values apart and in order, and a reader that does not know the convention
// still sees them as text.
const multiValuedProperty = "sluice-multi-valued"

// toAMQP builds the AMQP message for msg: content as one data section,
// headers as application properties (content-type and content-encoding as
// the properties of those names), ID as message-id (ids makes one when it
// is empty), Key as group-id, Timestamp as creation-time, and durable as
// asked.
func toAMQP(msg *mediation.Message, durable bool, ids *idGen) (*amqp.Message, error) {
	m := amqp.NewMessage(msg.Content)
	if m.Data == nil || len(msg.Content) == 0 {
		m.Data = [][]byte{{}} // an empty body is one empty data section, not none
	}
	m.Header = &amqp.MessageHeader{Durable: durable}
	id := msg.ID
	if id == "" {
		id = ids.next()
	}
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	m.Properties = &amqp.MessageProperties{MessageID: id, CreationTime: &ts}
	if msg.Key != nil {
		k := string(msg.Key)
		m.Properties.GroupID = &k
	}
	var multi []string
	for name, values := range msg.Headers {
		if len(values) == 0 {
			continue
		}
		switch name {
		case headerContentType:
			v := values[0]
			m.Properties.ContentType = &v
			continue
		case headerContentEncoding:
			v := values[0]
			m.Properties.ContentEncoding = &v
			continue
		case multiValuedProperty:
			return nil, reject("the header %q is reserved by the gateway", name)
		}
		if !utf8.ValidString(name) {
			return nil, reject("the header name %q is not UTF-8, which AMQP requires", name)
		}
		if m.ApplicationProperties == nil {
			m.ApplicationProperties = make(map[string]any, len(msg.Headers))
		}
		if len(values) == 1 {
			if utf8.ValidString(values[0]) {
				m.ApplicationProperties[name] = values[0]
			} else {
				m.ApplicationProperties[name] = []byte(values[0]) // AMQP strings are UTF-8; binary keeps the bytes
			}
			continue
		}
		for _, v := range values {
			if !utf8.ValidString(v) {
				return nil, reject("the header %q has several values and one is not UTF-8: send it once, or as UTF-8", name)
			}
		}
		b, _ := json.Marshal(values) // strings only: cannot fail
		m.ApplicationProperties[name] = string(b)
		multi = append(multi, name)
	}
	if len(multi) > 0 {
		slices.Sort(multi)
		b, _ := json.Marshal(multi)
		m.ApplicationProperties[multiValuedProperty] = string(b)
	}
	return m, nil
}

func reject(format string, args ...any) error {
	return &mediation.Rejection{
		Status: http.StatusBadRequest,
		Title:  "The message cannot be sent to the broker",
		Detail: fmt.Sprintf(format, args...),
	}
}

// fromAMQP converts a received message. Application properties become
// headers with lower-case names (names that differ only in case merge, in
// sorted order), values other than strings rendered as text; content-type
// and content-encoding become headers too. Metadata holds the source
// address, the subject when there is one, and whether the message was
// delivered before. The ID is the message-id, or seq without one; the
// timestamp the creation-time, or now.
func fromAMQP(m *amqp.Message, source string, seq uint64) *mediation.Message {
	out := &mediation.Message{
		Content:  body(m),
		Headers:  headersOf(m),
		Metadata: map[string]string{"address": source, "redelivered": strconv.FormatBool(redelivered(m))},
	}
	if p := m.Properties; p != nil {
		if p.MessageID != nil {
			out.ID = valueText(p.MessageID)
		}
		if p.CreationTime != nil {
			out.Timestamp = *p.CreationTime
		}
		if p.GroupID != nil {
			out.Key = []byte(*p.GroupID)
		}
		if p.Subject != nil {
			out.Metadata["subject"] = *p.Subject
		}
	}
	if out.ID == "" {
		out.ID = strconv.FormatUint(seq, 10)
	}
	if out.Timestamp.IsZero() {
		out.Timestamp = time.Now()
	}
	return out
}

// redelivered reports whether the broker says the message was delivered
// before: not its first acquirer, or a delivery count.
func redelivered(m *amqp.Message) bool {
	return m.Header != nil && (m.Header.DeliveryCount > 0 || !m.Header.FirstAcquirer)
}

// body returns the payload: the data sections joined, or an AMQP value or
// sequence body rendered as text (strings and binary as they are, anything
// else as JSON).
func body(m *amqp.Message) []byte {
	switch {
	case len(m.Data) == 1:
		return m.Data[0]
	case len(m.Data) > 1:
		return bytes.Join(m.Data, nil)
	case m.Value != nil:
		switch v := m.Value.(type) {
		case string:
			return []byte(v)
		case []byte:
			return v
		}
		return []byte(jsonText(m.Value))
	case m.Sequence != nil:
		return []byte(jsonText(m.Sequence))
	}
	return []byte{}
}

func headersOf(m *amqp.Message) mediation.Headers {
	var ct, ce string
	if p := m.Properties; p != nil {
		if p.ContentType != nil {
			ct = *p.ContentType
		}
		if p.ContentEncoding != nil {
			ce = *p.ContentEncoding
		}
	}
	props := m.ApplicationProperties
	if len(props) == 0 && ct == "" && ce == "" {
		return nil
	}
	multi := map[string]bool{}
	if s, ok := props[multiValuedProperty].(string); ok {
		var names []string
		if json.Unmarshal([]byte(s), &names) == nil {
			for _, n := range names {
				multi[n] = true
			}
		}
	}
	names := make([]string, 0, len(props))
	for k := range props {
		if k != multiValuedProperty {
			names = append(names, k)
		}
	}
	slices.Sort(names) // a stable order for names that merge
	h := make(mediation.Headers, len(names)+2)
	for _, name := range names {
		key := strings.ToLower(name)
		v := props[name]
		if s, ok := v.(string); ok && multi[name] {
			var values []string
			if json.Unmarshal([]byte(s), &values) == nil {
				h[key] = append(h[key], values...)
				if h[key] == nil {
					h[key] = []string{}
				}
				continue
			}
		}
		h[key] = append(h[key], valueText(v))
	}
	// The properties win over application properties of the same names: a
	// message has one content type.
	if ct != "" {
		h[headerContentType] = []string{ct}
	}
	if ce != "" {
		h[headerContentEncoding] = []string{ce}
	}
	return h
}

// valueText renders an AMQP simple value as text.
func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(v)
	case int8, int16, int32, int64, int:
		return fmt.Sprint(v)
	case uint8, uint16, uint32, uint64, uint:
		return fmt.Sprint(v)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case amqp.UUID:
		return v.String()
	case amqp.Symbol:
		return string(v)
	}
	return jsonText(v)
}

// jsonText renders a structured AMQP value as JSON, or as Go prints it
// when JSON cannot hold it.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// idGen makes message ids for messages published without one: unique per
// process run (a random prefix) and cheap (a counter).
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen() *idGen {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return &idGen{prefix: "sluice-" + hex.EncodeToString(b[:]) + "-"}
}

func (g *idGen) next() string { return g.prefix + strconv.FormatUint(g.n.Add(1), 10) }
