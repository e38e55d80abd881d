package kafka

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicegw/sluice/mediation"
)

// buildMessages returns the messages of recs, in order. This is the
// per-message cost of every subscription, so it allocates per batch rather
// than per message: one pooled batch of messages (mediation.NewMessages, at
// most 128 at a time), reused once the engine is done with it. Nothing is
// left per message but its headers, when the record has some; the id is
// derived from the position on demand (Message.Identity), and so is the
// metadata (Message.AllMetadata).
func buildMessages(recs []*kgo.Record) []mediation.Message {
	msgs := mediation.NewMessages(len(recs))
	for i, r := range recs {
		fillMessage(&msgs[i], r)
	}
	return msgs
}

// newMessage returns the message of one record.
func newMessage(r *kgo.Record) *mediation.Message {
	m := new(mediation.Message)
	fillMessage(m, r)
	return m
}

// fillMessage makes m the message of record r. Content, Key and header values
// share the record's memory: messages are read-only to their consumers (see
// mediation.Message).
func fillMessage(m *mediation.Message, r *kgo.Record) {
	m.Key = r.Key
	m.Content = r.Value
	m.Timestamp = r.Timestamp
	m.Position = mediation.Position{Stream: r.Topic, Partition: r.Partition, Offset: r.Offset}
	if len(r.Headers) > 0 {
		h := make(mediation.Headers, len(r.Headers))
		for _, rh := range r.Headers {
			h.Add(rh.Key, string(rh.Value))
		}
		m.Headers = h
	}
}
