package nats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/mediation"
)

// Publish sends msg to producer.subject and returns once the server has it:
// for core NATS after a round trip to the server (so that everything sent
// before it was processed), for JetStream once the stream stored it (its
// PubAck). It never waits longer than publishTimeout: a server that is
// down or does not confirm in time yields an error wrapping
// mediation.ErrUnavailable. Headers travel as NATS headers, every value of
// a multi-valued header included. On a JetStream success Metadata gets the
// stream and the message's sequence ("offset").
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if !e.caps.Publish {
		return fmt.Errorf("nats: publish: no producer.subject configured: %w", mediation.ErrUnsupported)
	}
	if e.closed.Load() {
		return fmt.Errorf("nats: publish: %w", mediation.ErrClosed)
	}
	if err := e.checkConnected(fmt.Sprintf("publish to %q", e.cfg.Producer.Subject)); err != nil {
		return err
	}
	timeout := time.Duration(e.cfg.PublishTimeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := &nats.Msg{Subject: e.cfg.Producer.Subject, Data: msg.Content, Header: natsHeader(msg.Headers)}

	stream := e.cfg.publishStream()
	if stream == "" {
		err := e.nc.PublishMsg(m)
		if err == nil {
			err = e.nc.FlushWithContext(pctx)
		}
		if err != nil {
			return e.publishError(ctx, err, timeout)
		}
		return nil
	}
	ack, err := e.js.PublishMsg(pctx, m, jetstream.WithExpectStream(stream))
	if err != nil {
		return e.publishError(ctx, err, timeout)
	}
	md := make(map[string]string, len(msg.Metadata)+3)
	maps.Copy(md, msg.Metadata)
	md["subject"] = m.Subject
	md["stream"] = ack.Stream
	md["offset"] = strconv.FormatUint(ack.Sequence, 10)
	if ack.Duplicate {
		md["duplicate"] = "true"
	}
	msg.Metadata = md
	return nil
}

// natsHeader converts message headers. Names keep the lower case the
// gateway uses: NATS header names are case-sensitive, so the server acts on
// none of them (a client cannot, say, roll up a stream with Nats-Rollup),
// except nats-msg-id, which becomes Nats-Msg-Id so that JetStream drops a
// message whose id it saw within the stream's duplicate window: a client
// may retry a publish safely. Names NATS cannot carry are left out, as
// net/http does, rather than failing the publish.
func natsHeader(h mediation.Headers) nats.Header {
	if len(h) == 0 {
		return nil
	}
	out := make(nats.Header, len(h))
	for k, vs := range h {
		if len(vs) == 0 || !validHeaderName(k) {
			continue
		}
		if k == msgIDHeader {
			k = jetstream.MsgIDHeader
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// validHeaderName applies NATS's rule: printable ASCII without ':'.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		if c := k[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// msgIDHeader is JetStream's deduplication header as the gateway spells it.
var msgIDHeader = strings.ToLower(jetstream.MsgIDHeader)

// publishError says why a publish failed. Anything that retrying later may
// cure wraps ErrUnavailable: the server is down or slow, or no stream
// answers for the subject (JetStream down, the stream being created). A
// refusal the server will repeat (payload too large, the subject belongs to
// another stream) does not.
func (e *Endpoint) publishError(ctx context.Context, err error, timeout time.Duration) error {
	subject := e.cfg.Producer.Subject
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("nats: publish to %q: %w", subject, ctx.Err())
	case ctx.Err() != nil:
		return unavailable(fmt.Sprintf("publish to %q not confirmed before the request's deadline", subject), ctx.Err())
	case e.closed.Load():
		return fmt.Errorf("nats: publish to %q: %w", subject, mediation.ErrClosed)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return unavailable(fmt.Sprintf("publish to %q not confirmed within %v", subject, timeout), err)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return unavailable(fmt.Sprintf("publish to %q: no stream answered (is JetStream up and the stream %q created?)", subject, e.cfg.publishStream()), err)
	case isConnectionError(err):
		return unavailable(fmt.Sprintf("publish to %q: not connected", subject), err)
	case errors.As(err, &apiErr) && apiErr.Code >= 500:
		return unavailable(fmt.Sprintf("publish to %q", subject), err)
	}
	return fmt.Errorf("nats: publish to %q: %w", subject, err)
}
