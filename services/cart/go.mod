module github.com/eventshop/eventshop/services/cart

go 1.26.0

require (
	github.com/eventshop/eventshop/gen/go v0.0.0
	github.com/eventshop/eventshop/pkg v0.0.0
)

replace github.com/eventshop/eventshop/gen/go => ../../gen/go

replace github.com/eventshop/eventshop/pkg => ../../pkg

require github.com/eventshop/eventshop/services/catalog v0.0.0

replace github.com/eventshop/eventshop/services/catalog => ../catalog
