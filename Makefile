# eventshop — one command to run, one to test.
SHELL := /bin/bash
GOBIN ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Every module of the workspace, as package patterns. A bare `go test ./...` at the
# root does not work here: the root is no module, so each module is named explicitly.
MODULE_DIRS := $(shell go list -m -f '{{.Dir}}')
PKGS := $(shell go list -m -f '{{.Path}}/...')
GO_DIRS := $(shell go list -m -f '{{.Dir}}' | sed 's|^$(CURDIR)/||')

GOTEST_FLAGS ?= -count=1 -timeout 20m
BENCH ?= .
BENCHTIME ?= 1s

.PHONY: all help run test race lint fmt vet staticcheck buf-lint generate check-generate tools vendor-protos bench bench-saga bench-saga-sync bench-steady bench-read tidy check-tidy clean fuzz

all: lint test

## help: list the targets with what each does.
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); split($$0, p, ": "); printf "  %-16s %s\n", p[1], substr($$0, length(p[1]) + 3); next } /^## / { sub(/^## /, ""); printf "  %-16s %s\n", "", $$0 }' $(MAKEFILE_LIST)

## run: start every service in one process (embedded NATS, dev OIDC issuer).
run:
	go run ./cmd/shopd

## test: test every module of the workspace; ends with each skipped test and why.
test: tools
	gotestsum --format standard-quiet -- $(GOTEST_FLAGS) $(PKGS)
	@scripts/fuzz.sh

## fuzz: run every fuzz target for FUZZTIME each (default 1m; make test runs 5,000 inputs each).
fuzz:
	FUZZTIME=$${FUZZTIME:-1m} scripts/fuzz.sh

## race: the race detector over the shared packages and the services (CI runs it).
RACE_PKGS := $(foreach p,$(PKGS),$(if $(or $(findstring /eventshop/pkg/,$p),$(findstring /eventshop/services/,$p)),$p))
race:
	go test $(GOTEST_FLAGS) -race $(RACE_PKGS)

## lint: buf lint, gofmt, go vet and staticcheck on every module.
lint: buf-lint fmt vet staticcheck

buf-lint: tools
	buf lint

fmt:
	@out=$$(gofmt -l $(GO_DIRS)); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet $(PKGS)

