package mediation

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one unit of data between a client and a broker.
//
// Messages read from a shared subscription are shared by every client of it:
// code that changes a message (a policy, an entrypoint) must replace Headers,
// Metadata or Content with new values, never mutate them in place. Clone
// helps.
type Message struct {
	// ID is the broker's id for the message, where it has one. Connectors
	// whose Position identifies the message leave it empty; Identity
	// derives one.
	ID string
	// Key is the record key (Kafka) or routing key; nil when the broker has none.
	Key []byte
	// Content is the payload, never interpreted by the core.
	Content []byte
	// Headers are multi-valued, with lower-case names.
	Headers Headers
	// Metadata describes where the message came from or goes to: topic,
	// partition, offset, qos, retain, ... Keys are connector-defined.
	Metadata map[string]string
	// Timestamp is the broker's time for the message, or when it was received.
	Timestamp time.Time
	// Position is where the message sits in its source; the zero value when
	// the source cannot replay.
	Position Position
	// Cursor is the token a client sends back to resume right after this
	// message. Set by Stream; empty on publish.
	Cursor string

	ack ackState
}

// NewMessage returns a message with the given content and empty headers.
func NewMessage(content []byte) *Message {
	return &Message{Content: content, Timestamp: time.Now()}
}

// copyFields copies every field but the acknowledgement, which other
// clients of a shared message update concurrently and must not be read.
func (m *Message) copyFields() *Message {
	return &Message{
		ID: m.ID, Key: m.Key, Content: m.Content, Headers: m.Headers, Metadata: m.Metadata,
		Timestamp: m.Timestamp, Position: m.Position, Cursor: m.Cursor,
	}
}

// Clone returns a copy whose Headers and Metadata may be changed freely.
// Content and Key are shared: replace them, do not write into them. The
// copy carries no acknowledgement: the engine acks the original.
func (m *Message) Clone() *Message {
	c := m.copyFields()
	c.Headers = m.Headers.Clone()
	if m.Metadata != nil {
		c.Metadata = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			c.Metadata[k] = v
		}
	}
	return c
}

// SetAck attaches the function called once when the message is acknowledged
// (err == nil) or negatively acknowledged. Connectors call it on messages they
// yield; the first call of Ack or Nack wins, later calls do nothing.
func (m *Message) SetAck(fn func(err error)) { m.ack.source = fn }

// Ack reports the message delivered (or deliberately dropped); its source
// position may be committed.
func (m *Message) Ack() { m.settle(nil) }

// Nack reports the message not delivered; its source position must not be
// committed. err says why.
func (m *Message) Nack(err error) {
	if err == nil {
		err = ErrNotDelivered
	}
	m.settle(err)
}

// AckAll acks every message of ms, as calling Ack on each would, but settles
// the messages of one stream together: one window update and one metric
// update per run of messages from the same stream instead of one per
// message. Entrypoints that deliver in batches (a flushed SSE write) use it.
//
// The caller must not use the messages of ms after AckAll returns: the
// memory of a message from NewMessages is reused once all its batch is
// done with.
func AckAll(ms []*Message) {
	var (
		s *Stream // the stream of the run being settled
		n int     // messages of s settled and not yet counted
	)
	for _, m := range ms {
		if !atomic.CompareAndSwapUint32(&m.ack.settled, 0, 1) {
			continue
		}
		st := m.ack.stream
		if st == nil {
			m.ackSource(nil)
			continue
		}
		if st != s {
			if s != nil {
				s.settledOK(n)
			}
			s, n = st, 0
		}
		origin := m.ack.origin
		if origin == nil {
			origin = m
		}
		origin.ackSource(nil)
		if st.sub != nil {
			// An own stream's source message went to this client alone,
			// and the engine is done with it.
			origin.ack.slab.release()
		}
		n++
	}
	if s != nil {
		s.settledOK(n)
	}
}

// ackState is a message's acknowledgement, kept by value so that the
// message path allocates nothing for it.
type ackState struct {
	source  func(error)  // the connector's (SetAck)
	stream  *Stream      // the stream that handed the message to a client
	origin  *Message     // the source message, when this is a client's copy
	settled uint32       // Ack or Nack happened (atomic)
	sourced uint32       // source was called (atomic)
	slab    *messageSlab // the batch the message was allocated in (NewMessages)
}

