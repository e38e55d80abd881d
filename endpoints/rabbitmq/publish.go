package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicegw/sluice/mediation"
)

// Publish sends msg to producer.exchange with producer.routingKey and
// returns once the broker confirmed it (publisher confirms). It never waits
// longer than publishTimeout: a broker that is down, unreachable or blocked
// yields an error wrapping mediation.ErrUnavailable, as does a negative
// confirm. A refusal the broker will repeat (no such exchange, access
// refused, message too large) is a plain error; with producer.mandatory a
// message that no queue received is one too.
//
// The message travels with its headers in the AMQP headers table
// (multi-valued ones as arrays), content-type and content-encoding as
// properties, its ID as message-id (one is generated when it has none) and
// its timestamp, persistent unless producer.persistent is false.
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if !e.caps.Publish {
		return fmt.Errorf("rabbitmq: publish: no producer.exchange or producer.routingKey configured: %w", mediation.ErrUnsupported)
	}
	if e.closed.Load() {
		return fmt.Errorf("rabbitmq: publish: %w", mediation.ErrClosed)
	}
	return e.pub.publish(ctx, msg)
}

// publisher owns the publishing channel: one channel in confirm mode on the
// publish connection, shared by every publish (amqp091 channels are safe
// for concurrent use), reopened with confirms re-enabled and the exchange
// redeclared whenever it or the connection is lost.
type publisher struct {
	e       *Endpoint
	link    *link
	ids     *idGen
	target  string // exchange and routing key, for messages
	timeout time.Duration
	done    chan struct{} // closed when run returned

	mu       sync.Mutex
	cur      *pubChannel   // nil while none is open
	changed  chan struct{} // closed and replaced whenever cur changes
	lastErr  error         // why the last channel could not be opened or was lost
	setupErr error         // why the last set-up failed; nil once one succeeded
}

// pubChannel is one incarnation of the publishing channel.
type pubChannel struct {
	ch      *amqp.Channel
	returns *returns      // nil unless producer.mandatory
	gone    chan struct{} // closed once lost is set
	lost    error         // why the channel closed
}

func newPublisher(e *Endpoint, l *link) *publisher {
	p := &publisher{
		e:       e,
		link:    l,
		ids:     newIDGen(),
		target:  fmt.Sprintf("exchange %q, routing key %q", e.cfg.Producer.Exchange, e.cfg.Producer.RoutingKey),
		timeout: time.Duration(e.cfg.PublishTimeout),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	go p.run()
	return p
}

func (p *publisher) publish(ctx context.Context, msg *mediation.Message) error {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cfg := &p.e.cfg.Producer
	pub := amqp.Publishing{
		MessageId:    msg.ID,
		Timestamp:    msg.Timestamp,
		Body:         msg.Content,
		DeliveryMode: amqp.Transient,
	}
	if pub.MessageId == "" {
		pub.MessageId = p.ids.next()
	}
	if pub.Timestamp.IsZero() {
		pub.Timestamp = time.Now()
	}
	if cfg.Persistent {
		pub.DeliveryMode = amqp.Persistent
	}
	if err := encodeHeaders(msg.Headers, &pub); err != nil {
		return err
	}

	pc, err := p.channel(pctx)
	if err != nil {
		return p.failure(ctx, err)
	}
	dc, err := pc.ch.PublishWithDeferredConfirmWithContext(pctx, cfg.Exchange, cfg.RoutingKey, cfg.Mandatory, false, pub)
	if err != nil {
		if pc.ch.IsClosed() {
			return p.lostError(pctx, pc)
		}
		return p.failure(ctx, fmt.Errorf("rabbitmq: publish to %s: %w", p.target, err))
	}
	ok, err := dc.WaitContext(pctx)
	switch {
	case err != nil:
		return p.failure(ctx, unavailable(fmt.Sprintf("publish to %s not confirmed within %v", p.target, p.timeout), nil))
	case !ok && pc.ch.IsClosed():
		return p.lostError(pctx, pc)
	case !ok:
		return unavailable(fmt.Sprintf("publish to %s", p.target), errors.New("the broker refused the message (negative confirm)"))
	}
	if pc.returns != nil {
		if r := pc.returns.take(pub.MessageId); r != nil {
			return fmt.Errorf("rabbitmq: publish to %s: no queue received the message (%d %s)", p.target, r.code, r.text)
		}
	}
	return nil
}

// failure turns err into what Publish returns: the caller's own
// cancellation stays itself, a closed endpoint is ErrClosed, and anything
// else that ran into the publish deadline is "broker unavailable".
func (p *publisher) failure(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("rabbitmq: publish: %w", ctx.Err())
	case errors.Is(err, mediation.ErrClosed):
		return fmt.Errorf("rabbitmq: publish: %w", mediation.ErrClosed)
	case errors.Is(err, mediation.ErrUnavailable), isRefusal(err):
		return err
	}
	return unavailable("publish to "+p.target, err)
}

