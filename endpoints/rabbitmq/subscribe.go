package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

// groupQueuePrefix names the durable queue of a consumer group.
const groupQueuePrefix = "sluice."

// Subscribe opens a subscription on the consuming connection: a channel of
// its own with basic.qos consumer.prefetch, its queue declared and bound,
// and a consumer with manual acknowledgements. It returns once the broker
// accepted all that, or fails within connectTimeout with an error wrapping
// mediation.ErrUnavailable when the broker cannot be reached; a refusal
// (no such exchange or queue, access refused) is returned as is.
//
// Which queue depends on the configuration and req.Group: see Consumer.
// RabbitMQ cannot replay, so only mediation.StartLatest is accepted.
func (e *Endpoint) Subscribe(ctx context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("rabbitmq: subscribe: no consumer.exchange or consumer.queue configured: %w", mediation.ErrUnsupported)
	}
	switch req.Start {
	case mediation.StartLatest:
	case mediation.StartCursor:
		return nil, fmt.Errorf("rabbitmq: %w: RabbitMQ cannot resume from a cursor", mediation.ErrBadCursor)
	default:
		return nil, fmt.Errorf("rabbitmq: subscribe: RabbitMQ cannot replay from the earliest message or a time: %w", mediation.ErrUnsupported)
	}
	q, err := e.queueFor(req.Group)
	if err != nil {
		return nil, err
	}
	l, err := e.startSubscription()
	if err != nil {
		return nil, err
	}
	s := newSubscription(e, l, q)
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
		return nil, fmt.Errorf("rabbitmq: subscribe: %w", mediation.ErrClosed)
	case <-wctx.Done():
		_ = s.Close()
		if errors.Is(wctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("rabbitmq: subscribe: %w", wctx.Err())
		}
		cause := s.err()
		if cause == nil {
			cause = l.err()
		}
		return nil, unavailable(fmt.Sprintf("subscribe: not set up within %v", timeout), cause)
	}
}

// queueSpec says which queue a subscription consumes and how it is set up.
type queueSpec struct {
	name    string // "" for a queue the broker names
	durable bool   // a named durable queue; else exclusive and auto-delete
	declare bool   // declare the named queue, else only check it exists
}

func (e *Endpoint) queueFor(group string) (queueSpec, error) {
	c := &e.cfg.Consumer
	switch {
	case c.Queue != "":
		return queueSpec{name: c.Queue, durable: true, declare: e.cfg.Declare}, nil
	case group != "":
		name := groupQueuePrefix + group
		if err := checkName(name); err != nil {
			return queueSpec{}, fmt.Errorf("rabbitmq: subscribe: group %.40q: queue name %w", group, err)
		}
		return queueSpec{name: name, durable: true, declare: true}, nil
	}
	return queueSpec{}, nil
}

// subscription consumes one queue. A goroutine (run) keeps a consumer open
// on the consuming connection, reopening the channel, redeclaring the queue
// and its binding and consuming again whenever the channel or the
// connection is lost, and hands deliveries to Next one at a time. The
// broker sends at most prefetch unacknowledged deliveries, which bounds what
// the subscription holds.
type subscription struct {
	e    *Endpoint
	link *link
	q    queueSpec
	tag  string
	log  *slog.Logger

	ctx    context.Context // ends on Close or when the endpoint closes
	cancel context.CancelFunc
	out    chan amqp.Delivery // unbuffered: run to Next
	ready  chan error         // the first set-up's outcome, cap 1
	exited chan struct{}      // closed when run returned
	once   sync.Once

	mu      sync.Mutex
	lastErr error // why the last set-up failed

	seq uint64 // messages yielded; owned by Next's goroutine
}

func newSubscription(e *Endpoint, l *link, q queueSpec) *subscription {
	ctx, cancel := context.WithCancel(l.ctx)
	tag := "sluice-" + strconv.FormatUint(e.nextSub.Add(1), 10)
	return &subscription{
		e: e, link: l, q: q, tag: tag,
		log: e.log.With("consumer", tag, "queue", q.name),
		ctx: ctx, cancel: cancel,
		out:    make(chan amqp.Delivery),
		ready:  make(chan error, 1),
		exited: make(chan struct{}),
	}
}

// Start is empty: RabbitMQ has no positions to resume from.
func (s *subscription) Start() mediation.Cursor { return mediation.Cursor{} }

