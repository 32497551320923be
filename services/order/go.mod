module github.com/eventshop/eventshop/services/order

go 1.26.0

require (
	github.com/eventshop/eventshop/gen/go v0.0.0
	github.com/eventshop/eventshop/pkg v0.0.0
)

require google.golang.org/protobuf v1.36.12 // indirect

replace github.com/eventshop/eventshop/gen/go => ../../gen/go

replace github.com/eventshop/eventshop/pkg => ../../pkg