// lostError says why a publish failed because its channel closed under it.
// A broker's refusal (404 no such exchange, 403, 406 ...) closes the
// channel too: it is reported as is, since retrying cannot cure it.
func (p *publisher) lostError(ctx context.Context, pc *pubChannel) error {
	select {
	case <-pc.gone: // set right after the channel closed
	case <-ctx.Done():
		return unavailable("publish to "+p.target, errors.New("channel closed before the broker confirmed"))
	}
	if isRefusal(pc.lost) {
		return fmt.Errorf("rabbitmq: publish to %s: %w", p.target, pc.lost)
	}
	return unavailable("publish to "+p.target+": connection lost before the broker confirmed", pc.lost)
}

// isRefusal reports broker errors that a retry would meet again.
func isRefusal(err error) bool {
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || !aerr.Server {
		return false
	}
	switch aerr.Code {
	case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed, amqp.ResourceLocked, amqp.ContentTooLarge, amqp.NotImplemented:
		return true
	}
	return false
}

// channel returns the open publishing channel, waiting for one until ctx
// ends.
func (p *publisher) channel(ctx context.Context) (*pubChannel, error) {
	for {
		p.mu.Lock()
		pc, changed, lastErr, setupErr := p.cur, p.changed, p.lastErr, p.setupErr
		p.mu.Unlock()
		if pc != nil && !pc.ch.IsClosed() {
			return pc, nil
		}
		if pc == nil && isRefusal(setupErr) && p.link.err() == nil {
			// The broker refused the channel's set-up (the exchange is
			// missing or of another type): waiting would only delay the
			// same answer. run keeps trying in the background.
			return nil, fmt.Errorf("rabbitmq: publish to %s: %w", p.target, setupErr)
		}
		select {
		case <-changed:
		case <-p.link.closed():
			return nil, mediation.ErrClosed
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			if err := p.link.err(); err != nil {
				lastErr = err // the connection is down: say why
			}
			if lastErr == nil {
				lastErr = errors.New("still connecting")
			}
			return nil, unavailable(fmt.Sprintf("no connection to %s within %v", p.link.addr, p.timeout), lastErr)
		}
	}
}

// set publishes the current channel (nil: none) and, when err is set, why
// there is none; setup says err is a failed set-up.
func (p *publisher) set(pc *pubChannel, err error, setup bool) {
	p.mu.Lock()
	p.cur = pc
	if err != nil {
		p.lastErr = err
	}
	switch {
	case setup:
		p.setupErr = err
	case pc != nil:
		p.setupErr = nil
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// run keeps a publishing channel open while the link is.
func (p *publisher) run() {
	defer close(p.done)
	failures := 0
	for {
		conn, err := p.link.get(p.link.ctx)
		if err != nil {
			return // the link was closed
		}
		pc, lost, err := p.open(conn)
		if err != nil {
			p.set(nil, err, true)
			if conn.IsClosed() {
				continue // the link redials; get waits for it
			}
			p.e.log.Warn("rabbitmq: cannot open the publishing channel, retrying", "error", err)
			if !sleep(p.link.ctx, p.e.cfg.Reconnect.delay(failures)) {
				return
			}
			failures++
			continue
		}
		failures = 0
		p.set(pc, nil, false)
		select {
		case aerr := <-lost:
			var err error = errors.New("channel closed")
			if aerr != nil {
				err = aerr
			}
			pc.lost = err
			close(pc.gone)
			p.set(nil, err, false)
			if !conn.IsClosed() {
				p.e.log.Warn("rabbitmq: the broker closed the publishing channel, reopening it", "error", err)
			}
		case <-p.link.closed():
			pc.lost = mediation.ErrClosed
			close(pc.gone)
			p.set(nil, mediation.ErrClosed, false)
			if pc.returns != nil {
				<-pc.returns.done // ends when the link closes the connection
			}
			return
		}
	}
}

// open opens a channel in confirm mode and declares (or checks) the
// producer's exchange on it.
func (p *publisher) open(conn *amqp.Connection) (*pubChannel, <-chan *amqp.Error, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open publishing channel: %w", err)
	}
	fail := func(err error) (*pubChannel, <-chan *amqp.Error, error) {
		_ = ch.Close()
		return nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return fail(fmt.Errorf("enable publisher confirms: %w", err))
	}
	cfg := &p.e.cfg
	if err := declareExchange(ch, cfg.Declare, cfg.Producer.Exchange, cfg.producerExchangeType()); err != nil {
		return fail(err)
	}
	pc := &pubChannel{ch: ch, gone: make(chan struct{})}
	if cfg.Producer.Mandatory {
		// Unbuffered on purpose: see returns.
		pc.returns = newReturns(ch.NotifyReturn(make(chan amqp.Return)), 2*p.timeout)
	}
	return pc, ch.NotifyClose(make(chan *amqp.Error, 1)), nil
}

// close stops the publisher and closes its connection.
func (p *publisher) close(ctx context.Context) error {
	err := p.link.close(ctx)
	select {
	case <-p.done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("rabbitmq: closing the publisher: %w", ctx.Err())
		}
	}
	return err
}

