package solace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// Subscribe opens a subscription on the consuming connection: a session of
// its own with a receiver link per source (each topic of consumer.topics,
// or the queue or address), each with consumer.credit of link credit. It
// returns once the broker attached every link, or fails within
// connectTimeout with an error wrapping mediation.ErrUnavailable when the
// broker cannot be reached; a refusal (no such queue, access refused) is
// returned as is.
//
// Every subscription of a queue or an address reads the same source: they
// compete for its messages, with a Group or without. Topic subscriptions
// cannot serve a Group (mediation.ErrUnsupported): nothing would keep their
// messages while the group is away. AMQP cannot replay, so only
// mediation.StartLatest is accepted.
func (e *Endpoint) Subscribe(ctx context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("solace: subscribe: no consumer.topics, consumer.queue or consumer.address configured: %w", mediation.ErrUnsupported)
	}
	switch req.Start {
	case mediation.StartLatest:
	case mediation.StartCursor:
		return nil, fmt.Errorf("solace: %w: AMQP 1.0 cannot resume from a cursor", mediation.ErrBadCursor)
	default:
		return nil, fmt.Errorf("solace: subscribe: AMQP 1.0 cannot replay from the earliest message or a time: %w", mediation.ErrUnsupported)
	}
	if req.Group != "" && len(e.cfg.Consumer.Topics) > 0 {
		return nil, fmt.Errorf("solace: subscribe: consumer group %.40q: topic subscriptions keep nothing while a group is away; subscribe a Solace queue to the topics and set consumer.queue: %w", req.Group, mediation.ErrUnsupported)
	}
	k, err := e.startSubscription()
	if err != nil {
		return nil, err
	}
	s := newSubscription(e, k)
	go s.run()

	timeout := time.Duration(e.cfg.ConnectTimeout)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case err := <-s.ready:
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		return s, nil
	case <-s.exited: // the endpoint closed meanwhile
		return nil, fmt.Errorf("solace: subscribe: %w", mediation.ErrClosed)
	case <-wctx.Done():
		_ = s.Close()
		if errors.Is(wctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("solace: subscribe: %w", wctx.Err())
		}
		cause := s.err()
		if cause == nil {
			cause = k.err()
		}
		return nil, unavailable(fmt.Sprintf("subscribe: not attached within %v", timeout), cause)
	}
}

// subscription reads its sources on a session of its own. A goroutine
// (run) keeps the session and its receivers open, opening them again
// whenever they or the connection are lost, and hands messages to Next one
// at a time. Link credit bounds what the broker sends ahead of settlement.
type subscription struct {
	e   *Endpoint
	k   *keeper
	log *slog.Logger

	ctx    context.Context // ends on Close or when the endpoint closes
	cancel context.CancelFunc
	out    chan delivery // unbuffered: run to Next
	ready  chan error    // the first set-up's outcome, cap 1
	exited chan struct{} // closed when run returned
	once   sync.Once

	mu      sync.Mutex
	lastErr error // why the last set-up failed

	seq uint64 // messages yielded; owned by Next's goroutine
}

// delivery is a message and the receiver that settles it.
type delivery struct {
	r      *amqp.Receiver
	m      *amqp.Message
	source string
}

var subscriptionIDs atomic.Uint64

func newSubscription(e *Endpoint, k *keeper) *subscription {
	ctx, cancel := context.WithCancel(k.ctx)
	return &subscription{
		e: e, k: k,
		log: e.log.With("subscription", subscriptionIDs.Add(1)),
		ctx: ctx, cancel: cancel,
		out:    make(chan delivery),
		ready:  make(chan error, 1),
		exited: make(chan struct{}),
	}
}

// Start is empty: AMQP 1.0 has no positions to resume from.
func (s *subscription) Start() mediation.Cursor { return mediation.Cursor{} }

