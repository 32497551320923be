// Package participant is the one runtime of the order saga's participants (payment,
// inventory, shipping): a participant declares its decisions per command type, its
// schema and its queries, and this package does the rest.
//
// # Batches, once
//
// The command consumer (messaging.BatchConsumer) hands over what it has fetched, up to
// Config.BatchSize commands, and Runtime.HandleBatch:
//
//  1. answers redelivered commands handled before from their stored replies (one
//     query);
//  2. prepares the others concurrently, outside any transaction: calls to the outside
//     world, such as the card network, happen here and are idempotent by command id;
//  3. runs their decisions in stream order in ONE SQL transaction, each stored with
//     its reply (which is the command's inbox record), and commits;
//  4. if a decision or the commit fails, decides the batch again one command per
//     transaction, so a poison command is retried and dead-lettered alone.
//
// The consumer then publishes all replies asynchronously (ce-id = Nats-Msg-Id derived
// from the command id, so a reply published twice is stored once) and acknowledges
// each command after its reply was stored. A crash before the commit loses nothing
// (the commands come back); after the commit and before the publish, the redelivered
// commands find their stored replies, which go out; after the publish
// and before the ack, the same, and JetStream drops the copy.
//
// Preparing outside the transaction means its reads may be stale by the time the
// decision runs; decisions re-read what they change inside the transaction, and the
// outside calls are idempotent, so a stale preparation costs at most a needless call,
// as it did with one transaction per command and concurrent handlers.
//
// # The shell
//
// Service is the shell every participant runs in (database and migrations, streams,
// the consumer, the gRPC server with health and auth, pruning of handled commands, a
// graceful stop), and Program is the command line of one run on its own.
package participant
