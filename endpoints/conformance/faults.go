package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicegw/sluice/mediation"
)

// faultyBroker returns a broker whose connections from the endpoint go
// through a proxy: the harness's own, or one in front of BrokerAddr.
func (s *suite) faultyBroker(t *testing.T) (brokerAddr string, p *Proxy) {
	t.Helper()
	if s.h.FaultyBroker != nil {
		addr, p := s.h.FaultyBroker(t)
		if p == nil {
			t.Fatal("conformance: Harness.FaultyBroker returned a nil proxy")
		}
		return addr, p
	}
	if s.h.BrokerAddr == "" {
		t.Skip("no broker to disrupt: Harness.BrokerAddr is empty and Harness.FaultyBroker is unset")
	}
	return s.h.BrokerAddr, NewProxy(t, s.h.BrokerAddr)
}

// needProxied fails when no connection of the endpoint goes through p: the
// fault would not reach it and the test would prove nothing.
func needProxied(t *testing.T, p *Proxy) {
	t.Helper()
	if p.Open() == 0 {
		t.Fatal("the endpoint has no connection through the proxy it was given: a broker that advertises its own address to clients needs Harness.FaultyBroker")
	}
}

// cut is a CutAll of a proxy, and how many connections it had accepted
// before.
type cut struct {
	p        *Proxy
	accepted int64
}

func cutAll(p *Proxy) cut {
	c := cut{p, p.Accepted()}
	p.CutAll()
	return c
}

// needReconnected fails when messages arrived after the cut but no new
// connection went through the proxy: the subscription reaches the broker
// some other way, and the cut proved nothing.
func (c cut) needReconnected(t *testing.T) {
	t.Helper()
	if c.p.Accepted() == c.accepted {
		t.Fatal("messages arrived after every connection through the proxy was cut, but no connection was made through it again: the subscription reaches the broker around the proxy (a broker that advertises its own address needs Harness.FaultyBroker)")
	}
}

// droppedCount is how many messages the dropped-connection test sends when
// nothing may be lost: half before the cut, half after.
const droppedCount = 40

// testDroppedConnection cuts every connection of a subscription in the
// middle of a stream: it must reconnect by itself, without an error.
func (s *suite) testDroppedConnection(t *testing.T) {
	addr, p := s.faultyBroker(t)
	e := s.newEnv(t, "dropped-connection", p.Addr(), addr)
	t.Cleanup(p.Resume) // before the endpoint's Close, which may flush
	e.needSubscribe(t)
	e.needFeed(t)
	if e.generated() {
		t.Skip("a Generator endpoint has no broker connection to drop")
	}

	// Nothing may be lost when the endpoint can replay, or with a group;
	// else the broker may drop what is sent while the subscription is away.
	req := mediation.SubscribeRequest{Start: e.start(), QoS: mediation.QoSAuto}
	reliable := e.caps.Replay
	if !reliable && e.caps.Supports(mediation.QoSAtLeastOnce) {
		group := req
		group.Group, group.QoS = e.channel+"-group", mediation.QoSAtLeastOnce
		sub, err := e.ep.Subscribe(e.context(t), group)
		if sub != nil {
			_ = sub.Close()
		}
		if err == nil {
			req, reliable = group, true
		} else if !errors.Is(err, mediation.ErrUnsupported) {
			t.Fatalf("Subscribe(%s): %v", describe(group), err)
		}
	}
	sub := e.subscribe(t, req)

	if !reliable {
		t.Log("the endpoint can neither replay nor join a group: checking only that the subscription recovers")
		e.put(t, 0, 1)
		e.readAll(t, sub, 0, 1)
		needProxied(t, p)
		cut := cutAll(p)
		e.awaitRecovery(t, sub)
		cut.needReconnected(t)
		return
	}

	e.putRetrying(t, 0, droppedCount/2)
	dups := e.readAll(t, sub, 0, droppedCount/2)
	needProxied(t, p)
	cut := cutAll(p)
	e.putRetrying(t, droppedCount/2, droppedCount)
	dups += e.readAll(t, sub, droppedCount/2, droppedCount)
	cut.needReconnected(t)
	if dups > 0 {
		t.Logf("%d messages arrived twice (allowed: at least once)", dups)
	}
}

// awaitRecovery sends a new message every second until one sent after the
// cut arrives: a lossy broker drops what is sent while the subscription
// reconnects, so no particular message is due.
func (e *env) awaitRecovery(t *testing.T, sub mediation.Subscription) {
	t.Helper()
	ctx := e.context(t)
	for i := 1; ; i++ {
		e.putRetrying(t, i, i+1)
		wait, cancel := context.WithTimeout(ctx, time.Second)
		m, err := sub.Next(wait)
		cancel()
		switch {
		case err == nil:
			got, err := e.index(m)
			if err != nil {
				t.Fatal(err)
			}
			m.Ack()
			if got >= 1 {
				return // recovered
			}
		case ctx.Err() != nil:
			t.Fatalf("no message sent after the connection was cut arrived within %v: the subscription did not recover", e.s.o.timeout)
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Next returned %v after the connection was cut: a subscription must reconnect by itself and fail only when it cannot continue", err)
		}
	}
}

// testPublishUnavailable publishes while the broker hangs or is down.
func (s *suite) testPublishUnavailable(t *testing.T) {
	if s.h.FaultyBroker == nil && s.h.BrokerAddr == "" {
		t.Skip("no broker to disrupt: Harness.BrokerAddr is empty and Harness.FaultyBroker is unset")
	}
	for _, tc := range []struct {
		desc  string
		fault func(*Proxy)
		warm  bool // publish once before the fault, so that connections are open
	}{
		{desc: "broker stops answering", fault: (*Proxy).Pause, warm: true},
		{desc: "broker goes down", fault: (*Proxy).Refuse, warm: true},
		{desc: "broker down before the first publish", fault: (*Proxy).Refuse},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			addr, p := s.faultyBroker(t)
			e := s.newEnv(t, "publish-unavailable", p.Addr(), addr)
			t.Cleanup(p.Resume) // before the endpoint's Close, which may flush
			if !e.caps.Publish {
				t.Skip("the endpoint cannot publish (Capabilities.Publish is false)")
			}
			if tc.warm {
				if err := e.ep.Publish(e.context(t), e.message(0)); err != nil {
					t.Fatalf("Publish with the broker up: %v", err)
				}
				needProxied(t, p)
			}

			tc.fault(p)
			e.publishUnavailable(t)

			p.Resume()
			e.putRetrying(t, 1, 2)
		})
	}
}

// publishUnavailable publishes with a context of UnavailableWithin and
// expects an error wrapping ErrUnavailable, at the latest when the context
// ends.
func (e *env) publishUnavailable(t *testing.T) {
	t.Helper()
	within := e.s.o.unavailable
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.ep.Publish(ctx, e.message(1)) }()

	var err error
	select {
	case err = <-done:
	case <-time.After(within + e.s.o.timeout):
		t.Fatalf("Publish still blocked %v after its context ended: a publish must never hang past its context", e.s.o.timeout)
	}
	switch {
	case err == nil:
		t.Fatal("Publish succeeded with the broker unreachable")
	case !errors.Is(err, mediation.ErrUnavailable):
		t.Fatalf("Publish with the broker unreachable = %v, want an error wrapping mediation.ErrUnavailable (HTTP 503), also when the context ends first", err)
	}
}
