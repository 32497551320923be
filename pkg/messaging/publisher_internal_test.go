package messaging

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed/natstest"
	"github.com/eventshop/eventshop/pkg/resilience"
)

func TestDefaultPublisherIsResilient(t *testing.T) {
	_, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := New(js, "order").pub.(*resilience.Publisher); !ok {
		t.Errorf("default publisher is %T, want *resilience.Publisher", New(js, "order").pub)
	}
}
