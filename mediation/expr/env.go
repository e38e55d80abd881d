package expr

import (
	"sync"

	"cel.dev/cel-go/cel"
)

// Limits on expressions.
const (
	// MaxExpressionSize is the longest expression accepted, in code points.
	// Conditions are a line or two; the bound keeps the parser's work on
	// malformed input (which grows faster than its length) small.
	MaxExpressionSize = 4 << 10
	// CostLimit bounds the work of one evaluation of an expression with
	// comprehensions (all, exists, exists_one, map, filter), the only
	// constructs whose work grows faster than the size of the message. It is
	// in CEL cost units, a few per element visited: room for an exists over
	// ten thousand JSON array elements, and a few milliseconds at worst.
	CostLimit = 100_000
)

// env is the one environment every expression is compiled in; a cel.Env is
// safe for concurrent use.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Types(messageType, requestType, contextType, subscriptionType, jwtType),
		cel.Variable("message", cel.ObjectType(messageType.TypeName())),
		cel.Variable("request", cel.ObjectType(requestType.TypeName())),
		cel.Variable("context", cel.ObjectType(contextType.TypeName())),
		cel.Variable("subscription", cel.ObjectType(subscriptionType.TypeName())),
		cel.Variable("jwt", cel.ObjectType(jwtType.TypeName())),
		// message.json.?status.orValue("") and friends.
		cel.OptionalTypes(),
		// JSON numbers are doubles: message.json.amount > 100 must work.
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
		// No extension libraries: with the standard library alone, an
		// expression without comprehensions does work linear in its own
		// size and the message's, so only comprehensions need a cost
		// limit. (strings.replace, for one, would break that.)
	)
})
