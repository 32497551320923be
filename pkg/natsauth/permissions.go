package natsauth

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/messaging"
)

// Names of the JetStream resources the roles are scoped to. They are the services'
// own (a test of the whole shop fails if one drifts): the consumer each participant
// pulls its commands from, the one order pulls replies from, and the buckets.
const (
	OrderReplyConsumer  = "order-saga-replies"
	OrderSnapshotBucket = "order_snapshots"
	OrderFollowBucket   = "order_followers"
	// OrderPartitionBucket holds the leases of the order category's partitions among
	// the order instances (pkg/partition).
	OrderPartitionBucket = "order_partitions"
	// OrderChangesSubject carries, on core NATS, the ids of the orders a projector
	// changed, to the watches of every order instance.
	OrderChangesSubject = "order.changes"
	CartBucket          = "carts"
	// GatewaySessionBucket holds the storefront's sessions (gateway.SessionBucket).
	GatewaySessionBucket = "gateway_sessions"
	// OrderCategory is the event-store category of orders: stream ES_order, subjects
	// order.events.<id>.
	OrderCategory = "order"
)

// CommandConsumer is the durable consumer participant name pulls its commands from.
func CommandConsumer(name string) string { return name + "-commands" }

const api = "$JS.API."

// Permissions returns what name may publish and subscribe; nil for an unknown name,
// which the server then refuses everything but connecting.
//
// Everything not allowed is refused. A service may create and update the streams it
// declares at start-up (so services start in any order) but never delete or purge
// them; it may create, read and pull only its own consumers, with their filter in the
// request subject, so it cannot widen what it receives.
func Permissions(name string) *server.Permissions {
	if name == Operator {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}
	}
	if !known(name) {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Deny: []string{">"}},
		}
	}
	pub := []string{api + "INFO"}
	switch name {
	case Order:
		es := eventstore.DefaultStreamPrefix + OrderCategory
		pub = append(pub,
			messaging.CommandPrefix+">",
			OrderCategory+".events.>",
			"$KV."+OrderSnapshotBucket+".>",
			"$KV."+OrderFollowBucket+".>",
			"$KV."+OrderPartitionBucket+".>",
			OrderChangesSubject,
			// Replies no handler could take go to the dead-letter stream.
			messaging.DLQPrefix+messaging.EventPrefix+">",
		)
		pub = append(pub, declare(messaging.CommandStream, messaging.EventStream, messaging.DLQStream,
			es, kvStream(OrderSnapshotBucket), kvStream(OrderFollowBucket), kvStream(OrderPartitionBucket))...)
		pub = append(pub, read(es, kvStream(OrderSnapshotBucket), kvStream(OrderFollowBucket), kvStream(OrderPartitionBucket))...)
		// Aggregate reads and the follower and projectors use short-lived ordered
		// consumers on the order stream, which order alone reads.
		pub = append(pub,
			api+"CONSUMER.CREATE."+es+".>",
			api+"CONSUMER.INFO."+es+".>",
			api+"CONSUMER.DELETE."+es+".>",
			api+"CONSUMER.MSG.NEXT."+es+".>",
			// Listing the partition group's members watches the bucket's keys.
			api+"CONSUMER.CREATE."+kvStream(OrderPartitionBucket)+".>",
			api+"CONSUMER.DELETE."+kvStream(OrderPartitionBucket)+".>",
		)
		// Replies have several subjects, so the consumer's filter is in its body.
		pub = append(pub, consumer(messaging.EventStream, OrderReplyConsumer, "")...)
	case Payment, Inventory, Shipping:
		pub = append(pub,
			messaging.EventPrefix+name+".>",
			messaging.DLQPrefix+messaging.CommandPrefix+name+".>",
		)
		pub = append(pub, declare(messaging.CommandStream, messaging.EventStream, messaging.DLQStream)...)
		pub = append(pub, consumer(messaging.CommandStream, CommandConsumer(name), messaging.CommandPrefix+name+".>")...)
	case Cart:
		pub = append(pub, "$KV."+CartBucket+".>")
		pub = append(pub, declare(kvStream(CartBucket))...)
		pub = append(pub, read(kvStream(CartBucket))...)
	case Gateway:
		pub = append(pub, "$KV."+GatewaySessionBucket+".>")
		pub = append(pub, declare(kvStream(GatewaySessionBucket))...)
		pub = append(pub, read(kvStream(GatewaySessionBucket))...)
	}
	sub := []string{InboxPrefix(name) + ".>"}
	if name == Order {
		sub = append(sub, OrderChangesSubject)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

func kvStream(bucket string) string { return "KV_" + bucket }

// declare allows looking up, creating and updating streams, not deleting or purging.
func declare(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, api+"STREAM.INFO."+s, api+"STREAM.CREATE."+s, api+"STREAM.UPDATE."+s)
	}
	return out
}

// read allows getting messages of streams, directly or through the stream leader.
func read(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, api+"STREAM.MSG.GET."+s, api+"DIRECT.GET."+s, api+"DIRECT.GET."+s+".>")
	}
	return out
}

// consumer allows creating (with filter in the subject when given), reading, pulling
// from and acknowledging one durable consumer.
func consumer(stream, durable, filter string) []string {
	create := api + "CONSUMER.CREATE." + stream + "." + durable
	if filter != "" {
		create += "." + filter
	}
	return []string{
		create,
		api + "CONSUMER.INFO." + stream + "." + durable,
		api + "CONSUMER.MSG.NEXT." + stream + "." + durable,
		"$JS.ACK." + stream + "." + durable + ".>",
	}
}
