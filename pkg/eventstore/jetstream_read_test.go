package eventstore_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
)

// A stream longer than one batch direct get is read in several, without a gap or a
// repeat, and a read from a later version returns only the tail.
func TestJetStreamReadsLongStreamsInBatches(t *testing.T) {
	ctx := t.Context()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.NewJetStream(js, eventstore.WithReadBatchSize(2))
	v := eventstore.NoStream
	for i := range 5 {
		evs := []eventstore.Event{{ID: fmt.Sprintf("e%d", i), Type: "T", Data: []byte{byte(i)}}}
		if i == 2 {
			evs = append(evs, eventstore.Event{ID: "e2b", Type: "T", Data: []byte{2, 2}})
		}
		if v, err = store.Append(ctx, "long-1", v, evs...); err != nil {
			t.Fatal(err)
		}
	}
	all, err := store.ReadStream(ctx, "long-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("read %d events, want 6", len(all))
	}
	for i, e := range all {
		if e.Version != eventstore.Version(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
	tail, err := store.ReadStream(ctx, "long-1", 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 3 || tail[0].ID != "e2b" || tail[2].ID != "e4" {
		t.Fatalf("tail from version 4 = %v", tail)
	}
	if got, err := store.ReadStream(ctx, "long-1", 7); err != nil || len(got) != 0 {
		t.Fatalf("read past the end = %v, %v; want nothing", got, err)
	}
	if _, err := store.ReadStream(ctx, "long-2", 1); err == nil {
		t.Fatal("read of a stream without events succeeded")
	}
}

// A category stream created before reads used direct gets is opened with them
// allowed, and read.
func TestJetStreamAllowsDirectGetOnAnOlderStream(t *testing.T) {
	ctx := t.Context()
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ES_old", Subjects: []string{"old.events.>"}}); err != nil {
		t.Fatal(err)
	}
	writer := eventstore.NewJetStream(js)
	if _, err := writer.Append(ctx, "old-1", eventstore.NoStream, eventstore.Event{ID: "a", Type: "T"}); err != nil {
		t.Fatal(err)
	}
	reader := eventstore.NewJetStream(js)
	evs, err := reader.ReadStream(ctx, "old-1", 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadStream = %v, %v", evs, err)
	}
	info, err := js.Stream(ctx, "ES_old")
	if err != nil {
		t.Fatal(err)
	}
	if !info.CachedInfo().Config.AllowDirect {
		t.Fatal("stream still refuses direct gets")
	}
}

// Against a nats-server older than 2.11 the store refuses at once, naming the
// version, and creates nothing.
func TestJetStreamRefusesAnOldServer(t *testing.T) {
	url := os.Getenv("SHOP_TEST_OLD_NATS_URL")
	if url == "" {
		t.Skip("set SHOP_TEST_OLD_NATS_URL to a nats-server older than 2.11 with JetStream (e.g. Debian's 2.9 at nats://127.0.0.1:4222) to test the refusal")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "ES_OLD" + strings.ReplaceAll(t.Name(), "/", "_") + "_"
	store := eventstore.NewJetStream(js, eventstore.WithStreamPrefix(prefix))
	err = store.EnsureCategory(t.Context(), "order")
	if !errors.Is(err, eventstore.ErrServerTooOld) || !strings.Contains(err.Error(), nc.ConnectedServerVersion()) {
		t.Fatalf("EnsureCategory on %s = %v, want ErrServerTooOld naming the version", nc.ConnectedServerVersion(), err)
	}
	if _, err := store.Append(t.Context(), "order-1", eventstore.NoStream, eventstore.Event{ID: "x", Type: "T"}); !errors.Is(err, eventstore.ErrServerTooOld) {
		t.Fatalf("Append = %v, want ErrServerTooOld", err)
	}
	if _, err := js.Stream(t.Context(), prefix+"order"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream after the refusal: %v, want none", err)
	}
}
