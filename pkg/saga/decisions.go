package saga

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	sagav1 "github.com/eventshop/eventshop/gen/go/eventshop/saga/v1"
)

// The decisions: what a saga does next, given its state and what happened (a reply,
// a timeout, a failed send). They only append events to a batch and compute the
// state those events lead to; the run loop, tracking and persistence in
// orchestrator.go record the batch and send its command.

func (o *Orchestrator[T]) emit(b *batch, ev proto.Message) {
	b.evs = append(b.evs, ev)
	if err := b.st.apply(ev, b.now, o.names); err != nil && b.err == nil {
		b.err = err
	}
}

// decideReply is the transition for a reply; a trusted one (Interrupt) answers
// whatever is in progress.
func (o *Orchestrator[T]) decideReply(b *batch, r Reply, trusted bool) {
	st := b.st
	typ := typeOf(r.Msg)
	answers := trusted || st.ids[r.CausationID]
	switch {
	case !answers:
	case st.status == Running:
		step := o.def.Steps[st.step]
		if lookup(step.SucceededOn, typ) != nil {
			o.succeed(b, r)
		} else if lookup(step.FailedOn, typ) != nil {
			o.fail(b, r, fmt.Sprintf("step %s failed: %s", step.Name, describe(r.Msg)))
		}
	case st.status == Compensating && st.comp >= 0:
		step := o.def.Steps[st.comp]
		if lookup(step.UndoneOn, typ) != nil {
			rt, rb := marshalReply(r.Msg)
			o.emit(b, &sagav1.CompensationSucceeded{
				Step: int32(st.comp), StepName: step.Name, ReplyId: r.ID, ReplyType: rt, Reply: rb,
			})
			o.compensate(b)
		} else if lookup(step.UndoFailedOn, typ) != nil && st.waiting && (trusted || r.CausationID == st.lastID) {
			a := st.undos[st.comp]
			o.emit(b, &sagav1.CompensationFailed{
				Step: int32(st.comp), StepName: step.Name, Attempt: int32(a), ReplyId: r.ID,
				Reason:    "compensation failed: " + describe(r.Msg),
				RetryTime: timestamppb.New(b.now.Add(step.UndoBackoff.delay(a))),
			})
		}
	}
}

// succeed records the success reply of the step in progress and starts the next
// step, or completes the saga.
func (o *Orchestrator[T]) succeed(b *batch, r Reply) {
	i := b.st.step
	step := o.def.Steps[i]
	var newData []byte
	if step.OnSuccess != nil {
		data, err := o.data(b.st)
		if err == nil {
			err = step.OnSuccess(data, r.Msg)
		}
		if err == nil {
			newData, err = proto.Marshal(data)
		}
		if err != nil {
			o.fail(b, r, fmt.Sprintf("step %s: reply %s not usable: %v", step.Name, typeOf(r.Msg), err))
			return
		}
	}
	rt, rb := marshalReply(r.Msg)
	o.emit(b, &sagav1.StepSucceeded{
		Step: int32(i), StepName: step.Name, ReplyId: r.ID, ReplyType: rt, Reply: rb, Data: newData,
	})
	if i+1 < len(o.def.Steps) {
		o.startStep(b, i+1, 1)
		return
	}
	o.emit(b, &sagav1.SagaCompleted{})
}

// fail records the failure of the step in progress and starts compensating.
func (o *Orchestrator[T]) fail(b *batch, r Reply, reason string) {
	ev := &sagav1.StepFailed{Step: int32(b.st.step), StepName: o.names[b.st.step], Reason: reason}
	if r.Msg != nil {
		ev.ReplyId = r.ID
		ev.ReplyType, ev.Reply = marshalReply(r.Msg)
	}
	o.emit(b, ev)
	o.compensate(b)
}

// startStep records attempt of step i and prepares its command.
func (o *Orchestrator[T]) startStep(b *batch, i, attempt int) {
	step := o.def.Steps[i]
	data, err := o.data(b.st)
	var req Request
	if err == nil {
		req, err = step.Do(data)
	}
	if err == nil && req.Msg == nil {
		err = errors.New("no message")
	}
	if err != nil {
		o.emit(b, &sagav1.StepFailed{Step: int32(i), StepName: step.Name, Reason: fmt.Sprintf("step %s: build command: %v", step.Name, err)})
		o.compensate(b)
		return
	}
	cmd := &Command{ID: commandID(b.st.id, i, attempt, false), SagaID: b.st.id, Step: step.Name, Attempt: attempt, Request: req}
	o.emit(b, &sagav1.StepStarted{
		Step: int32(i), StepName: step.Name, Attempt: int32(attempt), CommandId: cmd.ID,
		CommandType: string(typeOf(req.Msg)), TimeoutTime: timestamppb.New(b.now.Add(step.Timeout)),
	})
	b.cmd = cmd
}

// compensate starts the compensation of the latest step that succeeded (or timed
// out for good) and is not compensated yet, or cancels the saga when none is left.
func (o *Orchestrator[T]) compensate(b *batch) {
	st := b.st
	for j := min(st.step, len(o.names)-1); j >= 0; j-- {
		if (st.done[j] || st.timedOut == j) && !st.undone[j] && o.def.Steps[j].Undo != nil {
			o.startUndo(b, j, st.undos[j]+1)
			return
		}
	}
	o.emit(b, &sagav1.SagaCancelled{Reason: st.reason, FailedStep: int32(st.step), FailedStepName: o.names[st.step]})
}

