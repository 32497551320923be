package saga_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/saga"
	"github.com/eventshop/eventshop/pkg/saga/sagatest"
)

// BenchmarkHappyPath measures the engine's own cost for one four-step saga, start to
// completion, over the in-memory store: five appends, four sends, four replies.
func BenchmarkHappyPath(b *testing.B) {
	ctx := context.Background()
	tr := &sagatest.Transport{}
	o, err := saga.New(testDefinition(4, 1), eventstore.NewMemory(), tr, saga.WithClock(sagatest.NewClock(epoch)), saga.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprint("b", i)
		i++
		if err := o.Start(ctx, id, newData(id)); err != nil {
			b.Fatal(err)
		}
		for range 4 {
			c := tr.Take()[0]
			if err := o.HandleReply(ctx, saga.Reply{SagaID: id, ID: c.ID + "/r", CausationID: c.ID, Msg: wrapperspb.Int64(1)}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
