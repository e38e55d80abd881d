package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sluicegw/sluice/entrypoints/webhook/delivery"
	"github.com/sluicegw/sluice/internal/admin"
	"github.com/sluicegw/sluice/internal/store"
	"github.com/sluicegw/sluice/mediation"
)

// The management API's subscription calls (admin.Subscriptions).

// subscribeWait bounds how long a creation waits for the subscription's
// position on the endpoint to open.
const subscribeWait = 5 * time.Second

// CreateSubscription validates a webhook subscription for the API apiID,
// stores it and starts delivering to it. The callback URL is checked by the
// SSRF guard, after resolving its host; a missing secret is generated. The
// returned subscription holds the secret, shown to the subscriber once.
func (s *Server) CreateSubscription(ctx context.Context, apiID string, sub store.Subscription) (store.Subscription, error) {
	b := s.builtAPI(apiID)
	if b == nil {
		return store.Subscription{}, fmt.Errorf("%w: %q", ErrUnknownAPI, apiID)
	}
	if b.hook == nil {
		return store.Subscription{}, errBadSubscription("api %q has no subscription listener with a webhook entrypoint", apiID)
	}
	var push []string
	for _, p := range b.cfg.Plans {
		if p.Mode == "push" {
			push = append(push, p.Name)
		}
	}
	switch {
	case len(push) == 0:
		return store.Subscription{}, errBadSubscription("api %q has no push plan to subscribe to", apiID)
	case sub.Plan == "" && len(push) == 1:
		sub.Plan = push[0]
	case !slices.Contains(push, sub.Plan):
		return store.Subscription{}, errBadSubscription("plan %q is not a push plan of api %q (push plans: %v)", sub.Plan, apiID, push)
	}
	spec := webhookSub(sub)
	if err := spec.Check(ctx, s.hooks.guard); err != nil {
		if errors.Is(err, delivery.ErrRefused) {
			err = fmt.Errorf("%w (server.webhooks.allowPrivateNetworks is false)", err)
		}
		return store.Subscription{}, fmt.Errorf("%w: %w", admin.ErrBadRequest, err)
	}
	if sub.Secret == "" {
		sub.Secret = delivery.NewSecret()
	}
	sub.Retry = store.Retry(spec.Retry.WithDefaults())
	sub.ID, sub.APIID, sub.Status = newID("sub_"), apiID, store.StatusActive
	sub.Delivered, sub.Failed, sub.DeadLettered, sub.Retrying, sub.LastError = 0, 0, 0, 0, ""
	if err := s.store.CreateSubscription(ctx, sub); err != nil {
		return store.Subscription{}, err
	}
	saved, err := s.store.GetSubscription(ctx, sub.ID)
	if err != nil {
		return store.Subscription{}, err
	}
	// Answer once the subscription's position is open, so that what is
	// published after the 201 reaches it even on brokers that cannot replay
	// (RabbitMQ, core NATS). A broker that is down does not hold the answer
	// long: the runner keeps trying in the background.
	if subscribed := s.hooks.start(saved); subscribed != nil {
		select {
		case <-subscribed:
		case <-time.After(subscribeWait):
			s.log.Warn("webhook subscription created before its endpoint position opened", "subscription", sub.ID)
		case <-ctx.Done():
		}
	}
	s.log.Info("webhook subscription created", "api", apiID, "subscription", sub.ID)
	return saved, nil
}

// Subscription returns a subscription with its current delivery status.
func (s *Server) Subscription(ctx context.Context, id string) (store.Subscription, error) {
	s.hooks.flushID(id)
	return s.store.GetSubscription(ctx, id)
}

// Subscriptions lists the subscriptions of an API, or of every API for "".
func (s *Server) Subscriptions(ctx context.Context, apiID string) ([]store.Subscription, error) {
	return s.store.ListSubscriptions(ctx, apiID)
}

// DeleteSubscription stops delivering to a subscription and removes it,
// with its durable position on the broker (consumer group, durable queue,
// durable consumer) when the endpoint can delete it. The delivery under
// way, if any, finishes first.
func (s *Server) DeleteSubscription(ctx context.Context, id string) error {
	sub, err := s.store.GetSubscription(ctx, id)
	if err != nil {
		return err
	}
	s.hooks.stopSub(id)
	if err := s.store.DeleteSubscription(ctx, id); err != nil {
		return err
	}
	if b := s.builtAPI(sub.APIID); b != nil {
		if gd, ok := b.api.Endpoint().(mediation.GroupDeleter); ok {
			// The subscription is gone either way; what is left on the
			// broker is logged for an operator to remove.
			if err := gd.DeleteGroup(ctx, id); err != nil {
				s.log.Warn("webhook subscription deleted; its broker position was not", "subscription", id, "err", err)
			}
		}
	}
	s.log.Info("webhook subscription deleted", "subscription", id)
	return nil
}

// ResumeSubscription makes a failed, paused or gone subscription active
// again: delivery restarts from the first message not committed, the one
// it stopped on. Resuming an active subscription changes nothing.
func (s *Server) ResumeSubscription(ctx context.Context, id string) (store.Subscription, error) {
	err := s.store.UpdateStatus(ctx, id, func(sub *store.Subscription) error {
		sub.Status = store.StatusActive
		sub.Retrying = 0
		return nil
	})
	if err != nil {
		return store.Subscription{}, err
	}
	sub, err := s.store.GetSubscription(ctx, id)
	if err != nil {
		return store.Subscription{}, err
	}
	s.hooks.start(sub)
	return sub, nil
}

// builtAPI returns the deployed API id, or nil.
func (s *Server) builtAPI(id string) *builtAPI {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apis[id]
}

// hookOf returns the webhook binding of the deployed API id, or nil.
func (s *Server) hookOf(id string) *webhookBinding {
	if b := s.builtAPI(id); b != nil {
		return b.hook
	}
	return nil
}

var _ admin.Subscriptions = (*Server)(nil)
