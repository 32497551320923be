package domain_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/eventshop/eventshop/services/order/domain"
)

// command is one column of the state x command table; the arguments are the
// fixture's own ids, so a step already taken reads as a duplicate reply.
type command struct {
	name string
	run  func(o *domain.Order) ([]domain.Event, error)
}

func commands() []command {
	otherKey := placeParams()
	otherKey.IdempotencyKey = "key-87654321"
	return []command{
		{"Place", func(o *domain.Order) ([]domain.Event, error) { return o.Place(placeParams()) }},
		{"Place/other-key", func(o *domain.Order) ([]domain.Event, error) { return o.Place(otherKey) }},
		{"RecordPaymentAuthorized", func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentAuthorized(payID, usd(total)) }},
		{"RecordInventoryReserved", func(o *domain.Order) ([]domain.Event, error) { return o.RecordInventoryReserved(resID) }},
		{"RecordShipmentCreated", func(o *domain.Order) ([]domain.Event, error) { return o.RecordShipmentCreated(shipID, trackID) }},
		{"RecordPaymentCaptured", func(o *domain.Order) ([]domain.Event, error) { return o.RecordPaymentCaptured(payID, usd(total)) }},
		{"Complete", func(o *domain.Order) ([]domain.Event, error) { return o.Complete() }},
		{"RequestCancel/user", func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel("too slow", true) }},
		{"RequestCancel/saga", func(o *domain.Order) ([]domain.Event, error) { return o.RequestCancel("step failed", false) }},
		{"CancelByUser", func(o *domain.Order) ([]domain.Event, error) { return o.CancelByUser(userID, "too slow") }},
		{"ConfirmCancelled", func(o *domain.Order) ([]domain.Event, error) { return o.ConfirmCancelled() }},
	}
}

