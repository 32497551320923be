module github.com/eventshop/eventshop/deploy

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
	github.com/blang/semver/v4 v4.0.0 // indirect
	github.com/fluxcd/flagger v1.36.1 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
	istio.io/api v1.31.1 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	sigs.k8s.io/kustomize/api v0.21.2 // indirect
	sigs.k8s.io/kustomize/kyaml v0.21.2 // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
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
