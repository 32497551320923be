// Package domain holds the event-sourced order aggregate: its state machine, commands, invariants and money.
// Commands decide and return events; Apply folds events into state. Nothing here stores, publishes or
// calls anything, so every rule is a pure function the app layer wraps with storage and messaging.
package domain
