package rabbitmq

// Test helpers shared with the package's external tests (rabbitmq_test).
var (
	RequireBroker = requireBroker
	UniqueName    = uniqueName
	DeleteAtEnd   = deleteAtEnd
)

// SharedURL is the machine's RabbitMQ.
const SharedURL = sharedURL