// slabSize is the most messages NewMessages hands out in one batch.
const slabSize = 128

// messageSlab is a batch of messages allocated together, reused once every
// message handed out from it was released.
type messageSlab struct {
	msgs [slabSize]Message
	live atomic.Int32 // handed out and not yet released
}

var slabPool = sync.Pool{New: func() any { return new(messageSlab) }}

// NewMessages returns n zeroed messages (n at most 128) for a connector to
// fill, in one allocation that is reused when the engine is done with them
// all: a source turns every fetched batch into messages, and allocating them
// afresh would be most of its garbage. The engine knows when it is done with
// a message only on some paths (see AckAll); a batch it cannot release is
// left to the garbage collector.
func NewMessages(n int) []Message {
	if n > slabSize {
		return make([]Message, n)
	}
	sl := slabPool.Get().(*messageSlab)
	sl.live.Store(int32(n))
	msgs := sl.msgs[:n:n]
	for i := range msgs {
		msgs[i].ack.slab = sl
	}
	return msgs
}

// release tells the slab one of its messages is done with; the last one
// returns it to the pool, cleared so that it keeps no record alive there.
func (sl *messageSlab) release() {
	if sl == nil || sl.live.Add(-1) != 0 {
		return
	}
	sl.msgs = [slabSize]Message{}
	slabPool.Put(sl)
}

func (m *Message) settle(err error) {
	if !atomic.CompareAndSwapUint32(&m.ack.settled, 0, 1) {
		return
	}
	if s := m.ack.stream; s != nil {
		origin := m.ack.origin
		if origin == nil {
			origin = m
		}
		s.settle(origin, err)
		return
	}
	m.ackSource(err)
}

// ackSource tells the connector, once.
func (m *Message) ackSource(err error) {
	if m.ack.source != nil && atomic.CompareAndSwapUint32(&m.ack.sourced, 0, 1) {
		m.ack.source(err)
	}
}

// Identity returns ID, or "stream/partition/offset" when the message has no
// ID but a Position (a Kafka record, a JetStream sequence).
func (m *Message) Identity() string {
	if m.ID != "" || m.Position.Stream == "" {
		return m.ID
	}
	b := make([]byte, 0, len(m.Position.Stream)+24)
	b = append(b, m.Position.Stream...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(m.Position.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, m.Position.Offset, 10)
	return string(b)
}

// AllMetadata returns Metadata plus what Position and Key imply — "topic",
// "partition", "offset" and "key" — unless Metadata sets them itself. It
// allocates a new map: connectors leave the implied keys out of Metadata so
// that the message path pays for them only when a client asks.
func (m *Message) AllMetadata() map[string]string {
	md := make(map[string]string, len(m.Metadata)+4)
	if m.Position.Stream != "" {
		md["topic"] = m.Position.Stream
		md["partition"] = strconv.FormatInt(int64(m.Position.Partition), 10)
		md["offset"] = strconv.FormatInt(m.Position.Offset, 10)
	}
	if m.Key != nil {
		md["key"] = string(m.Key)
	}
	for k, v := range m.Metadata {
		md[k] = v
	}
	return md
}

// Headers are message headers: multi-valued, names lower-cased on every
// method so that HTTP, Kafka, MQTT and AMQP headers compare alike.
type Headers map[string][]string

// Get returns the first value of name, or "".
func (h Headers) Get(name string) string {
	if v := h[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of name.
func (h Headers) Values(name string) []string { return h[strings.ToLower(name)] }

// Set replaces the values of name with value.
func (h Headers) Set(name, value string) { h[strings.ToLower(name)] = []string{value} }

// Add appends value to the values of name.
func (h Headers) Add(name, value string) {
	k := strings.ToLower(name)
	h[k] = append(h[k], value)
}

// Del removes name.
func (h Headers) Del(name string) { delete(h, strings.ToLower(name)) }

// Clone returns a deep copy; the clone of nil is an empty, writable map.
func (h Headers) Clone() Headers {
	c := make(Headers, len(h))
	for k, v := range h {
		c[k] = append([]string(nil), v...)
	}
	return c
}
