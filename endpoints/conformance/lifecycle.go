package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluicegw/sluice/mediation"
)

// testOpenClose runs alone (see Run): every goroutine that appears while it
// runs belongs to the endpoint, and must be gone once it is closed.
func (s *suite) testOpenClose(t *testing.T) {
	leakOpts := append([]goleak.Option{goleak.IgnoreCurrent()}, s.o.leak...)

	e := s.newEnv(t, "open-close", s.h.BrokerAddr, s.h.BrokerAddr)
	if e.caps.Subscribe {
		e.checkSubscriptionClose(t)
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.o.timeout)
	defer cancel()
	if err := e.ep.Close(ctx); err != nil {
		t.Errorf("endpoint Close: %v", err)
	}
	if err := e.ep.Close(ctx); err != nil && !errors.Is(err, mediation.ErrClosed) {
		t.Errorf("second endpoint Close = %v, want nil or ErrClosed: Close must be idempotent", err)
	}

	// Goroutines may take a moment to notice that their connection closed.
	deadline := time.Now().Add(s.o.timeout)
	for {
		err := goleak.Find(leakOpts...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v after every subscription and the endpoint were closed: %v", s.o.timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSubscriptionClose checks how Next and Close of a subscription behave
// around Close.
func (e *env) checkSubscriptionClose(t *testing.T) {
	t.Helper()
	sub, err := e.ep.Subscribe(e.context(t), mediation.SubscribeRequest{Start: e.start(), QoS: mediation.QoSAuto})
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", describe(mediation.SubscribeRequest{Start: e.start()}), err)
	}

	if !e.generated() { // a generator always has a message ready: Next never blocks
		// Nothing is published on the channel: Next waits until ctx ends.
		short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := sub.Next(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next on an empty channel with a context that ends = (%v, %v), want the context's error (context.DeadlineExceeded)", msgID(m), err)
		}

		// Close while Next blocks: Next returns ErrClosed.
		bg, cancel := context.WithCancel(context.Background())
		defer cancel() // frees Next if Close does not
		done := make(chan error, 1)
		go func() {
			_, err := sub.Next(bg)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond) // let Next block; the outcome is the same either way
		if err := sub.Close(); err != nil {
			t.Errorf("subscription Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, mediation.ErrClosed) {
				t.Errorf("Next blocked during Close returned %v, want ErrClosed", err)
			}
		case <-time.After(e.s.o.timeout):
			t.Errorf("Next still blocked %v after Close", e.s.o.timeout)
			cancel()
			<-done
		}
	} else if err := sub.Close(); err != nil {
		t.Errorf("subscription Close: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), e.s.o.timeout)
	defer cancel()
	if m, err := sub.Next(ctx); !errors.Is(err, mediation.ErrClosed) {
		t.Errorf("Next after Close = (%v, %v), want ErrClosed", msgID(m), err)
	}
	if err := sub.Close(); err != nil && !errors.Is(err, mediation.ErrClosed) {
		t.Errorf("second subscription Close = %v, want nil: Close must be idempotent", err)
	}
}

// msgID renders a message for failure output.
func msgID(m *mediation.Message) string {
	if m == nil {
		return "no message"
	}
	return "message " + m.Identity()
}