staticcheck: tools
	@for d in $(GO_DIRS); do case $$d in gen/*) continue;; esac; (cd $$d && staticcheck ./...) || exit 1; done

## generate: regenerate gen/go and the OpenAPI document from proto/.
generate: tools
	rm -rf gen/go/eventshop gateway/openapi/*.json
	buf generate

## check-generate: fail if generated code is out of date.
check-generate: generate
	@if [[ -n "$$(git status --porcelain -- gen/go gateway/openapi)" ]]; then \
		echo "generated code is out of date; run 'make generate' and commit:"; \
		git status --porcelain -- gen/go gateway/openapi; exit 1; fi

## tools: install the pinned code generators and grpcurl.
tools:
	@scripts/tools.sh

## vendor-protos: re-vendor googleapis and protovalidate protos into third_party/.
vendor-protos:
	scripts/vendor-protos.sh

## bench: run every benchmark once (figures go into the READMEs).
bench:
	go test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) $(PKGS)

## bench-saga: the order pipeline end to end (BenchmarkSagaEmbedded: 1, 16, 64, 256 buyers, each on a fresh in-process shop).
SAGA_ORDERS ?= 2000
bench-saga:
	cd cmd && go test -run '^$$' -bench 'BenchmarkSagaEmbedded' -benchtime $(SAGA_ORDERS)x -timeout 60m ./shopd

## bench-saga-sync: bench-saga with JetStream fsyncing every write (sync_interval: always).
bench-saga-sync:
	cd cmd && SHOP_BENCH_NATS_SYNC=always go test -run '^$$' -bench 'BenchmarkSagaEmbedded' -benchtime $(SAGA_ORDERS)x -timeout 60m ./shopd

## bench-steady: the highest steady rate through the gateway with PlaceOrder → final p99 <= 250 ms (scripts/max-rate.sh).
bench-steady:
	scripts/max-rate.sh

## bench-read: the read path: GetOrder over gRPC with a real bearer token against the
## in-process shop, sent from a second process, at a fixed 2,000 req/s (open model;
## achieved req/s, p50, p99), then the highest rate it sustains (max-req/s). About a
## minute; loopback only.
bench-read:
	go test -run '^$$' -bench '^BenchmarkReadPath$$' -benchtime 1x -timeout 10m ./cmd/shopd

## tidy: tidy every module (each go.mod replaces its sibling modules, so this works offline of them).
tidy:
	@for d in $(MODULE_DIRS); do (cd $$d && GOWORK=off go mod tidy) || exit 1; done

## check-tidy: fail if make tidy would change a go.mod or go.sum.
check-tidy: tidy
	@if [[ -n "$$(git status --porcelain -- '*go.mod' '*go.sum')" ]]; then \
		echo "go.mod/go.sum not tidy; run 'make tidy' and commit:"; \
		git status --porcelain -- '*go.mod' '*go.sum'; exit 1; fi

clean:
	rm -rf data bin

# --- Tracing with a local Jaeger -------------------------------------------------------
JAEGER_OTLP ?= 127.0.0.1:4317
JAEGER_TEST_PKGS ?= github.com/eventshop/eventshop/pkg/telemetry/... github.com/eventshop/eventshop/cmd/...

.PHONY: jaeger run-traced test-jaeger

## jaeger: build Jaeger v2 once (cached in GOBIN) and run it in the foreground with
## in-memory storage: OTLP on 127.0.0.1:4317/4318, query API on 127.0.0.1:16686.
jaeger:
	scripts/jaeger.sh run

## run-traced: run shopd exporting every span to the Jaeger of `make jaeger`.
run-traced:
	SHOP_OTLP_ENDPOINT=$(JAEGER_OTLP) SHOP_TRACE_SAMPLE=1 go run ./cmd/shopd

## test-jaeger: start Jaeger in the background, run the tests that read traces back
## from its query API (they skip without SHOP_TEST_JAEGER_URL), stop Jaeger.
test-jaeger:
	@url=$$(scripts/jaeger.sh start) || exit 1; \
	SHOP_TEST_JAEGER_URL=$$url SHOP_OTLP_ENDPOINT=$(JAEGER_OTLP) \
		go test $(GOTEST_FLAGS) -run 'Jaeger' $(JAEGER_TEST_PKGS); \
	rc=$$?; scripts/jaeger.sh stop; exit $$rc

## images: build one container image per binary with deploy/Dockerfile (needs a Docker engine).
IMAGE_REPO ?= eventshop
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE_BINARIES := services/catalog/cmd/catalog services/cart/cmd/cart services/order/cmd/order \
	services/payment/cmd/payment services/inventory/cmd/inventory services/shipping/cmd/shipping \
	gateway/cmd/gateway

.PHONY: images istio-validate
images:
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine reachable ('docker info' failed); build the images where one runs" >&2; exit 1; }
	@for b in $(IMAGE_BINARIES); do \
		img=$(IMAGE_REPO)/$$(basename $$b):$(IMAGE_TAG); echo "== $$img"; \
		docker build -f deploy/Dockerfile --build-arg BINARY=$$b --build-arg VERSION=$(IMAGE_TAG) -t $$img . || exit 1; \
	done

## istio-validate: istioctl validate and analyze (offline) on the rendered overlays; builds istioctl on first use.
ISTIOCTL ?= $(GOBIN)/istioctl
ISTIO_RENDER := bin/istio-render
istio-validate:
	@test -x $(ISTIOCTL) || { echo "building istioctl (several minutes)"; go install istio.io/istio/istioctl/cmd/istioctl@latest; }
	@rm -rf $(ISTIO_RENDER)
	@go run ./deploy/cmd/render -out $(ISTIO_RENDER) deploy/k8s/overlays/dev deploy/k8s/overlays/prod \
		deploy/k8s/overlays/prod-flagger istio/base istio/canary-10 istio/canary-50 istio/promote istio/flagger >/dev/null
	@for f in $(ISTIO_RENDER)/*.yaml; do echo "== istioctl validate $$f"; $(ISTIOCTL) validate -f $$f || exit 1; done
	@for k in dev prod; do for s in base canary-10 canary-50 promote; do \
		echo "== istioctl analyze $$k + $$s"; \
		$(ISTIOCTL) analyze --use-kube=false -A $(ISTIO_RENDER)/deploy_k8s_overlays_$$k.yaml $(ISTIO_RENDER)/istio_$$s.yaml || exit 1; \
	done; done
	@echo "== istioctl analyze prod-flagger + flagger"
	@$(ISTIOCTL) analyze --use-kube=false -A $(ISTIO_RENDER)/deploy_k8s_overlays_prod-flagger.yaml $(ISTIO_RENDER)/istio_flagger.yaml

# --- Load, flash sale and chaos --------------------------------------------------------
LOADGEN_FLAGS ?= -scenario chaos -orders 2000 -users 16 -chaos-rounds 2 -chaos-every 3s

.PHONY: loadtest run-split run-cluster test-docs

## loadtest: the long load run (default: chaos, 2,000 orders, every service restarted
## twice) against a shop started in-process; exits non-zero on an unfinished saga or a
## broken invariant. Override LOADGEN_FLAGS, e.g. LOADGEN_FLAGS="-scenario flash-sale".
loadtest:
	go run ./cmd/loadgen $(LOADGEN_FLAGS)

## run-split: every service as its own process on loopback against one NATS and
## PostgreSQL, the way Kubernetes runs them (see scripts/run-split.sh).
run-split:
	scripts/run-split.sh

## test-docs: run the commands README.md and BENCHMARKS.md give (tagged doc-test),
## shortened, in a scratch copy of the repository (see cmd/internal/doccmds).
test-docs:
	scripts/tools.sh
	cd cmd && PATH="$(GOBIN):$$PATH" go run ./internal/doccmds -root ..

## run-cluster: run-split on a 3-node NATS cluster (routes on loopback, streams and buckets at three replicas).
run-cluster:
	SPLIT_NATS_NODES=3 scripts/run-split.sh
