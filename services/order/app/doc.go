// Package app runs the order service's use cases: it loads the event-sourced order
// aggregate, lets the domain decide, and appends the result with optimistic concurrency.
// Storage, pricing and shipping quotes come in through small interfaces declared here.
package app
