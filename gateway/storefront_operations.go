package gateway

// The operator's pages: sagas past their stuck deadline, and the dead letters, with
// replay and drop.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/saga"
)

// Operations are the on-call tools the admin pages offer. Replaying a dead letter
// publishes on its original subject (a command, or a participant's reply), which only
// the operator's NATS identity may do, so the gateway gets them only where it shares
// a process with the shop (shopd); a gateway run on its own shows the shopd dlq
// commands instead. Replays keep the message's id, so a handler that took it once
// ignores it.
type Operations struct {
	// StuckSagas lists the sagas past their stuck deadline, oldest first.
	StuckSagas func(ctx context.Context) ([]saga.State, error)
	// DeadLetters reads, replays and drops the dead letters.
	DeadLetters *messaging.DeadLetters
}

// deadLetterPageSize bounds the dead letters one page lists.
const deadLetterPageSize = 200

type stuckSaga struct {
	OrderID   string
	Step      string
	Status    string
	Attempts  int
	LastError string
	Started   time.Time
	Age       string
}

type operationsBody struct {
	// Available is false when this gateway has no Operations.
	Available   bool
	Sagas       []stuckSaga
	DeadLetters []messaging.DeadLetter
	Truncated   bool
}

func (g *Gateway) handleAdminSagas(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil || !g.requireAdmin(w, r, sess) {
		return
	}
	d := g.newPageData(r, sess, "Stuck sagas")
	body := &operationsBody{Available: g.ops != nil}
	d.Body = body
	if g.ops != nil {
		states, err := g.ops.StuckSagas(r.Context())
		if err != nil {
			g.logger.WarnContext(r.Context(), "stuck sagas not listed", "error", err)
			d.down(upOrder)
		}
		for _, st := range states {
			body.Sagas = append(body.Sagas, describeStuck(st, time.Now()))
		}
	}
	g.render(w, r, http.StatusOK, "admin-sagas", d)
}

// describeStuck is one row of the stuck sagas' page: the step it waits in, its tries
// and the last failure its log records.
func describeStuck(st saga.State, now time.Time) stuckSaga {
	s := stuckSaga{OrderID: st.ID, Step: st.StepName, Status: st.Status.String(), Started: st.StartedAt,
		Age: now.Sub(st.StartedAt).Truncate(time.Second).String(), LastError: st.Reason}
	if st.Step >= 0 && st.Step < len(st.Attempts) {
		s.Attempts = st.Attempts[st.Step]
	}
	for i := len(st.History) - 1; i >= 0 && s.LastError == ""; i-- {
		if f, ok := st.History[i].Event.(interface{ GetReason() string }); ok && f.GetReason() != "" {
			s.LastError = f.GetReason()
		}
	}
	return s
}

func (g *Gateway) handleAdminDeadLetters(w http.ResponseWriter, r *http.Request) {
	sess := g.requireUser(w, r)
	if sess == nil || !g.requireAdmin(w, r, sess) {
		return
	}
	d := g.newPageData(r, sess, "Dead letters")
	body := &operationsBody{Available: g.ops != nil}
	d.Body = body
	if g.ops != nil {
		letters, err := g.ops.DeadLetters.List(r.Context(), deadLetterPageSize+1)
		if err != nil {
			g.logger.WarnContext(r.Context(), "dead letters not listed", "error", err)
			d.down("dead-letter")
		}
		if len(letters) > deadLetterPageSize {
			letters, body.Truncated = letters[:deadLetterPageSize], true
		}
		body.DeadLetters = letters
	}
	g.render(w, r, http.StatusOK, "admin-dead-letters", d)
}

// handleDeadLetterAction replays or drops one dead letter (POST, admin, CSRF).
func (g *Gateway) handleDeadLetterAction(w http.ResponseWriter, r *http.Request) {
	sess := g.requirePost(w, r)
	if sess == nil || !g.requireAdmin(w, r, sess) {
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		g.renderError(w, r, http.StatusBadRequest, "That request is not valid: seq must be a positive whole number.")
		return
	}
	if g.ops == nil {
		g.renderError(w, r, http.StatusServiceUnavailable, "Dead letters are not available on this gateway.")
		return
	}
	ctx := r.Context()
	var msg string
	switch r.PathValue("action") {
	case "replay":
		var dl messaging.DeadLetter
		if dl, err = g.ops.DeadLetters.Replay(ctx, seq); err == nil {
			msg = fmt.Sprintf("Dead letter %d replayed on %s.", seq, dl.Subject)
		}
	case "drop":
		if err = g.ops.DeadLetters.Drop(ctx, seq); err == nil {
			msg = fmt.Sprintf("Dead letter %d dropped.", seq)
		}
	default:
		g.renderError(w, r, http.StatusNotFound, "We could not find that.")
		return
	}
	level := slog.LevelInfo // every action is logged, with who took it
	switch {
	case errors.Is(err, messaging.ErrNoDeadLetter):
		msg = fmt.Sprintf("Dead letter %d is no longer there; nothing was done.", seq)
	case err != nil:
		level = slog.LevelWarn
		msg = fmt.Sprintf("Dead letter %d: the action failed (%v); it is still there.", seq, err)
	}
	g.logger.Log(ctx, level, "dead letter action", "seq", seq, "action", r.PathValue("action"), "by", sess.claims.Subject, "error", err)
	g.sessions.setFlash(ctx, sess, msg)
	http.Redirect(w, r, "/admin/dead-letters", http.StatusSeeOther)
}
