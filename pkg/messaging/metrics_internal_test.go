package messaging

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Each key's attribute set holds the conventions' attributes, the consumer and the
// outcome only when set; sets are built once per key, and no more than
// maxMetricSets are kept however many subjects are sent to.
func TestMetricSetsAreTheKeysAndBounded(t *testing.T) {
	attrs := func(k metricKey) map[attribute.Key]string {
		cfg := metric.NewRecordConfig([]metric.RecordOption{metricSet(k)})
		out := map[attribute.Key]string{}
		set := cfg.Attributes()
		for _, kv := range set.ToSlice() {
			out[kv.Key] = kv.Value.String()
		}
		return out
	}
	got := attrs(metricKey{operation: "process", destination: "cmd.payment.authorize", group: "payment-commands", outcome: outcomeHandlerError})
	want := map[attribute.Key]string{
		"messaging.system": "nats", "messaging.operation.name": "process", "messaging.destination.name": "cmd.payment.authorize",
		"messaging.consumer.group.name": "payment-commands", "error.type": outcomeHandlerError,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("process set %v, want %v", got, want)
	}
	got = attrs(metricKey{operation: "send", destination: "evt.payment.authorized"})
	want = map[attribute.Key]string{"messaging.system": "nats", "messaging.operation.name": "send", "messaging.destination.name": "evt.payment.authorized"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("send set %v, want %v", got, want)
	}

	for i := range maxMetricSets + 100 {
		k := metricKey{operation: "send", destination: fmt.Sprintf("evt.flood.%d", i)}
		if d := attrs(k)["messaging.destination.name"]; d != k.destination {
			t.Fatalf("key %d: destination %q", i, d)
		}
	}
	if n := metricSetsLen.Load(); n > maxMetricSets {
		t.Fatalf("%d sets kept, the bound is %d", n, maxMetricSets)
	}
}
