package grpctransport

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/eventshop/eventshop/gen/go/eventshop/common/v1"
	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
	"github.com/eventshop/eventshop/services/order/domain"
)

func addressFromProto(a *commonv1.Address) domain.Address {
	return domain.Address{
		Name:        a.GetName(),
		Street:      a.GetStreet(),
		City:        a.GetCity(),
		PostalCode:  a.GetPostalCode(),
		CountryCode: a.GetCountryCode(),
	}
}

// orderToProto renders the aggregate. It has no timestamps: the aggregate does not
// keep them; callers that know them (from the events) set them.
func orderToProto(o *domain.Order) *orderv1.Order {
	a := o.Address()
	out := &orderv1.Order{
		Id:           o.ID(),
		UserId:       o.UserID(),
		Status:       orderv1.OrderStatus(o.State()),
		Subtotal:     o.Subtotal().Proto(),
		ShippingCost: o.ShippingCost().Proto(),
		Total:        o.Total().Proto(),
		ShippingAddress: &commonv1.Address{
			Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, CountryCode: a.CountryCode,
		},
		PaymentId:    o.PaymentID(),
		ShipmentId:   o.ShipmentID(),
		TrackingId:   o.TrackingID(),
		CancelReason: o.CancelReason(),
		Version:      o.Version(),
	}
	for _, l := range o.Lines() {
		total, _ := l.Total() // the order was accepted, so its line totals fit
		out.Lines = append(out.Lines, &orderv1.OrderLine{
			ProductId: l.ProductID,
			Name:      l.Name,
			Quantity:  l.Quantity,
			UnitPrice: l.UnitPrice.Proto(),
			LineTotal: total.Proto(),
		})
	}
	return out
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
