package mqtt5

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/mediation"
)

// qos0Buffer is how many QoS 0 messages a subscription buffers before it
// drops them. QoS 1/2 messages are bounded by the receive maximum instead:
// the broker sends no more until the gateway acknowledges.
const qos0Buffer = 1024

// closeTimeout bounds the goodbye to the broker when a subscription closes.
const closeTimeout = 10 * time.Second

// ackInterval is how often paho sends the acknowledgements given since the
// last batch, in the order the messages arrived.
const ackInterval = 20 * time.Millisecond

// Subscription is one MQTT client subscribed to consumer.topic. It is
// returned by Endpoint.Subscribe as a mediation.Subscription.
type Subscription struct {
	e      *Endpoint
	log    *slog.Logger
	id     string // the MQTT client id
	filter string // what is subscribed to, $share/... included
	qos    byte
	// manual: acknowledge to the broker only on Message.Ack
	// (at-least-once); otherwise when Next hands the message out.
	manual bool

	cm       *autopaho.ConnectionManager
	link     *link
	msgs     chan delivery
	seq      atomic.Uint64
	dropped  atomic.Uint64
	lastAck  atomic.Int64 // unix nanoseconds of the last manual acknowledgement
	ready    chan error   // the first subscribe attempt's outcome
	readyOne sync.Once

	ctx    context.Context // ends at Close: stops subscribe attempts
	cancel context.CancelFunc

	failOnce sync.Once
	failed   chan struct{}
	err      error

	mu        sync.Mutex
	isClosed  bool
	workers   sync.WaitGroup // subscribe attempts in flight
	closing   chan struct{}
	closeOnce sync.Once
	release   func() // frees the client id
}

// delivery is a received PUBLISH on its way to Next.
type delivery struct {
	pub    *paho.Publish
	client *paho.Client // the connection that received it, which acknowledges it
	at     time.Time
}

// Subscribe opens a subscription with its own MQTT client, subscribed to
// consumer.topic at consumer.qos. With a Group (or consumer.sharedGroup) it
// is a shared subscription, $share/<group>/<topic>, whose members split the
// messages. It returns when the broker confirmed the subscription (SUBACK),
// so that every message published afterwards is delivered; when the broker
// cannot be reached within connectTimeout the error wraps
// mediation.ErrUnavailable.
//
// MQTT cannot replay: only StartLatest is supported, Start is the empty
// cursor and messages carry no Position. Each message has the ID
// "<client id>/<n>", n counting from 1 in the subscription; Metadata topic
// (the actual topic), qos, retain ("true" for a retained message sent
// because the subscription is new), and duplicate ("true" when the broker
// resends a message after a reconnect); the user properties as headers
// (names lower-cased), the Content Type property as the content-type
// header, and the time it was received as Timestamp.
//
// The subscription reconnects and subscribes again by itself: a broker
// restart does not end Next with an error. Next fails only when the broker
// refuses the subscription itself (not authorized, shared subscriptions not
// supported, ...).
//
// With QoS at-least-once a QoS 1/2 message is acknowledged to the broker
// when the message is acked, in the order received (MQTT requires it): a
// nacked message holds back the acknowledgements after it, and the broker
// sends it again when the session reconnects. Otherwise a message is
// acknowledged when Next returns it. QoS 1/2 messages are flow-controlled
// with consumer.receiveMaximum; QoS 0 messages beyond a buffer of 1024 are
// dropped, counted by Dropped and logged at debug level.
func (e *Endpoint) Subscribe(ctx context.Context, req mediation.SubscribeRequest) (mediation.Subscription, error) {
	if e.closed.Load() {
		return nil, fmt.Errorf("mqtt5: subscribe: %w", mediation.ErrClosed)
	}
	if !e.caps.Subscribe {
		return nil, fmt.Errorf("mqtt5: subscribe: no consumer.topic configured: %w", mediation.ErrUnsupported)
	}
	if req.Start != mediation.StartLatest {
		return nil, fmt.Errorf("mqtt5: subscribe: MQTT cannot replay, a subscription starts with the next message: %w", mediation.ErrUnsupported)
	}
	if req.QoS == mediation.QoSAtLeastOnce && !e.caps.Supports(mediation.QoSAtLeastOnce) {
		return nil, fmt.Errorf("mqtt5: subscribe: at-least-once needs consumer.qos 1 or 2, a sessionExpiry and an explicit clientId: %w", mediation.ErrUnsupported)
	}
	s, err := e.openSubscription(req)
	if err != nil {
		return nil, err
	}
	if err := s.awaitReady(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (e *Endpoint) openSubscription(req mediation.SubscribeRequest) (*Subscription, error) {
	id, release := e.subscriptionClientID(req.Group)
	rm := e.cfg.Consumer.ReceiveMaximum
	s := &Subscription{
		e:       e,
		log:     e.log.With("client", id),
		id:      id,
		filter:  subscriptionFilter(&e.cfg.Consumer, req.Group),
		qos:     byte(e.cfg.Consumer.QoS),
		manual:  req.QoS == mediation.QoSAtLeastOnce,
		msgs:    make(chan delivery, rm+qos0Buffer),
		ready:   make(chan error, 1),
		failed:  make(chan struct{}),
		closing: make(chan struct{}),
		release: release,
	}
	s.link = &link{log: s.log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// A group subscription under an explicit client id keeps its session
	// when it closes, so that it resumes with what it missed after a
	// gateway restart; others start clean and end their session on Close.
	keep := req.Group != "" && e.cfg.ClientID != "" && e.cfg.SessionExpiry > 0
	cfg := e.clientConfig(connection{
		clientID:       id,
		link:           s.link,
		cleanStart:     !keep,
		sessionExpiry:  seconds(e.cfg.SessionExpiry),
		receiveMaximum: uint16(rm),
		endSession:     !keep,
		paho: paho.ClientConfig{
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){s.received},
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackInterval,
		},
		up: s.connectionUp,
	})
	cm, err := autopaho.NewConnection(s.ctx, cfg)
	if err != nil {
		s.cancel()
		release()
		return nil, fmt.Errorf("mqtt5: subscribe: %w", err)
	}
	s.cm = cm
	return s, nil
}

// awaitReady waits for the first SUBACK.
func (s *Subscription) awaitReady(ctx context.Context) error {
	timeout := time.NewTimer(time.Duration(s.e.cfg.ConnectTimeout))
	defer timeout.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-s.ready:
			return err
		case <-ctx.Done():
			return fmt.Errorf("mqtt5: subscribe: %w", ctx.Err())
		case <-timeout.C:
			return unavailable(fmt.Sprintf("subscribe: the broker did not confirm the subscription to %q within connectTimeout (%v)", s.filter, s.e.cfg.ConnectTimeout), s.link.err())
		case <-poll.C:
			// A broker that refuses the client for good (credentials) is
			// reported now rather than after connectTimeout.
			if err := s.link.refusal(); err != nil {
				return fmt.Errorf("mqtt5: subscribe: the broker refused the connection: %w", err)
			}
		}
	}
}

