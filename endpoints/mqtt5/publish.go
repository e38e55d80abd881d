package mqtt5

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicegw/sluice/mediation"
)

// maxPacket is the largest packet MQTT can frame (a remaining length of
// 268,435,455 bytes plus the fixed header).
const maxPacket = 268_435_455

// publisher is the endpoint's shared publishing connection.
type publisher struct {
	cm   *autopaho.ConnectionManager
	link *link
	// maxPacket is the broker's Maximum Packet Size from CONNACK; 0 when it
	// set none. A larger packet would make the broker drop the connection.
	maxPacket atomic.Uint32
}

func (e *Endpoint) newPublisher() (*publisher, error) {
	p := &publisher{link: &link{log: e.log.With("client", e.clientID)}}
	cfg := e.clientConfig(connection{
		clientID:   e.clientID,
		link:       p.link,
		cleanStart: true,
		up: func(_ *autopaho.ConnectionManager, ack *paho.Connack) {
			var limit uint32
			if ack.Properties != nil && ack.Properties.MaximumPacketSize != nil {
				limit = *ack.Properties.MaximumPacketSize
			}
			p.maxPacket.Store(limit)
		},
	})
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("mqtt5: %w", err)
	}
	p.cm = cm
	return p, nil
}

// Publish sends msg to producer.topic at producer.qos and returns once the
// broker confirmed it: after PUBACK at QoS 1, PUBCOMP at QoS 2, once written
// to the connection at QoS 0. The message's headers become MQTT 5 user
// properties (one per value, names lower-case) except content-type, which
// becomes the Content Type property; producer.retain and
// producer.messageExpiry apply. When the broker cannot be reached or does not
// confirm within publishTimeout, the error wraps mediation.ErrUnavailable.
func (e *Endpoint) Publish(ctx context.Context, msg *mediation.Message) error {
	if e.pub == nil {
		return fmt.Errorf("mqtt5: publish: no producer.topic configured: %w", mediation.ErrUnsupported)
	}
	if e.closed.Load() {
		return fmt.Errorf("mqtt5: publish: %w", mediation.ErrClosed)
	}
	pkt, err := e.packet(msg)
	if err != nil {
		return err
	}
	limit := uint32(maxPacket)
	if m := e.pub.maxPacket.Load(); m != 0 {
		limit = min(limit, m)
	}
	if n := packetSize(pkt); n > int(limit) {
		return fmt.Errorf("mqtt5: publish: the message (about %d bytes with its headers) is larger than the broker accepts (%d bytes)", n, limit)
	}

	pctx, cancel := context.WithTimeout(ctx, time.Duration(e.cfg.PublishTimeout))
	defer cancel()
	for {
		if err := e.pub.link.refusal(); err != nil {
			return fmt.Errorf("mqtt5: publish: the broker refused the connection: %w", err)
		}
		if err := e.pub.cm.AwaitConnection(pctx); err != nil {
			return e.publishFailed(ctx, pctx, nil)
		}
		resp, err := e.pub.cm.Publish(pctx, pkt)
		if errors.Is(err, autopaho.ConnectionDownError) {
			continue // lost between the two calls: wait for the next one
		}
		if resp != nil && resp.ReasonCode >= 0x80 {
			return refused(resp)
		}
		if err != nil {
			return e.publishFailed(ctx, pctx, err)
		}
		return nil
	}
}

// publishFailed explains a publish that got no confirmation.
func (e *Endpoint) publishFailed(ctx, pctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The caller's deadline came first: still the broker's fault.
		return unavailable("publish: no confirmation from the broker before the deadline", ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("mqtt5: publish: %w", ctx.Err())
	case e.closed.Load():
		return fmt.Errorf("mqtt5: publish: %w", mediation.ErrClosed)
	case errors.Is(err, paho.ErrInvalidArguments):
		return fmt.Errorf("mqtt5: publish: %w", err)
	case pctx.Err() != nil && err == nil:
		if refusal := e.pub.link.refusal(); refusal != nil {
			return fmt.Errorf("mqtt5: publish: the broker refused the connection: %w", refusal)
		}
		return unavailable(fmt.Sprintf("publish: no connection to the broker within publishTimeout (%v)", e.cfg.PublishTimeout), e.pub.link.err())
	case pctx.Err() != nil:
		return unavailable(fmt.Sprintf("publish: the broker did not confirm the message within publishTimeout (%v)", e.cfg.PublishTimeout), nil)
	}
	return unavailable("publish", err)
}