// startUndo records attempt of the compensation of step j and prepares its command.
func (o *Orchestrator[T]) startUndo(b *batch, j, attempt int) {
	step := o.def.Steps[j]
	cmd, err := o.undoCommand(b.st, j, attempt)
	id := commandID(b.st.id, j, attempt, true)
	var typ string
	if cmd != nil {
		typ = string(typeOf(cmd.Msg))
	}
	o.emit(b, &sagav1.CompensationStarted{
		Step: int32(j), StepName: step.Name, Attempt: int32(attempt), CommandId: id,
		CommandType: typ, TimeoutTime: timestamppb.New(b.now.Add(step.UndoTimeout)),
	})
	if err != nil {
		// Nothing can be sent; the attempt fails at once and is retried like any
		// other, so the saga shows up as stuck instead of vanishing.
		o.emit(b, &sagav1.CompensationFailed{
			Step: int32(j), StepName: step.Name, Attempt: int32(attempt),
			Reason:    fmt.Sprintf("build compensation: %v", err),
			RetryTime: timestamppb.New(b.now.Add(step.UndoBackoff.delay(attempt))),
		})
		return
	}
	b.cmd = cmd
}

// decideTimer is the transition when the clock passes the saga's due time.
func (o *Orchestrator[T]) decideTimer(b *batch) {
	st := b.st
	if st.due.IsZero() || b.now.Before(st.due) {
		return
	}
	switch {
	case st.status == Running && st.waiting:
		step := o.def.Steps[st.step]
		a := st.attempts[st.step]
		ev := &sagav1.StepTimedOut{Step: int32(st.step), StepName: step.Name, Attempt: int32(a)}
		if a < step.Retry.Attempts {
			ev.RetryTime = timestamppb.New(b.now.Add(step.Retry.Backoff.delay(a)))
		}
		o.emit(b, ev)
		if ev.RetryTime == nil {
			o.compensate(b)
		}
	case st.status == Running:
		o.startStep(b, st.step, st.attempts[st.step]+1)
	case st.status == Compensating && st.comp >= 0 && st.waiting:
		step := o.def.Steps[st.comp]
		a := st.undos[st.comp]
		o.emit(b, &sagav1.CompensationFailed{
			Step: int32(st.comp), StepName: step.Name, Attempt: int32(a), Reason: "compensation timed out",
			RetryTime: timestamppb.New(b.now.Add(step.UndoBackoff.delay(a))),
		})
	case st.status == Compensating && st.comp >= 0:
		o.startUndo(b, st.comp, st.undos[st.comp]+1)
	}
}

// pending rebuilds the command st is waiting on (nil if none) from the log.
func (o *Orchestrator[T]) pending(st *state) (*Command, error) {
	switch {
	case !st.waiting:
		return nil, nil
	case st.status == Running:
		step := o.def.Steps[st.step]
		data, err := o.data(st)
		if err != nil {
			return nil, err
		}
		req, err := step.Do(data)
		if err != nil {
			return nil, err
		}
		a := st.attempts[st.step]
		return &Command{ID: commandID(st.id, st.step, a, false), SagaID: st.id, Step: step.Name, Attempt: a, Request: req}, nil
	case st.status == Compensating && st.comp >= 0:
		return o.undoCommand(st, st.comp, st.undos[st.comp])
	}
	return nil, nil
}

func (o *Orchestrator[T]) undoCommand(st *state, j, attempt int) (*Command, error) {
	step := o.def.Steps[j]
	data, err := o.data(st)
	if err != nil {
		return nil, err
	}
	var rep proto.Message
	if r := st.replies[j]; r != nil {
		sample := lookup(step.SucceededOn, protoreflect.FullName(r.typ))
		if sample == nil {
			return nil, fmt.Errorf("step %s: reply type %s is not in SucceededOn", step.Name, r.typ)
		}
		rep = sample.ProtoReflect().Type().New().Interface()
		if err := proto.Unmarshal(r.data, rep); err != nil {
			return nil, fmt.Errorf("step %s: decode reply: %w", step.Name, err)
		}
	}
	req, err := step.Undo(data, rep)
	if err == nil && req.Msg == nil {
		err = errors.New("no message")
	}
	if err != nil {
		return nil, err
	}
	return &Command{ID: commandID(st.id, j, attempt, true), SagaID: st.id, Step: step.Name, Compensation: true, Attempt: attempt, Request: req}, nil
}

// data decodes a fresh copy of the saga's data.
func (o *Orchestrator[T]) data(st *state) (T, error) {
	var zero T
	m := zero.ProtoReflect().Type().New().Interface().(T)
	if err := proto.Unmarshal(st.data, m); err != nil {
		return zero, fmt.Errorf("decode data: %w", err)
	}
	return m, nil
}

func commandID(sagaID string, step, attempt int, undo bool) string {
	if undo {
		return fmt.Sprintf("%s/%d/undo/%d", sagaID, step, attempt)
	}
	return fmt.Sprintf("%s/%d/%d", sagaID, step, attempt)
}

func marshalReply(m proto.Message) (string, []byte) {
	b, _ := proto.Marshal(m) // a message that arrived decoded marshals again
	return string(typeOf(m)), b
}

// describe names a reply and quotes its "reason" field when it has one, as failure
// events conventionally do.
func describe(m proto.Message) string {
	s := string(typeOf(m))
	if f := m.ProtoReflect().Descriptor().Fields().ByName("reason"); f != nil && f.Kind() == protoreflect.StringKind {
		if r := m.ProtoReflect().Get(f).String(); r != "" {
			s += ": " + r
		}
	}
	return s
}