// declareExchange declares a durable exchange when declare is on, or checks
// that it exists. The default exchange ("") always exists, and names
// starting with amq. belong to the broker: those are only checked.
func declareExchange(ch *amqp.Channel, declare bool, name, kind string) error {
	var err error
	switch {
	case name == "":
		return nil
	case declare && !isReserved(name):
		err = ch.ExchangeDeclare(name, kind, true, false, false, false, nil)
	default:
		err = ch.ExchangeDeclarePassive(name, kind, true, false, false, false, nil)
	}
	if err != nil {
		return fmt.Errorf("declare exchange %q: %w", name, err)
	}
	return nil
}

func isReserved(name string) bool { return strings.HasPrefix(name, "amq.") }

// returns matches the messages the broker returned as unroutable
// (mandatory publishes) with the publishes waiting for their confirms, by
// message id.
//
// The broker sends a message's basic.return before its basic.ack, and
// amqp091 hands both over in that order from one goroutine, blocking on an
// unbuffered channel until loop has received the return. So when a publish
// sees its confirm and asks loop, loop has already received the return and
// answers only after recording it.
type returns struct {
	in     <-chan amqp.Return
	ask    chan returnQuery
	done   chan struct{} // closed when loop returned: the channel is gone
	maxAge time.Duration

	seen map[string]returned // owned by loop; read by take once done
}

type returned struct {
	code uint16
	text string
	at   time.Time
}

type returnQuery struct {
	id    string
	reply chan *returned
}

func newReturns(in <-chan amqp.Return, maxAge time.Duration) *returns {
	r := &returns{in: in, ask: make(chan returnQuery), done: make(chan struct{}), maxAge: maxAge, seen: map[string]returned{}}
	go r.loop()
	return r
}

func (r *returns) loop() {
	defer close(r.done)
	for {
		select {
		case ret, ok := <-r.in:
			if !ok {
				return
			}
			r.prune()
			r.seen[ret.MessageId] = returned{code: ret.ReplyCode, text: ret.ReplyText, at: time.Now()}
		case q := <-r.ask:
			if v, ok := r.seen[q.id]; ok {
				delete(r.seen, q.id)
				q.reply <- &v
			} else {
				q.reply <- nil
			}
		}
	}
}

// prune forgets returns nobody asked about (their publish gave up), so that
// memory stays bounded.
func (r *returns) prune() {
	if len(r.seen) < 64 {
		return
	}
	cutoff := time.Now().Add(-r.maxAge)
	for id, v := range r.seen {
		if v.at.Before(cutoff) {
			delete(r.seen, id)
		}
	}
}

// take reports whether the confirmed message with id was returned.
func (r *returns) take(id string) *returned {
	q := returnQuery{id: id, reply: make(chan *returned, 1)}
	select {
	case r.ask <- q:
		return <-q.reply
	case <-r.done:
		// The channel closed after the confirm: whatever was returned is
		// recorded, and seen no longer changes.
		if v, ok := r.seen[id]; ok {
			return &v
		}
		return nil
	}
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
