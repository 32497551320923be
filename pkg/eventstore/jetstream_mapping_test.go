package eventstore_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

func newJetStream(t *testing.T) (jetstream.JetStream, *eventstore.JetStream) {
	t.Helper()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, eventstore.NewJetStream(js)
}

// One append is one message on the aggregate's subject, with the documented headers,
// in a category stream with an explicit duplicate window.
func TestJetStreamOneMessagePerCommit(t *testing.T) {
	ctx := t.Context()
	js, store := newJetStream(t)
	evs := []eventstore.Event{
		eventstoretest.NewEvent("order.Placed", "a"),
		eventstoretest.NewEvent("order.Priced", "b"),
		eventstoretest.NewEvent("order.Confirmed", "c"),
	}
	if _, err := store.Append(ctx, "order-42", eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, "order-42", 3, eventstoretest.NewEvent("order.Paid", "d")); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, store.StreamName("order"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (one per commit)", info.State.Msgs)
	}
	if info.Config.Duplicates != eventstore.DefaultDuplicateWindow || len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "order.events.>" {
		t.Fatalf("stream config: duplicates %v, subjects %v", info.Config.Duplicates, info.Config.Subjects)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		jetstream.MsgIDHeader: evs[0].ID,
		"Eventstore-Stream":   "order-42",
		"Eventstore-Version":  "1",
		"Eventstore-Count":    strconv.Itoa(len(evs)),
	}
	if m.Subject != "order.events.42" {
		t.Fatalf("subject %s, want order.events.42", m.Subject)
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	last, err := st.GetLastMsgForSubject(ctx, "order.events.42")
	if err != nil || last.Header.Get("Eventstore-Version") != "4" || last.Header.Get("Eventstore-Count") != "1" {
		t.Fatalf("last commit: %v %v", last, err)
	}
}

// Two stores (two processes) on one stream: each one's hint of the stream head goes
// stale when the other appends, and the server still decides.
func TestJetStreamTwoWritersStaleHints(t *testing.T) {
	ctx := t.Context()
	srv, nc := natstest.Connect(t)
	jsA, _ := jetstream.New(nc)
	nc2, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	jsB, _ := jetstream.New(nc2)
	a, b := eventstore.NewJetStream(jsA), eventstore.NewJetStream(jsB)
	stream := eventstoretest.Category("tw") + "-1"

	mustVersion := func(v eventstore.Version, err error, want eventstore.Version) {
		t.Helper()
		if err != nil || v != want {
			t.Fatalf("append = %d, %v; want %d", v, err, want)
		}
	}
	v, err := a.Append(ctx, stream, eventstore.NoStream, eventstoretest.NewEvent("A1", ""))
	mustVersion(v, err, 1)
	v, err = b.Append(ctx, stream, 1, eventstoretest.NewEvent("B2", ""))
	mustVersion(v, err, 2)
	// A believes the stream is at 1.
	_, err = a.Append(ctx, stream, 1, eventstoretest.NewEvent("A-stale", ""))
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Actual != 2 {
		t.Fatalf("stale append: %v, want actual version 2", err)
	}
	v, err = b.Append(ctx, stream, 2, eventstoretest.NewEvent("B3", ""))
	mustVersion(v, err, 3)
	// A's hint says 2, the caller read 3: A must look again and succeed.
	v, err = a.Append(ctx, stream, 3, eventstoretest.NewEvent("A4", ""))
	mustVersion(v, err, 4)
	v, err = b.Append(ctx, stream, eventstore.Any, eventstoretest.NewEvent("B-any", ""))
	mustVersion(v, err, 5)
	evs, err := a.ReadStream(ctx, stream, 1)
	if err != nil || len(evs) != 5 {
		t.Fatalf("read %d events, %v; want 5", len(evs), err)
	}
	for i, typ := range []string{"A1", "B2", "B3", "A4", "B-any"} {
		if evs[i].Type != typ || evs[i].Version != eventstore.Version(i+1) {
			t.Fatalf("event %d = %s v%d, want %s v%d", i, evs[i].Type, evs[i].Version, typ, i+1)
		}
	}
}

// A commit larger than the server's max payload fails whole and stores nothing.
func TestJetStreamOversizedCommit(t *testing.T) {
	ctx := t.Context()
	_, store := newJetStream(t)
	big := make([]byte, 3<<20)
	evs := []eventstore.Event{eventstoretest.NewEvent("Big", ""), eventstoretest.NewEvent("Big", ""), eventstoretest.NewEvent("Big", "")}
	for i := range evs {
		evs[i].Data = big
	}
	if _, err := store.Append(ctx, "order-big", eventstore.NoStream, evs...); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("append of a 9 MB commit to a server with an 8 MB max payload: %v, want ErrInvalidEvent", err)
	}
	if _, err := store.ReadStream(ctx, "order-big", 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read after a failed append: %v, want ErrStreamNotFound", err)
	}
}