// Next returns the next message. It blocks until one arrives, ctx ends, or
// the subscription is closed (mediation.ErrClosed, also when the endpoint
// closes). A lost connection is not reported: the subscription reconnects
// and goes on.
//
// The message's Ack accepts the delivery. Nack releases it, so that the
// broker delivers it again, unless the reason is a *mediation.Rejection (a
// policy refused the message itself, which a redelivery would not change):
// then it rejects it, and the broker dead-letters or drops it as its
// configuration says. What is not settled when the session ends (Close, a
// lost connection) goes back to the broker too.
func (s *subscription) Next(ctx context.Context) (*mediation.Message, error) {
	if s.ctx.Err() != nil {
		return nil, mediation.ErrClosed
	}
	select {
	case d := <-s.out:
		return s.message(d), nil
	case <-s.ctx.Done():
		return nil, mediation.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *subscription) message(d delivery) *mediation.Message {
	s.seq++
	m := fromAMQP(d.m, d.source, s.seq)
	settle := time.Duration(s.e.cfg.ConnectTimeout)
	r, am := d.r, d.m
	// Settlements go to the link the message came on: after a reconnect that
	// link is gone, settling fails harmlessly, and the broker has already
	// released the message.
	m.SetAck(func(err error) {
		ctx, cancel := context.WithTimeout(context.Background(), settle)
		defer cancel()
		var rej *mediation.Rejection
		switch {
		case err == nil:
			_ = r.AcceptMessage(ctx, am)
		case errors.As(err, &rej):
			_ = r.RejectMessage(ctx, am, &amqp.Error{Condition: "sluice:rejected", Description: truncate(err.Error(), 200)})
		default:
			_ = r.ReleaseMessage(ctx, am)
		}
	})
	return m
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Close ends the subscription's session, which returns what was not
// settled to the broker, and waits (up to connectTimeout) for it. It is
// idempotent; Next then returns mediation.ErrClosed.
func (s *subscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		t := time.NewTimer(time.Duration(s.e.cfg.ConnectTimeout) + closeTimeout)
		defer t.Stop()
		select {
		case <-s.exited:
		case <-t.C: // a stalled connection: run ends when it is dropped
		}
	})
	return nil
}

func (s *subscription) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *subscription) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// run keeps the receivers open until the subscription is closed.
func (s *subscription) run() {
	defer s.e.subs.Done()
	defer close(s.exited)
	first := true
	for failures := 0; ; {
		conn, err := s.k.get(s.ctx)
		if err != nil {
			return // closed
		}
		session, receivers, err := s.open(conn)
		if err != nil {
			s.setErr(err)
			if s.ctx.Err() != nil {
				return
			}
			if first && isRefusal(err) {
				s.ready <- fmt.Errorf("solace: subscribe: %w", err)
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				s.k.drop(conn) // alive but not answering
			}
			if conn.Err() == nil {
				s.log.Warn("solace: cannot attach, retrying", "error", err)
			}
			if !sleep(s.ctx, s.e.cfg.Reconnect.delay(failures)) {
				return
			}
			failures++
			continue
		}
		if first {
			first = false
			s.ready <- nil
		} else {
			s.log.Info("solace: receiving again after a loss")
		}
		failures = 0
		err = s.forward(receivers)
		closeSession(session) // releases what was not settled
		if s.ctx.Err() != nil {
			return
		}
		if conn.Err() == nil {
			// The links alone were lost (detached by the broker): wait a
			// little before attaching again.
			s.log.Warn("solace: receiver lost, attaching again", "error", err)
			if !sleep(s.ctx, s.e.cfg.Reconnect.delay(0)) {
				return
			}
		}
	}
}

// receiver is one attached source.
type receiver struct {
	r      *amqp.Receiver
	source string
}

// open begins a session on conn and attaches a receiver for every source,
// within connectTimeout.
func (s *subscription) open(conn *amqp.Conn) (*amqp.Session, []receiver, error) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Duration(s.e.cfg.ConnectTimeout))
	defer cancel()
	session, err := conn.NewSession(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("begin session: %w", err)
	}
	unsettled := amqp.SenderSettleModeUnsettled
	first := amqp.ReceiverSettleModeFirst
	receivers := make([]receiver, 0, len(s.e.sources))
	for _, src := range s.e.sources {
		r, err := session.NewReceiver(ctx, src, &amqp.ReceiverOptions{
			Credit:                    int32(s.e.cfg.Consumer.Credit),
			RequestedSenderSettleMode: &unsettled, // the broker keeps every message until it is settled
			SettlementMode:            &first,
		})
		if err != nil {
			closeSession(session)
			return nil, nil, fmt.Errorf("attach receiver for %s: %w", src, err)
		}
		receivers = append(receivers, receiver{r: r, source: src})
	}
	return session, receivers, nil
}

// forward hands the messages of every receiver to Next until one of them
// fails or the subscription is closed, and returns why it stopped.
func (s *subscription) forward(receivers []receiver) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		cause error
	)
	for _, rc := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := rc.r.Receive(ctx, nil)
				if err != nil {
					once.Do(func() { cause = err })
					cancel()
					return
				}
				select {
				case s.out <- delivery{r: rc.r, m: m, source: rc.source}:
				case <-ctx.Done():
					return // unsettled: released when the session ends
				}
			}
		}()
	}
	wg.Wait()
	return cause
}

// closeSession ends a session, which detaches its links and returns their
// unsettled messages to the broker. Links are not closed one by one:
// RabbitMQ 3.x never confirms a link's detach (fixed in 4.0).
func closeSession(session *amqp.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = session.Close(ctx)
}

// Interface guards.
var _ mediation.Subscription = (*subscription)(nil)
