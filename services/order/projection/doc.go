// Package projection is the order service's CQRS read side: a projector that folds the
// "order" event category into SQL read models (orders, orders_by_user, sales_by_product)
// with its checkpoint in the same transaction, the queries the transport serves, and Rebuild.
//
// When a sale counts: sales_by_product adds an order's lines when OrderCompleted is
// applied. The state machine has no way out of COMPLETED, so a counted sale is never
// taken back, and an order cancelled at any earlier step never counts.
package projection
