module github.com/eventshop/eventshop/cmd

go 1.26.0

require (
	github.com/eventshop/eventshop/gateway v0.0.0
	github.com/eventshop/eventshop/gen/go v0.0.0
	github.com/eventshop/eventshop/pkg v0.0.0
	github.com/eventshop/eventshop/services/cart v0.0.0
	github.com/eventshop/eventshop/services/catalog v0.0.0
	github.com/eventshop/eventshop/services/inventory v0.0.0
	github.com/eventshop/eventshop/services/order v0.0.0
	github.com/eventshop/eventshop/services/payment v0.0.0
	github.com/eventshop/eventshop/services/shipping v0.0.0
)

replace github.com/eventshop/eventshop/gen/go => ../gen/go

replace github.com/eventshop/eventshop/pkg => ../pkg

replace github.com/eventshop/eventshop/services/catalog => ../services/catalog

replace github.com/eventshop/eventshop/services/cart => ../services/cart

replace github.com/eventshop/eventshop/services/order => ../services/order

replace github.com/eventshop/eventshop/services/payment => ../services/payment

replace github.com/eventshop/eventshop/services/inventory => ../services/inventory

replace github.com/eventshop/eventshop/services/shipping => ../services/shipping

replace github.com/eventshop/eventshop/gateway => ../gateway