// connectionUp subscribes on every new connection: the session may be new
// (clean start, expired, broker restarted without persistence). Subscribing
// again where the session kept the subscription replaces it, losing nothing;
// retain handling 1 keeps the broker from resending retained messages then.
func (s *Subscription) connectionUp(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return
	}
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		s.subscribe(cm)
	}()
}

func (s *Subscription) subscribe(cm *autopaho.ConnectionManager) {
	sub := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: s.filter, QoS: s.qos, RetainHandling: 1}}}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, time.Duration(s.e.cfg.ConnectTimeout))
		ack, err := cm.Subscribe(ctx, sub)
		cancel()
		switch {
		case err == nil:
			s.readyOne.Do(func() { s.ready <- nil })
			return
		case s.ctx.Err() != nil, errors.Is(err, autopaho.ConnectionDownError):
			return // closing, or a new connection subscribes again
		case ack != nil && len(ack.Reasons) > 0 && ack.Reasons[0] >= 0x80, errors.Is(err, paho.ErrInvalidArguments):
			s.refuse(fmt.Errorf("mqtt5: the broker refused the subscription to %q: %s", s.filter, subackReason(ack, err)))
			return
		}
		// No SUBACK in time on a live connection: try again, or the
		// subscription would sit silent.
		s.log.Warn("mqtt5: subscribe failed; retrying", "filter", s.filter, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff(time.Duration(s.e.cfg.MaxReconnectDelay))(attempt + 1)):
		}
	}
}

// refuse ends the subscription with err, or fails Subscribe when it is the
// first attempt.
func (s *Subscription) refuse(err error) {
	first := false
	s.readyOne.Do(func() { first = true; s.ready <- err })
	if first {
		return
	}
	s.log.Error("mqtt5: subscription ended", "err", err)
	s.failOnce.Do(func() { s.err = err; close(s.failed) })
}

func subackReason(ack *paho.Suback, err error) string {
	if ack == nil || len(ack.Reasons) == 0 {
		return err.Error()
	}
	code := ack.Reasons[0]
	reason := fmt.Sprintf("reason 0x%02x", code)
	if s := subackNames[code]; s != "" {
		reason += " (" + s + ")"
	}
	if ack.Properties != nil && ack.Properties.ReasonString != "" {
		reason += ": " + ack.Properties.ReasonString
	}
	return reason
}

