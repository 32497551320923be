package gateway

import (
	"testing"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
)

func TestFormatMoney(t *testing.T) {
	for _, tt := range []struct {
		units int64
		code  string
		want  string
	}{
		{179800, "USD", "$1,798.00"},
		{5, "USD", "$0.05"},
		{123456789, "USD", "$1,234,567.89"},
		{-1250, "EUR", "-€12.50"},
		{999, "GBP", "£9.99"},
		{1200, "JPY", "¥1,200"},
		{150000, "XTS", "1,500.00 XTS"},
		{150000, "QQQ", "1,500.00 QQQ"},
	} {
		if got := formatMoney(&commonv1.Money{MinorUnits: tt.units, CurrencyCode: tt.code}); got != tt.want {
			t.Errorf("formatMoney(%d %s) = %q, want %q", tt.units, tt.code, got, tt.want)
		}
	}
	if got := formatMoney(nil); got != "—" {
		t.Errorf("formatMoney(nil) = %q", got)
	}
}

func TestEventLabel(t *testing.T) {
	for typ, want := range map[string]string{
		"eventshop.order.v1.OrderPlaced":            "Order placed",
		"eventshop.order.v1.OrderPaymentAuthorized": "Payment authorized",
		"eventshop.saga.v1.StepSucceeded":           "Step succeeded",
		"eventshop.saga.v1.SagaStarted":             "Saga started",
		"Order":                                     "Order",
		"":                                          "",
	} {
		if got := eventLabel(typ); got != want {
			t.Errorf("eventLabel(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestShortIDs(t *testing.T) {
	got := string(shortIDs(`Payment 01a24c9b-5011-761e-8723-12794695e6e1 authorized <b>for</b> 5 USD`))
	want := `Payment <code class="id" title="01a24c9b-5011-761e-8723-12794695e6e1">…12794695e6e1</code>` +
		`<button type="button" class="copy" data-copy="01a24c9b-5011-761e-8723-12794695e6e1" aria-label="Copy 01a24c9b-5011-761e-8723-12794695e6e1">Copy</button>` +
		` authorized &lt;b&gt;for&lt;/b&gt; 5 USD`
	if got != want {
		t.Fatalf("shortIDs:\n got %s\nwant %s", got, want)
	}
	if got := string(shortIDs("no ids <here>")); got != "no ids &lt;here&gt;" {
		t.Fatalf("shortIDs without ids: %s", got)
	}
}
