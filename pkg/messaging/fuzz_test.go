package messaging

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The header block of a message comes from the bus: any bytes. Parsing it (the NATS
// client's decoder, then the CloudEvents attributes) never panics, and what it reads
// is what the headers say.
func FuzzCloudEventsHeaders(f *testing.F) {
	f.Add([]byte("NATS/1.0\r\nce-id: 1\r\nce-type: eventshop.payment.v1.AuthorizePayment\r\nce-time: 2026-12-06T01:02:03.456Z\r\nce-causationid: c\r\n\r\n"))
	f.Add([]byte("NATS/1.0 503\r\n\r\n"))
	f.Add([]byte("NATS/1.0\r\nce-time: not a time\r\nce-id:\r\n\r\n"))
	f.Add([]byte("NATS/1.0\r\n\xff\xfe: \x00\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := nats.DecodeHeadersMsg(raw)
		if err != nil {
			return
		}
		m := attributes(h, "cmd.payment.authorize")
		if m.ID != h.Get(HeaderID) || m.CausationID != h.Get(HeaderCausationID) || m.Attempt != 1 {
			t.Fatalf("attributes %+v do not match headers %v", m, h)
		}
		if want, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime)); err == nil && !m.Time.Equal(want) {
			t.Fatalf("ce-time %q read as %v", h.Get(HeaderTime), m.Time)
		}
	})
}
