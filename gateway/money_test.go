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
