// Package mqtt5 is the mqtt5 endpoint: it publishes messages to an MQTT 5
// topic and subscribes to topic filters, with Eclipse Paho (autopaho keeps
// every connection up, reconnecting with a growing, jittered delay).
//
// Publishing uses one shared connection under the configured clientId. A
// publish returns after the broker's PUBACK (QoS 1) or PUBCOMP (QoS 2), or
// once written (QoS 0); message headers travel as
// MQTT 5 user properties and content-type as the Content Type property. A
// broker that is down or does not confirm within publishTimeout yields an
// error wrapping mediation.ErrUnavailable (HTTP 503).
//
// Every subscription is an MQTT client of its own ("<clientId>-s-<n>", or
// "<clientId>-g-<group>" for group subscriptions) subscribed to
// consumer.topic, as a shared subscription $share/<group>/<topic> when a
// group or consumer.sharedGroup is set. It resubscribes after every
// reconnect, so a broker restart is invisible to Next except for the
// messages published while the broker was down.
//
// MQTT has no positions: subscriptions start live, Replay is false, and
// messages carry no cursor. See Config.Capabilities for when at-least-once
// is offered, and Endpoint.Subscribe for message ids, metadata and
// acknowledgements.
package mqtt5
