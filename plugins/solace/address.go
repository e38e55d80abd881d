package solace

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of the Solace topic and queue syntax.
const (
	maxTopic      = 250 // bytes of a Solace topic
	maxQueue      = 200 // bytes of a Solace queue name
	maxRoutingKey = 255 // bytes of a RabbitMQ routing key
)

// TopicAddress returns the AMQP address of a Solace topic under the given
// addressing (AddressingSolace or AddressingRabbitMQ). subscription says
// whether the topic is a subscription, which may hold wildcards: '*' at the
// end of a level matches one level ("a/*/c"), or the rest of a level after
// a prefix ("a/b*"), and '>' as the whole last level matches one or more
// levels ("a/>" matches a/b and a/b/c, not a). Elsewhere '*' and '>' are
// plain characters.
//
// Under solace addressing the topic is written as is after "topic://".
// Under rabbitmq addressing it becomes a routing key of the amq.topic
// exchange, "/topic/<key>", with levels joined by '.', '*' kept and '>'
// written "*.#" (one word, then any number): the same matches. A topic that
// RabbitMQ cannot express is refused: a prefix wildcard, or a level
// holding '.' or '#', which RabbitMQ would read as separators or
// wildcards.
func TopicAddress(addressing, topic string, subscription bool) (string, error) {
	levels, err := topicLevels(topic, subscription)
	if err != nil {
		return "", err
	}
	switch addressing {
	case AddressingSolace:
		return "topic://" + topic, nil
	case AddressingRabbitMQ:
		key, err := routingKey(levels, subscription)
		if err != nil {
			return "", err
		}
		return "/topic/" + key, nil
	}
	return "", fmt.Errorf("unknown addressing %q", addressing)
}

// topicLevels splits and checks a Solace topic.
func topicLevels(topic string, subscription bool) ([]string, error) {
	if topic == "" {
		return nil, errors.New("empty topic")
	}
	if err := checkText(topic, maxTopic); err != nil {
		return nil, err
	}
	if strings.HasPrefix(topic, "#") {
		return nil, errors.New("topics starting with '#' are reserved by Solace")
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if l == "" {
			return nil, fmt.Errorf("topic %q has an empty level (a leading, trailing or doubled '/')", topic)
		}
		if subscription {
			continue
		}
		if l == ">" && i == len(levels)-1 || strings.HasSuffix(l, "*") {
			return nil, fmt.Errorf("topic %q has a wildcard: messages are published to one topic, such as orders/created", topic)
		}
	}
	return levels, nil
}

// routingKey writes the levels of a checked Solace topic as a RabbitMQ
// topic routing key (or binding key, for a subscription).
func routingKey(levels []string, subscription bool) (string, error) {
	words := make([]string, 0, len(levels)+1)
	for i, l := range levels {
		last := i == len(levels)-1
		switch {
		case subscription && last && l == ">":
			// RabbitMQ's '#' matches zero or more words, Solace's '>' one or
			// more: one '*' first makes them match alike.
			words = append(words, "*", "#")
			continue
		case subscription && l == "*":
			words = append(words, "*")
			continue
		case subscription && strings.HasSuffix(l, "*"):
			return "", fmt.Errorf("level %q is a prefix wildcard, which RabbitMQ cannot express: use a whole-level '*'", l)
		case strings.ContainsAny(l, ".#"):
			return "", fmt.Errorf("level %q holds '.' or '#', which RabbitMQ reads as a separator or a wildcard", l)
		}
		words = append(words, l)
	}
	key := strings.Join(words, ".")
	if len(key) > maxRoutingKey {
		return "", fmt.Errorf("the routing key is longer than the %d bytes RabbitMQ allows", maxRoutingKey)
	}
	return key, nil
}

// QueueAddress returns the AMQP address of a durable queue: "queue://<name>"
// under solace addressing, and under rabbitmq addressing "/queue/<name>",
// which RabbitMQ 3.x's AMQP 1.0 plugin declares (durable) when it is
// missing.
func QueueAddress(addressing, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty queue name")
	}
	switch addressing {
	case AddressingSolace:
		if err := checkText(name, maxQueue); err != nil {
			return "", err
		}
		if strings.ContainsAny(name, `'<>*?&;`) {
			return "", fmt.Errorf("queue %q: Solace queue names cannot hold any of ' < > * ? & ;", name)
		}
		return "queue://" + name, nil
	case AddressingRabbitMQ:
		if err := checkText(name, 255); err != nil {
			return "", err
		}
		if strings.Contains(name, "/") {
			return "", fmt.Errorf("queue %q: the RabbitMQ address format cannot carry a '/' in a queue name", name)
		}
		return "/queue/" + name, nil
	}
	return "", fmt.Errorf("unknown addressing %q", addressing)
}
