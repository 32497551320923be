package participant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/sqldb"
)

// ErrNoDecision is the error of a command whose HandlerFunc returned neither a
// Decision nor an error.
var ErrNoDecision = errors.New("participant: handler returned no decision")

// Runtime is the SQL half of a participant: it turns a batch of delivered commands
// into effects and stored replies, all in one transaction. Its HandleBatch is the
// messaging.BatchFunc of the participant's consumer.
type Runtime struct {
	db       *sqldb.DB
	replies  *messaging.Replies
	replyID  func(commandID string) string
	handlers map[string]Handler
}

// NewRuntime returns the runtime of the handlers over db, recording commands and their
// replies in replies; replyID derives a reply's event id from its command's id, so a
// reply published again is deduplicated by JetStream. It panics on a nil dependency or
// two handlers of one type: that is a wiring mistake.
func NewRuntime(db *sqldb.DB, replies *messaging.Replies, replyID func(commandID string) string, handlers ...Handler) *Runtime {
	if db == nil || replies == nil || replyID == nil || len(handlers) == 0 {
		panic("participant: NewRuntime needs a database, replies, a reply id func and handlers")
	}
	byType := make(map[string]Handler, len(handlers))
	for _, h := range handlers {
		if _, dup := byType[h.MessageType()]; dup {
			panic("participant: two handlers for " + h.MessageType())
		}
		byType[h.MessageType()] = h
	}
	return &Runtime{db: db, replies: replies, replyID: replyID, handlers: byType}
}

// Types returns the ce-types the runtime handles.
func (r *Runtime) Types() []string {
	out := make([]string, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	return out
}

// HandleBatch handles a batch of commands and returns their outcomes, in order:
//
//  1. Redelivered commands answered before get their stored reply again, with no
//     effect and without being prepared.
//  2. The others are prepared at once, outside any transaction (HandlerFunc).
//  3. Their decisions run in stream order in ONE transaction, each recorded in the
//     inbox with its reply; a command recorded meanwhile (another instance, or twice
//     in this batch) gets the stored reply instead. Then it commits.
//  4. If a decision fails or the commit does, nothing of the batch is kept, and each
//     prepared command is decided again in a transaction of its own, so one bad
//     command is retried or dead-lettered alone and the others go through.
//
// Every outcome carries the reply to publish (before the command is acknowledged)
// or the error that makes the consumer retry or dead-letter the command.
func (r *Runtime) HandleBatch(ctx context.Context, batch []*messaging.Delivery) []messaging.Outcome {
	outs := make([]messaging.Outcome, len(batch))
	// Only a redelivery can have been answered already. A first delivery of a
	// command answered before (sent again by the saga after the stream stopped
	// deduplicating its id) is caught by the inbox in step 3 instead; looking every
	// first delivery up cost a query per batch that never found anything.
	var again []string
	for _, d := range batch {
		if d.Attempt > 1 {
			again = append(again, d.ID)
		}
	}
	stored, err := r.replies.LoadMany(ctx, r.db, again)
	if err != nil {
		for i := range outs {
			outs[i].Err = err
		}
		return outs
	}

	decides := make([]Decide, len(batch))
	subjects := make([]string, len(batch))
	var prepares []func()
	for i, d := range batch {
		h, ok := r.handlers[d.Type]
		if !ok {
			outs[i].Err = messaging.Permanent(fmt.Errorf("%w %q", messaging.ErrUnknownType, d.Type))
			continue
		}
		cmd, err := h.decode(d.Data)
		if err != nil {
			outs[i].Err = err
			continue
		}
		subjects[i] = cmd.GetOrderId()
		if reply, ok := stored[d.ID]; ok {
			outs[i] = r.outcome(d, subjects[i], reply)
			continue
		}
		prepares = append(prepares, func() {
			decide, err := safePrepare(msgCtx(d), h, d, cmd)
			if err == nil && decide == nil {
				err = ErrNoDecision
			}
			decides[i], outs[i].Err = decide, err
		})
	}
	// Prepared at once, the last in this goroutine: most batches hold one command,
	// and a new goroutine per command grew its stack again through SQLite's deep
	// frames (1.2 % of the order pipeline's CPU).
	var wg sync.WaitGroup
	for i, prepare := range prepares {
		if i == len(prepares)-1 {
			prepare()
			break
		}
		wg.Go(prepare)
	}
	wg.Wait()

	var pending []int
	for i, decide := range decides {
		if decide != nil {
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return outs
	}
	replies := make([]messaging.Reply, len(batch))
	err = r.inTx(ctx, func(tx *sql.Tx) error {
		for _, i := range pending {
			reply, err := r.execute(msgCtx(batch[i]), tx, batch[i].ID, decides[i])
			if err != nil {
				return err
			}
			replies[i] = reply
		}
		return nil
	})
	if err == nil {
		for _, i := range pending {
			outs[i] = r.outcome(batch[i], subjects[i], replies[i])
		}
		return outs
	}
	if len(pending) == 1 {
		outs[pending[0]].Err = err
		return outs
	}
	// One per transaction: the failing command fails alone.
	for _, i := range pending {
		var reply messaging.Reply
		err := r.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			reply, err = r.execute(msgCtx(batch[i]), tx, batch[i].ID, decides[i])
			return err
		})
		if err != nil {
			outs[i].Err = err
			continue
		}
		outs[i] = r.outcome(batch[i], subjects[i], reply)
	}
	return outs
}

// Execute decides one command alone in a transaction of its own, recorded in the inbox
// with its reply, and returns the reply: the stored one, without running decide, if
// commandID was handled before. It returns decide's error or the database error.
func (r *Runtime) Execute(ctx context.Context, commandID string, decide Decide) (messaging.Reply, error) {
	var reply messaging.Reply
	err := r.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		reply, err = r.execute(ctx, tx, commandID, decide)
		return err
	})
	return reply, err
}

func (r *Runtime) execute(ctx context.Context, tx *sql.Tx, commandID string, decide Decide) (reply messaging.Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", messaging.ErrHandlerPanic, p)
		}
	}()
	return r.replies.Execute(ctx, tx, commandID, func(ctx context.Context) (messaging.Reply, error) {
		return decide(ctx, tx)
	})
}

func (r *Runtime) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return r.db.InTx(ctx, fn)
}

func (r *Runtime) outcome(d *messaging.Delivery, subject string, reply messaging.Reply) messaging.Outcome {
	return messaging.Outcome{Reply: reply, ReplyID: r.replyID(d.ID), Subject: subject}
}

// Prune forgets the commands handled before before: their inbox records and stored
// replies. It returns how many it forgot and the database error.
func (r *Runtime) Prune(ctx context.Context, before time.Time) (int64, error) {
	return r.replies.Prune(ctx, r.db.DB, before)
}

// safePrepare turns a panic while preparing into an error, so one bad command is
// retried and dead-lettered instead of taking the service down.
func safePrepare(c context.Context, h Handler, d *messaging.Delivery, cmd Command) (decide Decide, err error) {
	defer func() {
		if p := recover(); p != nil {
			decide, err = nil, fmt.Errorf("%w: %v", messaging.ErrHandlerPanic, p)
		}
	}()
	return h.prepare(c, d.Message, cmd)
}

// msgCtx is the context of work done for d alone: it carries d's consumer span.
func msgCtx(d *messaging.Delivery) context.Context { return d.Context() }