func TestEveryCommandInEveryState(t *testing.T) {
	t.Parallel()
	const (
		newS       = domain.StateNew
		pending    = domain.StatePending
		authd      = domain.StatePaymentAuthorized
		reservedS  = domain.StateInventoryReserved
		shippedS   = domain.StateShipmentCreated
		capturedS  = domain.StatePaymentCaptured
		completedS = domain.StateCompleted
		cancellinG = domain.StateCancelling
		cancelleD  = domain.StateCancelled
	)
	deny := func(from domain.State, cmd string) error { return &domain.TransitionError{From: from, Command: cmd} }
	evs := func(e ...domain.Event) []domain.Event { return e }

	tests := []struct {
		from    string
		cmd     string
		want    []domain.Event // nil with nil wantErr: a recognised repeat, nothing to record
		next    domain.State   // state after applying want
		wantErr error
	}{
		{from: "new", cmd: "Place", want: evs(placed(idemKey)), next: pending},
		{from: "new", cmd: "Place/other-key", want: evs(placed("key-87654321")), next: pending},
		{from: "new", cmd: "RecordPaymentAuthorized", wantErr: deny(newS, domain.CmdRecordPaymentAuthorized)},
		{from: "new", cmd: "RecordInventoryReserved", wantErr: deny(newS, domain.CmdRecordInventoryReserved)},
		{from: "new", cmd: "RecordShipmentCreated", wantErr: deny(newS, domain.CmdRecordShipmentCreated)},
		{from: "new", cmd: "RecordPaymentCaptured", wantErr: deny(newS, domain.CmdRecordPaymentCaptured)},
		{from: "new", cmd: "Complete", wantErr: deny(newS, domain.CmdComplete)},
		{from: "new", cmd: "RequestCancel/user", wantErr: deny(newS, domain.CmdRequestCancel)},
		{from: "new", cmd: "RequestCancel/saga", wantErr: deny(newS, domain.CmdRequestCancel)},
		{from: "new", cmd: "CancelByUser", wantErr: deny(newS, domain.CmdCancelByUser)},
		{from: "new", cmd: "ConfirmCancelled", wantErr: deny(newS, domain.CmdConfirmCancelled)},

		{from: "pending", cmd: "Place"},
		{from: "pending", cmd: "Place/other-key", wantErr: deny(pending, domain.CmdPlace)},
		{from: "pending", cmd: "RecordPaymentAuthorized", want: evs(authorized()), next: authd},
		{from: "pending", cmd: "RecordInventoryReserved", wantErr: deny(pending, domain.CmdRecordInventoryReserved)},
		{from: "pending", cmd: "RecordShipmentCreated", wantErr: deny(pending, domain.CmdRecordShipmentCreated)},
		{from: "pending", cmd: "RecordPaymentCaptured", wantErr: deny(pending, domain.CmdRecordPaymentCaptured)},
		{from: "pending", cmd: "Complete", wantErr: deny(pending, domain.CmdComplete)},
		{from: "pending", cmd: "RequestCancel/user", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "pending", cmd: "RequestCancel/saga", want: evs(cancelling("step failed", false)), next: cancellinG},
		{from: "pending", cmd: "CancelByUser", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "pending", cmd: "ConfirmCancelled", wantErr: deny(pending, domain.CmdConfirmCancelled)},

		{from: "authorized", cmd: "Place"},
		{from: "authorized", cmd: "Place/other-key", wantErr: deny(authd, domain.CmdPlace)},
		{from: "authorized", cmd: "RecordPaymentAuthorized"},
		{from: "authorized", cmd: "RecordInventoryReserved", want: evs(reserved()), next: reservedS},
		{from: "authorized", cmd: "RecordShipmentCreated", wantErr: deny(authd, domain.CmdRecordShipmentCreated)},
		{from: "authorized", cmd: "RecordPaymentCaptured", wantErr: deny(authd, domain.CmdRecordPaymentCaptured)},
		{from: "authorized", cmd: "Complete", wantErr: deny(authd, domain.CmdComplete)},
		{from: "authorized", cmd: "RequestCancel/user", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "authorized", cmd: "RequestCancel/saga", want: evs(cancelling("step failed", false)), next: cancellinG},
		{from: "authorized", cmd: "CancelByUser", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "authorized", cmd: "ConfirmCancelled", wantErr: deny(authd, domain.CmdConfirmCancelled)},

		{from: "reserved", cmd: "Place"},
		{from: "reserved", cmd: "Place/other-key", wantErr: deny(reservedS, domain.CmdPlace)},
		{from: "reserved", cmd: "RecordPaymentAuthorized"},
		{from: "reserved", cmd: "RecordInventoryReserved"},
		{from: "reserved", cmd: "RecordShipmentCreated", want: evs(shipped()), next: shippedS},
		{from: "reserved", cmd: "RecordPaymentCaptured", wantErr: deny(reservedS, domain.CmdRecordPaymentCaptured)},
		{from: "reserved", cmd: "Complete", wantErr: deny(reservedS, domain.CmdComplete)},
		{from: "reserved", cmd: "RequestCancel/user", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "reserved", cmd: "RequestCancel/saga", want: evs(cancelling("step failed", false)), next: cancellinG},
		{from: "reserved", cmd: "CancelByUser", want: evs(cancelling("too slow", true)), next: cancellinG},
		{from: "reserved", cmd: "ConfirmCancelled", wantErr: deny(reservedS, domain.CmdConfirmCancelled)},

		{from: "shipped", cmd: "Place"},
		{from: "shipped", cmd: "Place/other-key", wantErr: deny(shippedS, domain.CmdPlace)},
		{from: "shipped", cmd: "RecordPaymentAuthorized"},
		{from: "shipped", cmd: "RecordInventoryReserved"},
		{from: "shipped", cmd: "RecordShipmentCreated"},
		{from: "shipped", cmd: "RecordPaymentCaptured", want: evs(captured()), next: capturedS},
		{from: "shipped", cmd: "Complete", wantErr: deny(shippedS, domain.CmdComplete)},
		{from: "shipped", cmd: "RequestCancel/user", wantErr: deny(shippedS, domain.CmdRequestCancel)},
		{from: "shipped", cmd: "RequestCancel/saga", want: evs(cancelling("step failed", false)), next: cancellinG},
		{from: "shipped", cmd: "CancelByUser", wantErr: deny(shippedS, domain.CmdRequestCancel)},
		{from: "shipped", cmd: "ConfirmCancelled", wantErr: deny(shippedS, domain.CmdConfirmCancelled)},

		{from: "captured", cmd: "Place"},
		{from: "captured", cmd: "Place/other-key", wantErr: deny(capturedS, domain.CmdPlace)},
		{from: "captured", cmd: "RecordPaymentAuthorized"},
		{from: "captured", cmd: "RecordInventoryReserved"},
		{from: "captured", cmd: "RecordShipmentCreated"},
		{from: "captured", cmd: "RecordPaymentCaptured"},
		{from: "captured", cmd: "Complete", want: evs(completed()), next: completedS},
		{from: "captured", cmd: "RequestCancel/user", wantErr: deny(capturedS, domain.CmdRequestCancel)},
		{from: "captured", cmd: "RequestCancel/saga", want: evs(cancelling("step failed", false)), next: cancellinG},
		{from: "captured", cmd: "CancelByUser", wantErr: deny(capturedS, domain.CmdRequestCancel)},
		{from: "captured", cmd: "ConfirmCancelled", wantErr: deny(capturedS, domain.CmdConfirmCancelled)},

		{from: "completed", cmd: "Place"},
		{from: "completed", cmd: "Place/other-key", wantErr: deny(completedS, domain.CmdPlace)},
		{from: "completed", cmd: "RecordPaymentAuthorized"},
		{from: "completed", cmd: "RecordInventoryReserved"},
		{from: "completed", cmd: "RecordShipmentCreated"},
		{from: "completed", cmd: "RecordPaymentCaptured"},
		{from: "completed", cmd: "Complete"},
		{from: "completed", cmd: "RequestCancel/user", wantErr: deny(completedS, domain.CmdRequestCancel)},
		{from: "completed", cmd: "RequestCancel/saga", wantErr: deny(completedS, domain.CmdRequestCancel)},
		{from: "completed", cmd: "CancelByUser", wantErr: deny(completedS, domain.CmdRequestCancel)},
		{from: "completed", cmd: "ConfirmCancelled", wantErr: deny(completedS, domain.CmdConfirmCancelled)},

		{from: "cancelling-from-pending", cmd: "Place"},
		{from: "cancelling-from-pending", cmd: "Place/other-key", wantErr: deny(cancellinG, domain.CmdPlace)},
		{from: "cancelling-from-pending", cmd: "RecordPaymentAuthorized", wantErr: deny(cancellinG, domain.CmdRecordPaymentAuthorized)},
		{from: "cancelling-from-pending", cmd: "RecordInventoryReserved", wantErr: deny(cancellinG, domain.CmdRecordInventoryReserved)},
		{from: "cancelling-from-pending", cmd: "RecordShipmentCreated", wantErr: deny(cancellinG, domain.CmdRecordShipmentCreated)},
		{from: "cancelling-from-pending", cmd: "RecordPaymentCaptured", wantErr: deny(cancellinG, domain.CmdRecordPaymentCaptured)},
		{from: "cancelling-from-pending", cmd: "Complete", wantErr: deny(cancellinG, domain.CmdComplete)},
		{from: "cancelling-from-pending", cmd: "RequestCancel/user"},
		{from: "cancelling-from-pending", cmd: "RequestCancel/saga"},
		{from: "cancelling-from-pending", cmd: "CancelByUser"},
		{from: "cancelling-from-pending", cmd: "ConfirmCancelled", want: evs(cancelled("changed my mind")), next: cancelleD},

		{from: "cancelling-from-captured", cmd: "Place"},
		{from: "cancelling-from-captured", cmd: "Place/other-key", wantErr: deny(cancellinG, domain.CmdPlace)},
		{from: "cancelling-from-captured", cmd: "RecordPaymentAuthorized"},
		{from: "cancelling-from-captured", cmd: "RecordInventoryReserved"},
		{from: "cancelling-from-captured", cmd: "RecordShipmentCreated"},
		{from: "cancelling-from-captured", cmd: "RecordPaymentCaptured"},
		{from: "cancelling-from-captured", cmd: "Complete", wantErr: deny(cancellinG, domain.CmdComplete)},
		{from: "cancelling-from-captured", cmd: "RequestCancel/user"},
		{from: "cancelling-from-captured", cmd: "RequestCancel/saga"},
		{from: "cancelling-from-captured", cmd: "CancelByUser"},
		{from: "cancelling-from-captured", cmd: "ConfirmCancelled", want: evs(cancelled("parcel lost")), next: cancelleD},

		{from: "cancelled-from-reserved", cmd: "Place"},
		{from: "cancelled-from-reserved", cmd: "Place/other-key", wantErr: deny(cancelleD, domain.CmdPlace)},
		{from: "cancelled-from-reserved", cmd: "RecordPaymentAuthorized"},
		{from: "cancelled-from-reserved", cmd: "RecordInventoryReserved"},
		{from: "cancelled-from-reserved", cmd: "RecordShipmentCreated", wantErr: deny(cancelleD, domain.CmdRecordShipmentCreated)},
		{from: "cancelled-from-reserved", cmd: "RecordPaymentCaptured", wantErr: deny(cancelleD, domain.CmdRecordPaymentCaptured)},
		{from: "cancelled-from-reserved", cmd: "Complete", wantErr: deny(cancelleD, domain.CmdComplete)},
		{from: "cancelled-from-reserved", cmd: "RequestCancel/user"},
		{from: "cancelled-from-reserved", cmd: "RequestCancel/saga"},
		{from: "cancelled-from-reserved", cmd: "CancelByUser"},
		{from: "cancelled-from-reserved", cmd: "ConfirmCancelled"},

		{from: "cancelled-from-shipped", cmd: "Place"},
		{from: "cancelled-from-shipped", cmd: "Place/other-key", wantErr: deny(cancelleD, domain.CmdPlace)},
		{from: "cancelled-from-shipped", cmd: "RecordPaymentAuthorized"},
		{from: "cancelled-from-shipped", cmd: "RecordInventoryReserved"},
		{from: "cancelled-from-shipped", cmd: "RecordShipmentCreated"},
		{from: "cancelled-from-shipped", cmd: "RecordPaymentCaptured", wantErr: deny(cancelleD, domain.CmdRecordPaymentCaptured)},
		{from: "cancelled-from-shipped", cmd: "Complete", wantErr: deny(cancelleD, domain.CmdComplete)},
		{from: "cancelled-from-shipped", cmd: "RequestCancel/user"},
		{from: "cancelled-from-shipped", cmd: "RequestCancel/saga"},
		{from: "cancelled-from-shipped", cmd: "CancelByUser"},
		{from: "cancelled-from-shipped", cmd: "ConfirmCancelled"},
	}

	fxs := map[string]fixture{}
	for _, f := range fixtures() {
		fxs[f.name] = f
	}
	cmds := map[string]command{}
	for _, c := range commands() {
		cmds[c.name] = c
	}
	// The table must hold every (state, command) pair exactly once.
	seen := map[[2]string]bool{}
	for _, tt := range tests {
		key := [2]string{tt.from, tt.cmd}
		if _, ok := fxs[tt.from]; !ok {
			t.Fatalf("row for unknown fixture %q", tt.from)
		}
		if _, ok := cmds[tt.cmd]; !ok {
			t.Fatalf("row for unknown command %q", tt.cmd)
		}
		if seen[key] {
			t.Fatalf("duplicate row %v", key)
		}
		seen[key] = true
	}
	for f := range fxs {
		for c := range cmds {
			if !seen[[2]string{f, c}] {
				t.Errorf("no row for state %s x command %s", f, c)
			}
		}
	}

	for _, tt := range tests {
		t.Run(tt.from+"/"+tt.cmd, func(t *testing.T) {
			o := fxs[tt.from].load(t)
			before := o.Snapshot()

			got, err := cmds[tt.cmd].run(o)

			if !reflect.DeepEqual(o.Snapshot(), before) {
				t.Fatalf("command changed the order:\n got %+v\nwant %+v", o.Snapshot(), before)
			}
			if tt.wantErr != nil {
				var want, te *domain.TransitionError
				if !errors.As(tt.wantErr, &want) {
					t.Fatalf("bad table row: wantErr %v", tt.wantErr)
				}
				if !errors.As(err, &te) || *te != *want || !errors.Is(err, domain.ErrIllegalTransition) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Fatalf("events %v with an error", text(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			assertEvents(t, got, tt.want)
			if len(got) == 0 {
				return
			}
			for _, e := range got {
				if err := o.Apply(e); err != nil {
					t.Fatalf("Apply(%s): %v", domain.EventType(e), err)
				}
			}
			if o.State() != tt.next {
				t.Fatalf("state after apply %s, want %s", o.State(), tt.next)
			}
			if o.Version() != before.Version+int64(len(got)) {
				t.Fatalf("version %d, want %d", o.Version(), before.Version+int64(len(got)))
			}
		})
	}
}
