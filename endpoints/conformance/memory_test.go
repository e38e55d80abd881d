package conformance_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// memBroker is an in-memory broker with replay and consumer groups: the
// reference connector the suite must pass, and, with bugs switched on, the
// broken connectors it must fail.
type memBroker struct {
	mu        sync.Mutex
	logs      map[string][]*mediation.Message
	changed   chan struct{} // closed and replaced on every append
	committed map[string]int64
}

func newMemBroker() *memBroker {
	return &memBroker{logs: map[string][]*mediation.Message{}, changed: make(chan struct{}), committed: map[string]int64{}}
}

// bugs are the ways a memEndpoint can break its contract.
type bugs struct {
	reorder       bool // swap messages 10 and 11 on delivery
	cursorReplays bool // resume at the last message read, not after it
	commitPastAck bool // commit everything yielded on Close, nacked or not
	leak          bool // leave a goroutine behind per subscription
	upperHeaders  bool // yield header names as the wire had them, capitalised
	forgetClose   bool // Next after Close returns a message-less nil error... or blocks
	anyCursor     bool // accept a cursor of any stream
	dropKey       bool // lose the key
}

type memEndpoint struct {
	b       *memBroker
	channel string
	bugs    bugs
	closed  atomic.Bool
}

var memCaps = mediation.Capabilities{
	Publish: true, Subscribe: true, Replay: true, QoS: mediation.AllQoS, DefaultStart: mediation.StartEarliest,
}

func (e *memEndpoint) Capabilities() mediation.Capabilities { return memCaps }

func (e *memEndpoint) Publish(ctx context.Context, m *mediation.Message) error {
	if e.closed.Load() {
		return mediation.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &mediation.Message{Key: m.Key, Content: m.Content, Headers: m.Headers.Clone(), Timestamp: time.Now()}
	e.b.append(e.channel, c)
	return nil
}

// produce is Harness.Produce: it writes header names as given, as a
// foreign producer's record would carry them.
func (b *memBroker) produce(_ testing.TB, _, channel string, msgs ...*mediation.Message) {
	for _, m := range msgs {
		b.append(channel, &mediation.Message{Key: m.Key, Content: m.Content, Headers: maps.Clone(m.Headers), Timestamp: time.Now()})
	}
}

func (b *memBroker) append(channel string, m *mediation.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs[channel] = append(b.logs[channel], m)
	close(b.changed)
	b.changed = make(chan struct{})
}

func (e *memEndpoint) Subscribe(_ context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if e.closed.Load() {
		return nil, mediation.ErrClosed
	}
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	var next int64
	switch req.Start {
	case mediation.StartLatest:
		next = int64(len(e.b.logs[e.channel]))
	case mediation.StartCursor:
		for _, p := range req.Cursor.Positions() {
			if p.Stream != e.channel && !e.bugs.anyCursor {
				return nil, fmt.Errorf("%w: stream %q is not %q", mediation.ErrBadCursor, p.Stream, e.channel)
			}
			next = p.Offset
		}
		if e.bugs.cursorReplays && next > 0 {
			next--
		}
	}
	if req.Group != "" {
		if c, ok := e.b.committed[req.Group]; ok {
			next = c
		}
	}
	s := &memSub{e: e, group: req.Group, start: next, next: next, closed: make(chan struct{}), unsettled: map[int64]bool{}, nacked: -1}
	if e.bugs.leak {
		go func() { <-make(chan struct{}) }()
	}
	return s, nil
}

func (e *memEndpoint) Close(context.Context) error {
	e.closed.Store(true)
	return nil
}

type memSub struct {
	e           *memEndpoint
	group       string
	start, next int64
	closeOnce   sync.Once
	closed      chan struct{}

	mu        sync.Mutex
	unsettled map[int64]bool // yielded, not settled
	nacked    int64          // lowest nacked offset; -1 when none
}

func (s *memSub) Start() mediation.Cursor {
	return mediation.NewCursor(mediation.Position{Stream: s.e.channel, Offset: s.start})
}

func (s *memSub) Next(ctx context.Context) (*mediation.Message, error) {
	for {
		select {
		case <-s.closed:
			if s.e.bugs.forgetClose {
				return nil, nil
			}
			return nil, mediation.ErrClosed
		default:
		}
		b := s.e.b
		b.mu.Lock()
		log, changed := b.logs[s.e.channel], b.changed
		b.mu.Unlock()
		if s.next < int64(len(log)) {
			off := s.next
			if s.e.bugs.reorder && (off == 10 || off == 11) && len(log) > 11 {
				off = 21 - off
			}
			s.next++
			return s.message(log[off], off), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
		}
	}
}

func (s *memSub) message(src *mediation.Message, off int64) *mediation.Message {
	m := &mediation.Message{
		ID:        strconv.FormatInt(off, 10),
		Key:       src.Key,
		Content:   src.Content,
		Headers:   make(mediation.Headers, len(src.Headers)),
		Timestamp: src.Timestamp,
		Position:  mediation.Position{Stream: s.e.channel, Offset: off},
	}
	if s.e.bugs.dropKey {
		m.Key = nil
	}
	for k, v := range src.Headers {
		if !s.e.bugs.upperHeaders {
			k = strings.ToLower(k)
		} else if len(k) > 0 {
			k = strings.ToUpper(k[:1]) + k[1:]
		}
		m.Headers[k] = append([]string(nil), v...)
	}
	s.mu.Lock()
	s.unsettled[off] = true
	s.mu.Unlock()
	m.SetAck(func(err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.unsettled, off)
		if err != nil && (s.nacked < 0 || off < s.nacked) {
			s.nacked = off
		}
	})
	return m
}

// Close commits, for a group, the position below which every message
// yielded was acked.
func (s *memSub) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.group == "" {
			return
		}
		s.mu.Lock()
		commit := s.next
		if !s.e.bugs.commitPastAck {
			for off := range s.unsettled {
				commit = min(commit, off)
			}
			if s.nacked >= 0 {
				commit = min(commit, s.nacked)
			}
		}
		s.mu.Unlock()
		s.e.b.mu.Lock()
		s.e.b.committed[s.group] = commit
		s.e.b.mu.Unlock()
	})
	return nil
}

// Interface guards.
var (
	_ mediation.Endpoint     = (*memEndpoint)(nil)
	_ mediation.Subscription = (*memSub)(nil)
)