// refused reports a PUBACK or PUBREC with an error reason code. Quota and
// packet-id exhaustion are temporary (503); the others (not authorized,
// topic invalid, ...) are not cured by retrying.
func refused(resp *paho.PublishResponse) error {
	reason := fmt.Sprintf("reason 0x%02x", resp.ReasonCode)
	if s := reasonNames[resp.ReasonCode]; s != "" {
		reason += " (" + s + ")"
	}
	if resp.Properties != nil && resp.Properties.ReasonString != "" {
		reason += ": " + resp.Properties.ReasonString
	}
	if resp.ReasonCode == 0x97 || resp.ReasonCode == 0x91 {
		return unavailable("publish: the broker refused the message for now, "+reason, nil)
	}
	return fmt.Errorf("mqtt5: publish: the broker refused the message, %s", reason)
}

var reasonNames = map[byte]string{
	0x80: "unspecified error",
	0x83: "implementation specific error",
	0x87: "not authorized",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x97: "quota exceeded",
	0x99: "payload format invalid",
}

// packet builds the PUBLISH for msg.
func (e *Endpoint) packet(msg *mediation.Message) (*paho.Publish, error) {
	props := &paho.PublishProperties{}
	n := 0
	for _, vs := range msg.Headers {
		n += len(vs)
	}
	if n > 0 {
		props.User = make(paho.UserProperties, 0, n)
	}
	for name, values := range msg.Headers {
		if len(values) == 0 {
			continue
		}
		key, err := propertyString("header name", name, name)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(name, "content-type") {
			if props.ContentType, err = propertyString("header", name, values[0]); err != nil {
				return nil, err
			}
			continue
		}
		for _, v := range values {
			value, err := propertyString("header", name, v)
			if err != nil {
				return nil, err
			}
			props.User = append(props.User, paho.UserProperty{Key: key, Value: value})
		}
	}
	if d := e.cfg.Producer.MessageExpiry; d > 0 {
		s := seconds(d)
		props.MessageExpiry = &s
	}
	return &paho.Publish{
		QoS:        byte(e.cfg.Producer.QoS),
		Retain:     e.cfg.Producer.Retain,
		Topic:      e.cfg.Producer.Topic,
		Payload:    msg.Content,
		Properties: props,
	}, nil
}

// propertyString makes s fit an MQTT string: invalid UTF-8 is replaced and
// NUL characters removed, as a broker drops the connection of a client that
// sends them. Values over MQTT's 65535 bytes are refused.
func propertyString(what, name, s string) (string, error) {
	if len(s) > maxMQTTString {
		return "", fmt.Errorf("mqtt5: publish: %s %.40q is longer than MQTT allows (%d bytes)", what, name, maxMQTTString)
	}
	if checkMQTTString(s) == nil {
		return s, nil
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) > maxMQTTString {
		return "", fmt.Errorf("mqtt5: publish: %s %.40q is longer than MQTT allows (%d bytes)", what, name, maxMQTTString)
	}
	return s, nil
}

// packetSize is an upper bound of the encoded size of p.
func packetSize(p *paho.Publish) int {
	n := 1 + 4 + 2 + len(p.Topic) + 2 + 4 + len(p.Payload)
	if pr := p.Properties; pr != nil {
		n += 3 + len(pr.ContentType) + 5
		for _, u := range pr.User {
			n += 5 + len(u.Key) + len(u.Value)
		}
	}
	return n
}
