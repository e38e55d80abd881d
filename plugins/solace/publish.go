package solace

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/sluicegw/sluice/mediation"
)

// Publish sends msg to producer.topic or producer.address and returns once
// the broker settled it: accepted, for persistent delivery; written to the
// connection, for direct delivery. It never waits longer than
// publishTimeout: a broker that is down, unreachable or slow yields an error
// wrapping mediation.ErrUnavailable, as does a message the broker released
// (did not take, for now). A refusal the broker will repeat (no such
// address, access refused, the message rejected) is a plain error.
//
// The message travels as one data section, with its headers as application
// properties (see toAMQP), durable for persistent delivery.
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if !e.caps.Publish {
		return fmt.Errorf("solace: publish: no producer.topic or producer.address configured: %w", mediation.ErrUnsupported)
	}
	if e.closed.Load() {
		return fmt.Errorf("solace: publish: %w", mediation.ErrClosed)
	}
	return e.pub.publish(ctx, msg)
}

// publisher owns the sender link: one session and one sender on the publish
// connection, shared by every publish (go-amqp senders are safe for
// concurrent use), opened on first use and again after it or the
// connection was lost.
type publisher struct {
	e       *Endpoint
	k       *keeper
	target  string
	direct  bool
	timeout time.Duration
	ids     *idGen

	lock chan struct{} // held (cap 1) while cur is read or replaced
	cur  *pubLink      // nil until opened, or after it was lost
}

// pubLink is one incarnation of the sender link.
type pubLink struct {
	conn    *amqp.Conn
	session *amqp.Session
	sender  *amqp.Sender
}

func newPublisher(e *Endpoint, k *keeper, target string) *publisher {
	return &publisher{
		e: e, k: k, target: target,
		direct:  e.cfg.Producer.DeliveryMode == DeliveryDirect,
		timeout: time.Duration(e.cfg.PublishTimeout),
		ids:     newIDGen(),
		lock:    make(chan struct{}, 1),
	}
}

func (p *publisher) publish(ctx context.Context, msg *mediation.Message) error {
	am, err := toAMQP(msg, !p.direct, p.ids)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	pl, err := p.link(pctx)
	if err != nil {
		return p.failure(ctx, err)
	}
	if p.direct {
		if err := pl.sender.Send(pctx, am, nil); err != nil {
			p.lost(pl, err)
			return p.failure(ctx, err)
		}
		return nil
	}
	receipt, err := pl.sender.SendWithReceipt(pctx, am, nil)
	if err != nil {
		p.lost(pl, err)
		return p.failure(ctx, err)
	}
	state, err := receipt.Wait(pctx)
	if err != nil {
		p.lost(pl, err)
		return p.failure(ctx, err)
	}
	switch s := state.(type) {
	case *amqp.StateAccepted:
		return nil
	case *amqp.StateRejected:
		if s.Error != nil {
			return fmt.Errorf("solace: publish to %s: the broker rejected the message: %w", p.target, s.Error)
		}
		return fmt.Errorf("solace: publish to %s: the broker rejected the message", p.target)
	case *amqp.StateReleased, *amqp.StateModified:
		return unavailable("publish to "+p.target, errors.New("the broker did not take the message (released)"))
	}
	return unavailable("publish to "+p.target, fmt.Errorf("unexpected outcome %v", state))
}

// failure turns err into what Publish returns: the caller's own
// cancellation stays itself, a closed endpoint is ErrClosed, a broker's
// refusal is reported as is, and anything else is "broker unavailable".
func (p *publisher) failure(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("solace: publish: %w", ctx.Err())
	case errors.Is(err, mediation.ErrClosed):
		return fmt.Errorf("solace: publish: %w", mediation.ErrClosed)
	case errors.Is(err, mediation.ErrUnavailable):
		return err
	case isRefusal(err):
		return fmt.Errorf("solace: publish to %s: %w", p.target, err)
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable(fmt.Sprintf("publish to %s not settled within %v", p.target, p.timeout), nil)
	}
	return unavailable("publish to "+p.target, err)
}

// link returns the open sender link, opening one when there is none.
func (p *publisher) link(ctx context.Context) (*pubLink, error) {
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.lock }()
	if pl := p.cur; pl != nil && pl.conn.Err() == nil {
		return pl, nil
	}
	p.cur = nil
	conn, err := p.k.get(ctx)
	if err != nil {
		return nil, err
	}
	session, err := conn.NewSession(ctx, nil)
	if err != nil {
		p.stuck(conn, err)
		return nil, err
	}
	opts := &amqp.SenderOptions{TargetDurability: amqp.DurabilityNone}
	if p.direct {
		mode := amqp.SenderSettleModeSettled
		opts.SettlementMode = &mode
	} else {
		mode := amqp.SenderSettleModeUnsettled
		opts.SettlementMode = &mode
	}
	sender, err := session.NewSender(ctx, p.target, opts)
	if err != nil {
		closeSession(session)
		p.stuck(conn, err)
		return nil, err
	}
	p.cur = &pubLink{conn: conn, session: session, sender: sender}
	return p.cur, nil
}

// stuck drops a connection on which a session or link could not be opened
// in time although it looks alive: a broker that stopped answering.
func (p *publisher) stuck(conn *amqp.Conn, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		p.k.drop(conn)
	}
}

// lost forgets pl when err says the link, its session or its connection is
// gone, so that the next publish opens another. A send that merely ran out
// of time leaves the link to the next publish.
func (p *publisher) lost(pl *pubLink, err error) {
	var (
		le *amqp.LinkError
		se *amqp.SessionError
		ce *amqp.ConnError
	)
	if !errors.As(err, &le) && !errors.As(err, &se) && !errors.As(err, &ce) {
		return
	}
	p.lock <- struct{}{}
	if p.cur == pl {
		p.cur = nil
	}
	<-p.lock
	if ce == nil {
		closeSession(pl.session)
	}
}

// close ends the sender's session and closes the publish connection.
func (p *publisher) close(ctx context.Context) error {
	select {
	case p.lock <- struct{}{}:
		if pl := p.cur; pl != nil && pl.conn.Err() == nil {
			sctx, cancel := context.WithTimeout(ctx, closeTimeout)
			_ = pl.session.Close(sctx)
			cancel()
		}
		p.cur = nil
		<-p.lock
	case <-ctx.Done():
	}
	return p.k.close(ctx)
}