var subackNames = map[byte]string{
	0x80: "unspecified error",
	0x83: "implementation specific error",
	0x87: "not authorized",
	0x8F: "topic filter invalid",
	0x91: "packet identifier in use",
	0x97: "quota exceeded",
	0x9E: "shared subscriptions not supported",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

// received is paho's handler, called in order on the connection's
// goroutine. QoS 1/2 messages always find room: the broker sends at most
// receiveMaximum unacknowledged ones, and the buffer holds that many plus
// the QoS 0 allowance.
func (s *Subscription) received(pr paho.PublishReceived) (bool, error) {
	d := delivery{pub: pr.Packet, client: pr.Client, at: time.Now()}
	if d.pub.QoS == 0 {
		if len(s.msgs) < qos0Buffer {
			select {
			case s.msgs <- d:
				return true, nil
			default:
			}
		}
		n := s.dropped.Add(1)
		s.e.dropped.Add(1)
		s.log.Debug("mqtt5: subscription buffer full, QoS 0 message dropped", "topic", d.pub.Topic, "dropped", n)
		return true, nil
	}
	select {
	case s.msgs <- d:
	case <-s.closing:
	}
	return true, nil
}

// Start is the empty cursor: MQTT has no positions.
func (s *Subscription) Start() mediation.Cursor { return mediation.Cursor{} }

// Next returns the next message; it blocks until one arrives, ctx ends, the
// broker refuses the subscription, or Close is called (mediation.ErrClosed).
func (s *Subscription) Next(ctx context.Context) (*mediation.Message, error) {
	select {
	case <-s.closing:
		return nil, mediation.ErrClosed
	default:
	}
	select {
	case d := <-s.msgs:
		return s.message(d), nil
	case <-s.failed:
		return nil, s.err
	case <-s.closing:
		return nil, mediation.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// message converts d and arranges its acknowledgement.
func (s *Subscription) message(d delivery) *mediation.Message {
	p := d.pub
	m := &mediation.Message{
		ID:        s.id + "/" + strconv.FormatUint(s.seq.Add(1), 10),
		Content:   p.Payload,
		Timestamp: d.at,
		Metadata: map[string]string{
			"topic":  p.Topic,
			"qos":    strconv.Itoa(int(p.QoS)),
			"retain": strconv.FormatBool(p.Retain),
		},
	}
	if p.Duplicate() {
		m.Metadata["duplicate"] = "true"
	}
	if pr := p.Properties; pr != nil && (len(pr.User) > 0 || pr.ContentType != "") {
		m.Headers = make(mediation.Headers, len(pr.User)+1)
		if pr.ContentType != "" {
			m.Headers.Add("content-type", pr.ContentType)
		}
		for _, u := range pr.User {
			m.Headers.Add(u.Key, u.Value)
		}
	}
	if p.QoS == 0 {
		return m
	}
	if !s.manual {
		s.ack(d)
		return m
	}
	m.SetAck(func(err error) {
		if err == nil {
			s.ack(d)
			s.lastAck.Store(time.Now().UnixNano())
		}
	})
	return m
}

// ack acknowledges d on the connection that received it. After a reconnect
// that connection is gone and the broker already resent the message to the
// new one (persistent session) or dropped it (none): nothing to do then.
func (s *Subscription) ack(d delivery) {
	if err := d.client.Ack(d.pub); err != nil && !errors.Is(err, paho.ErrPacketNotFound) {
		s.log.Debug("mqtt5: acknowledgement not sent", "err", err)
	}
}

// Dropped counts the QoS 0 messages dropped because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// ClientID is the MQTT client id of the subscription's connection.
func (s *Subscription) ClientID() string { return s.id }

// Filter is what the subscription subscribed to, $share/<group>/ included.
func (s *Subscription) Filter() string { return s.filter }

// Close disconnects the subscription's client. Unless it is a group
// subscription with a persistent session, the broker drops its session at
// once. Messages not yet acknowledged are not acknowledged. Close is
// idempotent; Next returns mediation.ErrClosed afterwards.
func (s *Subscription) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.isClosed = true
		s.mu.Unlock()
		close(s.closing) // unblocks received
		// Let the last acknowledgements go out with the next batch, or the
		// broker would send those messages again to a resumed session.
		if wait := time.Until(time.Unix(0, s.lastAck.Load()).Add(2 * ackInterval)); wait > 0 {
			time.Sleep(wait)
		}
		s.cancel() // stops subscribe attempts and the connection
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if derr := s.cm.Disconnect(ctx); derr != nil {
			err = fmt.Errorf("mqtt5: disconnect %s: %w", s.id, derr)
		}
		s.workers.Wait()
		s.release()
	})
	return err
}

// String names the subscription in logs.
func (s *Subscription) String() string {
	return "mqtt5 subscription " + s.id + " to " + s.filter
}

// Interface guards.
var _ mediation.Subscription = (*Subscription)(nil)
