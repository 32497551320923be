package eventstore_test

import (
	"time"

	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
)

func TestMemoryConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return eventstore.NewMemory() })
}

func TestMemoryClockStampsEvents(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	m := eventstore.NewMemory(eventstore.WithClock(func() time.Time { return at }))
	if _, err := m.Append(t.Context(), "saga-1", eventstore.NoStream, eventstore.Event{ID: "1", Type: "Started"}); err != nil {
		t.Fatal(err)
	}
	evs, err := m.ReadStream(t.Context(), "saga-1", 1)
	if err != nil || len(evs) != 1 || !evs[0].Time.Equal(at) {
		t.Fatalf("read %v, %v; want one event at %v", evs, err, at)
	}
}
