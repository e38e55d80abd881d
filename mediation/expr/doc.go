// Package expr compiles and evaluates the gateway's CEL expressions: flow
// conditions, message filters and templates.
//
// Every expression is compiled once, in one shared environment, with these
// variables:
//
//	message.content       string   the payload as text
//	message.json          dyn      the payload parsed as JSON, on first use
//	message.headers       map(string, string)  first value of each header
//	message.metadata      map(string, string)  topic, partition, offset, ...
//	message.id            string
//	message.key           string   record key (Kafka), "" when none
//	request.method        string
//	request.path          string   the full request path
//	request.headers       map(string, string)  first value of each header
//	request.query         map(string, string)  first value of each parameter
//	context.attributes    map(string, dyn)     the exchange's attributes
//	subscription.metadata map(string, string)
//	jwt.claims            map(string, dyn)
//
// The variables are typed: a misspelt variable or field (message.jsn) is a
// compile error with its column, not a silent false at run time.
//
// Headers give their first value, as a string, because that is what almost
// every condition wants (message.headers['x-type'] == "order"). Header names
// are matched case-insensitively (request.headers['content-type'] and
// ['Content-Type'] are the same) and listed in lower case. Query parameters
// are case-sensitive.
//
// Semantics worth knowing, all standard CEL:
//   - Reading a key that is absent (message.json.status on {}, a header the
//     message lacks) is an evaluation error, not null. Test first with
//     has(message.json.status) or 'x-type' in message.headers, or use
//     optionals: message.json.?status.orValue("").
//   - message.json is parsed only when an evaluation reads it, at most once
//     per evaluation; content that is not JSON makes reading it an error,
//     and has(message.json) false. JSON numbers are doubles, comparable with
//     integers (message.json.amount > 100).
//   - Errors are absorbed by && and || when the other side decides.
//
// Evaluation never panics on any message and its cost is bounded: an
// expression without comprehensions does work linear in its size and the
// message's, and one with comprehensions stops with an error at CostLimit.
// Callers decide what an error means; the message-filter policy drops the
// message.
package expr
