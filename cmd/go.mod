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

require (
	codeberg.org/go-fonts/liberation v0.5.0 // indirect
	codeberg.org/go-latex/latex v0.2.0 // indirect
	codeberg.org/go-pdf/fpdf v0.11.1 // indirect
	git.sr.ht/~sbinet/gg v0.7.0 // indirect
	github.com/ajstarks/svgo v0.0.0-20211024235047-1546f124cd8b // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang/freetype v0.0.0-20170609003504-e2365dfdc4a0 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/sdk v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/image v0.30.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	gonum.org/v1/plot v0.17.0 // indirect
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
