// Package messaging carries commands and events between services over NATS JetStream:
// protobuf payloads with CloudEvents headers and W3C trace context, durable explicit-ack
// consumers with backoff, a dead-letter stream, and a SQL inbox for exactly-once effects.
//
// # Headers
//
// The CloudEvents NATS protocol binding in binary mode, payload = protobuf bytes:
//
//	ce-specversion    "1.0"
//	ce-id             message id, also Nats-Msg-Id (JetStream dedup)
//	ce-type           protobuf full name, e.g. eventshop.payment.v1.AuthorizePayment
//	ce-source         /eventshop/<service>
//	ce-time           RFC 3339 with nanoseconds, UTC
//	ce-subject        what the message is about, usually the order id (optional)
//	ce-causationid    id of the message that caused this one (extension, optional)
//	ce-correlationid  id shared by one flow, e.g. the saga id (extension, optional)
//	content-type      application/protobuf
//	traceparent       W3C trace context, and tracestate, via otel.GetTextMapPropagator()
//	ce-error          dead letters only: why; with x-dlq-consumer, x-dlq-subject, x-dlq-deliveries
//
// # Subjects and streams
//
// Declared idempotently by DeclareStreams:
//
//	cmd.<service>.<verb>        COMMANDS  work-queue stream, one consumer per service
//	evt.<service>.<event>       EVENTS    limits stream with a max age, any number of consumers
//	dlq.<original subject>      DLQ       limits stream of messages no handler could process
//
// A work-queue stream refuses two consumers whose filters overlap, so every service that
// handles commands consumes only its own subjects (cmd.payment.> for payment); running
// more instances of a service shares that one durable consumer.
//
// Durable consumers are named after their handler (ConsumerConfig.Durable). The server
// remembers what a durable has acknowledged; renaming it creates a new consumer that
// starts from the beginning of the stream, i.e. a deliberate replay of every retained
// event (on the work-queue stream only of commands not yet acknowledged).
//
// # Consumer semantics
//
// A message is acknowledged only after its handler returns nil. A handler error naks it
// with a delay from ConsumerConfig.Backoff; Permanent errors, undecodable payloads and
// unknown ce-types go to the dead-letter stream at once, other errors on the last of
// MaxDeliver attempts; the original is then terminated. While a handler runs, InProgress
// is sent every AckWait/3. At most Concurrency handlers run at once. A BatchConsumer
// keeps these semantics per message but hands what it fetched to one BatchFunc, so a
// caller can commit a batch in one transaction; it publishes the replies the func
// returns asynchronously and settles each message after.
//
// # Idempotency
//
// Delivery is at least once. A handler whose effect must happen once records the message
// id with Inbox.Once in the same SQL transaction as its state change. README.md lists
// which handlers need it and carries the benchmark figures.
package messaging
