package app_test

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/services/order/app"
	"github.com/eventshop/eventshop/services/order/domain"
)

// The test pretends OrderPlaced once had another shape, "v1": its three amounts were
// plain minor-unit integers beside one currency string, in fields 20-23:
//
//	int64  subtotal_minor = 20;
//	int64  shipping_minor = 21;
//	int64  total_minor    = 22;
//	string currency       = 23;
//
// and that v2 (today's message) moved them into the Money fields 4, 5 and 6. The v1
// payload is written with protowire, since no committed proto describes it.
const (
	v1SubtotalMinor = 20
	v1ShippingMinor = 21
	v1TotalMinor    = 22
	v1Currency      = 23
)

var placedType = domain.EventType(&orderv1.OrderPlaced{})

// encodePlacedV1 writes an OrderPlaced in the v1 shape.
func encodePlacedV1(t *testing.T, p domain.PlaceParams, subtotal, shipping, total int64, currency string) []byte {
	t.Helper()
	// Fields that did not move are encoded by today's message.
	base, err := proto.Marshal(&orderv1.OrderPlaced{
		OrderId: p.OrderID,
		UserId:  p.UserID,
		Lines: func() (ls []*orderv1.OrderLine) {
			for _, l := range p.Lines {
				ls = append(ls, &orderv1.OrderLine{
					ProductId: l.ProductID, Name: l.Name, Quantity: l.Quantity,
					UnitPrice: &commonv1.Money{CurrencyCode: currency, MinorUnits: l.UnitPrice.Units},
					LineTotal: &commonv1.Money{CurrencyCode: currency, MinorUnits: l.UnitPrice.Units * int64(l.Quantity)},
				})
			}
			return ls
		}(),
		ShippingAddress: &commonv1.Address{Name: p.Address.Name, Street: p.Address.Street, City: p.Address.City, PostalCode: p.Address.PostalCode, CountryCode: p.Address.CountryCode},
		PaymentToken:    p.PaymentToken,
		IdempotencyKey:  p.IdempotencyKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := base
	b = protowire.AppendTag(b, v1SubtotalMinor, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(subtotal))
	b = protowire.AppendTag(b, v1ShippingMinor, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(shipping))
	b = protowire.AppendTag(b, v1TotalMinor, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(total))
	b = protowire.AppendTag(b, v1Currency, protowire.BytesType)
	b = protowire.AppendString(b, currency)
	return b
}

// upcastPlacedV1 is the upcaster a real schema change of this kind would register.
func upcastPlacedV1(data []byte) ([]byte, error) {
	var ev orderv1.OrderPlaced
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	var (
		subtotal, shipping, total int64
		currency                  string
	)
	unknown := ev.ProtoReflect().GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		unknown = unknown[n:]
		var v uint64
		var s string
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(unknown)
		case protowire.BytesType:
			s, n = protowire.ConsumeString(unknown)
		default:
			n = protowire.ConsumeFieldValue(num, typ, unknown)
		}
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		unknown = unknown[n:]
		switch num {
		case v1SubtotalMinor:
			subtotal = int64(v)
		case v1ShippingMinor:
			shipping = int64(v)
		case v1TotalMinor:
			total = int64(v)
		case v1Currency:
			currency = s
		}
	}
	if currency == "" {
		return nil, fmt.Errorf("v1 OrderPlaced without currency")
	}
	ev.ProtoReflect().SetUnknown(nil)
	ev.Subtotal = &commonv1.Money{CurrencyCode: currency, MinorUnits: subtotal}
	ev.ShippingCost = &commonv1.Money{CurrencyCode: currency, MinorUnits: shipping}
	ev.Total = &commonv1.Money{CurrencyCode: currency, MinorUnits: total}
	return proto.Marshal(&ev)
}

func TestLoadUpcastsV1OrderPlaced(t *testing.T) {
	store, snaps, _ := jetStreamEnv(t)
	ctx := t.Context()
	codec := app.NewCodec()
	codec.Register(placedType, 1, upcastPlacedV1)
	if v := codec.CurrentVersion(placedType); v != 2 {
		t.Fatalf("current version = %d, want 2", v)
	}
	repo := app.NewRepository(store, app.WithCodec(codec), app.WithSnapshots(snaps, 100))

	id := newID(t)
	p := placeParams(id, "alice") // 89900 + 2*14900 = 119700, shipping 499
	v1 := encodePlacedV1(t, p, 119700, 499, 120199, "USD")
	_, err := store.Append(ctx, app.StreamName(id), eventstore.NoStream, eventstore.Event{
		ID: newID(t), Type: placedType, Data: v1,
		Metadata: map[string]string{app.MetaSchemaVersion: "1"},
	})
	if err != nil {
		t.Fatal(err)
	}

	// The old event loads, and new decisions are taken on it and appended as v2.
	o, err := repo.Update(ctx, id, func(o *domain.Order) ([]domain.Event, error) {
		return o.RecordPaymentAuthorized("pay-1", o.Total())
	})
	if err != nil {
		t.Fatalf("update on a v1 history: %v", err)
	}
	if o.Subtotal() != usd(119700) || o.ShippingCost() != usd(499) || o.Total() != usd(120199) {
		t.Errorf("amounts = %s + %s = %s", o.Subtotal(), o.ShippingCost(), o.Total())
	}
	if o.State() != domain.StatePaymentAuthorized || o.UserID() != "alice" || len(o.Lines()) != 2 {
		t.Errorf("loaded %+v", o.Snapshot())
	}
	if _, err := repo.Load(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Without the upcaster the v1 payload lacks its amounts and cannot be folded.
	plain := app.NewRepository(store)
	if _, err := plain.Load(ctx, id); !errors.Is(err, domain.ErrInvalidEvent) {
		t.Errorf("load without upcaster = %v, want ErrInvalidEvent", err)
	}

	// Events written now carry the current version.
	fresh := newID(t)
	if _, err := repo.Update(ctx, fresh, func(o *domain.Order) ([]domain.Event, error) { return o.Place(placeParams(fresh, "bob")) }); err != nil {
		t.Fatal(err)
	}
	stored, err := store.ReadStream(ctx, app.StreamName(fresh), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := stored[0].Metadata[app.MetaSchemaVersion]; got != "2" || stored[0].Type != placedType {
		t.Errorf("stored %s with schema-version %q, want %s v2", stored[0].Type, got, placedType)
	}
}

func TestDecodeRejectsUnknownSchemaVersions(t *testing.T) {
	codec := app.NewCodec()
	data, err := proto.Marshal(&orderv1.OrderCompleted{OrderId: "o"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2", "0", "x"} {
		_, err := codec.Decode(eventstore.Event{Type: domain.EventType(&orderv1.OrderCompleted{}), Data: data, Metadata: map[string]string{app.MetaSchemaVersion: v}})
		if !errors.Is(err, app.ErrUnknownSchema) {
			t.Errorf("schema %q: %v, want ErrUnknownSchema", v, err)
		}
	}
	// No version at all is version 1, the first one.
	if _, err := codec.Decode(eventstore.Event{Type: domain.EventType(&orderv1.OrderCompleted{}), Data: data}); err != nil {
		t.Errorf("unversioned event: %v", err)
	}
	if _, err := codec.Decode(eventstore.Event{Type: "eventshop.order.v1.Nope", Data: data}); !errors.Is(err, domain.ErrInvalidEvent) {
		t.Errorf("unknown type: %v, want ErrInvalidEvent", err)
	}
}
