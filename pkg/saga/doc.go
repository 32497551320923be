// Package saga runs long-lived, compensating workflows across services: a Definition
// is a list of steps, each a command with a compensation, a timeout and a retry policy.
// Every transition is event-sourced in the saga's own stream before the next command is
// sent, so a crash at any instant resumes from the log; see README.md for the argument.
package saga