// Next returns the next delivery as a message. It blocks until one arrives,
// ctx ends, or the subscription is closed (mediation.ErrClosed, also when
// the endpoint closes). A lost connection is not reported: the subscription
// reconnects and goes on.
//
// The message's Ack acknowledges the delivery (basic.ack); Nack returns it
// to its queue (basic.nack with requeue). Deliveries not acknowledged when
// the channel is lost or closed go back to their queue too, to be delivered
// again: to this subscription after it reconnects when the queue is durable,
// or to nobody when it was the subscription's own queue, which the broker
// deletes with the channel.
func (s *subscription) Next(ctx context.Context) (*mediation.Message, error) {
	if s.ctx.Err() != nil {
		return nil, mediation.ErrClosed
	}
	select {
	case d := <-s.out:
		return s.message(&d), nil
	case <-s.ctx.Done():
		return nil, mediation.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// message converts d. Its metadata is the exchange, the routing key and
// whether the broker redelivered it; its ID the AMQP message-id, or the
// number of the message in this subscription when it has none.
func (s *subscription) message(d *amqp.Delivery) *mediation.Message {
	s.seq++
	m := &mediation.Message{
		ID:        d.MessageId,
		Content:   d.Body,
		Headers:   decodeHeaders(d.Headers, d.ContentType, d.ContentEncoding),
		Timestamp: d.Timestamp,
		Metadata: map[string]string{
			"exchange":    d.Exchange,
			"routingKey":  d.RoutingKey,
			"redelivered": strconv.FormatBool(d.Redelivered),
		},
	}
	if m.ID == "" {
		m.ID = strconv.FormatUint(s.seq, 10)
	}
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	// Acks go to the channel the delivery came on: after a reconnect that
	// channel is closed, the ack fails harmlessly and the broker has already
	// requeued the delivery (delivery tags mean nothing on another channel).
	ack, tag := d.Acknowledger, d.DeliveryTag
	m.SetAck(func(err error) {
		if err == nil {
			_ = ack.Ack(tag, false)
		} else {
			_ = ack.Nack(tag, false, true)
		}
	})
	return m
}

// Close cancels the consumer and closes its channel, returning what was not
// acknowledged to its queue, and waits (up to connectTimeout) until the
// broker has done so. It is idempotent; Next then returns
// mediation.ErrClosed.
func (s *subscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		t := time.NewTimer(time.Duration(s.e.cfg.ConnectTimeout))
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

// run keeps a consumer open until the subscription is closed.
func (s *subscription) run() {
	defer s.e.subs.Done()
	defer close(s.exited)
	first := true
	for failures := 0; ; {
		conn, err := s.link.get(s.ctx)
		if err != nil {
			return // closed
		}
		ch, deliveries, err := s.open(conn)
		if err != nil {
			s.setErr(err)
			if s.ctx.Err() != nil {
				return
			}
			if first && isRefusal(err) {
				s.ready <- fmt.Errorf("rabbitmq: subscribe: %w", err)
				return
			}
			if !conn.IsClosed() {
				s.log.Warn("rabbitmq: cannot consume, retrying", "error", err)
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
			s.log.Info("rabbitmq: consuming again after a loss")
		}
		failures = 0
		s.forward(deliveries)
		// Closing the channel cancels the consumer; the broker requeues
		// what was not acknowledged.
		_ = ch.Close()
		if s.ctx.Err() != nil {
			return
		}
		if !conn.IsClosed() {
			// The channel alone was lost or the consumer cancelled (its
			// queue deleted): wait a little before setting up again.
			s.log.Warn("rabbitmq: consumer lost, consuming again")
			if !sleep(s.ctx, s.e.cfg.Reconnect.delay(0)) {
				return
			}
		}
	}
}

// forward hands deliveries to Next until the channel ends or the
// subscription is closed.
func (s *subscription) forward(deliveries <-chan amqp.Delivery) {
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			select {
			case s.out <- d:
			case <-s.ctx.Done():
				return
			}
		case <-s.ctx.Done():
			return
		}
	}
}

// open sets the consumer up on a new channel of conn: qos, the exchange
// (declared or checked), the queue (declared or checked), its binding, and
// the consumer itself.
func (s *subscription) open(conn *amqp.Connection) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	deliveries, err := s.setup(ch)
	if err != nil {
		_ = ch.Close()
		return nil, nil, err
	}
	return ch, deliveries, nil
}

func (s *subscription) setup(ch *amqp.Channel) (<-chan amqp.Delivery, error) {
	cfg := &s.e.cfg
	c := &cfg.Consumer
	if err := ch.Qos(c.Prefetch, 0, false); err != nil {
		return nil, fmt.Errorf("set prefetch: %w", err)
	}
	if err := declareExchange(ch, cfg.Declare, c.Exchange, c.ExchangeType); err != nil {
		return nil, err
	}
	name := s.q.name
	var err error
	switch {
	case !s.q.durable:
		var q amqp.Queue
		q, err = ch.QueueDeclare("", false, true, true, false, nil)
		name = q.Name
	case s.q.declare:
		_, err = ch.QueueDeclare(name, true, false, false, false, nil)
	default:
		_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("declare queue %q: %w", name, err)
	}
	if c.Exchange != "" {
		if err := ch.QueueBind(name, c.RoutingKey, c.Exchange, false, nil); err != nil {
			return nil, fmt.Errorf("bind queue %q to exchange %q: %w", name, c.Exchange, err)
		}
	}
	deliveries, err := ch.Consume(name, s.tag, false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume queue %q: %w", name, err)
	}
	return deliveries, nil
}

// Interface guards.
var _ mediation.Subscription = (*subscription)(nil)

// DeleteGroup deletes the durable queue of group subscriptions for group,
// with the messages it still holds. An endpoint with consumer.queue set
// shares that queue between groups and deletes nothing.
func (e *Endpoint) DeleteGroup(ctx context.Context, group string) error {
	if e.cfg.Consumer.Queue != "" || !e.caps.Subscribe {
		return nil
	}
	l, err := e.startSubscription()
	if err != nil {
		return err
	}
	defer e.subs.Done()
	conn, err := l.get(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: delete queue: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: delete queue: %w", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDelete(groupQueuePrefix+group, false, false, false); err != nil {
		return fmt.Errorf("rabbitmq: delete queue %q: %w", groupQueuePrefix+group, err)
	}
	return nil
}

var _ mediation.GroupDeleter = (*Endpoint)(nil)
