// Package messaging carries commands and events between services over NATS JetStream:
// protobuf payloads with CloudEvents headers and W3C trace context, durable explicit-ack
// consumers with backoff, a dead-letter stream, and a SQL inbox for exactly-once effects.
//
// Subjects and streams (declared idempotently by DeclareStreams):
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
package messaging
