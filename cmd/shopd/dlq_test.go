package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/messaging"
	"github.com/eventshop/eventshop/pkg/poll"
)

// A command the payment service cannot process goes to the dead-letter stream;
// once the card network works again, `shopd dlq replay` sends it again and the
// order's saga completes, with the books balanced.
func TestDeadLetteredCommandReplayedCompletesTheSaga(t *testing.T) {
	flaky := &flakyProvider{}
	flaky.failures.Store(1 << 20) // down until the test says otherwise
	s := startSagaShop(t, func(m *Main, _ *[]string) { m.PaymentProvider = flaky },
		withFlags("-payment-max-deliver", "1"))
	id := s.place("tok_visa", 1)

	dls := messaging.NewDeadLetters(s.operatorJetStream())
	var (
		list []messaging.DeadLetter
		err  error
	)
	poll.Until(t, "the authorization dead-lettered", func() bool {
		list, err = dls.List(context.Background(), 0)
		return err == nil && len(list) == 1
	})
	dl := list[0]
	if dl.Subject != "cmd.payment.authorize" || dl.Consumer != "payment-commands" || !strings.Contains(dl.Error, "network hiccup") {
		t.Fatalf("dead letter = %+v", dl)
	}

	dlq := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		all := append([]string{"dlq", "-nats-url", s.NATSClientURL(), "-nats-identities", filepath.Join(s.dataDir, "nats-identities")}, args...)
		if code := run(context.Background(), all, &out, &errb); code != 0 {
			t.Fatalf("shopd %v = %d: %s", all, code, errb.String())
		}
		return out.String()
	}
	if out := dlq("list"); !strings.Contains(out, dl.ID) || !strings.Contains(out, "1 dead letters") {
		t.Fatalf("dlq list:\n%s", out)
	}
	if out := dlq("show", strconv.FormatUint(dl.Seq, 10)); !strings.Contains(out, "eventshop.payment.v1.AuthorizePayment") || !strings.Contains(out, id) {
		t.Fatalf("dlq show:\n%s", out)
	}

	flaky.failures.Store(0) // the card network is back
	dlq("replay", strconv.FormatUint(dl.Seq, 10))
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	if out := dlq("list"); !strings.Contains(out, "0 dead letters") {
		t.Fatalf("dlq list after the replay:\n%s", out)
	}
	s.audit()
}
