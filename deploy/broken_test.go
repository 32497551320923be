package deploy

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/eventshop/eventshop/deploy/manifest"
)

// Each fixture under testdata/broken breaks one thing on purpose; the check that
// guards it must fail, naming the fault.
func TestBrokenFixturesFail(t *testing.T) {
	bins := binaries(t)
	tests := []struct {
		fixture string
		// k8s, istio or flagger: which side the fixture replaces (the other is the
		// real one: prod, canary-10, or prod-flagger for the flagger mesh side).
		side  string
		check string
		want  string
	}{
		{"host", "istio", "hosts", `route destination "orders.eventshop.svc.cluster.local" names no Service`},
		{"subset", "istio", "subsets", `subset "v2" selects`},
		{"weights", "istio", "weights", "weights sum to 110, want 100"},
		{"principal", "istio", "principals", `principal "cluster.local/ns/eventshop/sa/ordr" names no ServiceAccount`},
		{"extra-caller", "istio", "callers", "AuthorizationPolicy cart: allows cluster.local/ns/eventshop/sa/order, which never calls Service cart"},
		{"missing-caller", "istio", "callers", "AuthorizationPolicy shipping: cluster.local/ns/eventshop/sa/order calls Service shipping but is not allowed"},
		{"no-probe", "k8s", "workloads", "Deployment catalog-v1 container catalog: no liveness probe"},
		{"no-limits", "k8s", "workloads", "Deployment cart-v1 container cart: no memory limit"},
		{"root", "k8s", "workloads", "Deployment payment-v1 container payment: not runAsNonRoot"},
		{"no-hpa", "k8s", "workloads", "Deployment shipping-v2: no HorizontalPodAutoscaler scales it"},
		{"unknown-env", "k8s", "binaries", "env SHOP_NATS_SERVERS sets no flag of the binary"},
		{"unknown-config-key", "k8s", "binaries", "key SHOP_GRPC_PORT sets no flag of the binary"},
		{"loopback", "k8s", "binaries", "listens on 127.0.0.1:9405"},
		{"probe-port", "k8s", "binaries", "readiness probe checks port 9406, the binary serves health on 9403"},
		{"container-port", "k8s", "binaries", "no containerPort 9401"},
		{"port-name", "k8s", "binaries", `Service catalog port 9401 is named "tcp"`},
		{"health-path", "k8s", "binaries", `liveness probe path "/health" is none of`},
		{"canary-template", "flagger", "canaries", "metric grpc-latency-p99 uses template eventshop/order-grpc-latency-p90, which does not exist"},
		{"canary-port", "flagger", "canaries", "port 9403 (target port http) is no container port of order-v1"},
		{"bad-addr", "k8s", "binaries", "-catalog-addr=catalogue:9401 names no Service port"},
		{"metrics-port", "k8s", "binaries", "-metrics-addr=0.0.0.0:9465 listens on no port of the container"},
		{"nats-no-tls", "k8s", "nats", "client connections without TLS"},
		{"nats-no-tls", "k8s", "nats", "admits any client: no users included from a Secret"},
		{"nats-no-policy", "k8s", "nats", "no NetworkPolicy limits who reaches the NATS pods"},
		{"nats-no-identity", "k8s", "nats", "Deployment payment-v1 container payment: SHOP_NATS_NKEY is not a file from a Secret"},
		{"nats-monitor-service", "k8s", "nats", "Service nats exposes the NATS monitor port"},
		{"nats-plain-url", "k8s", "nats", `connects to NATS at "nats://nats.eventshop-infra.svc.cluster.local:4222", not tls://`},
	}
	realK8s, realIstio := build(t, "k8s/overlays/prod"), build(t, "../istio/canary-10")
	flaggerK8s := build(t, "k8s/overlays/prod-flagger")
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.check, func(t *testing.T) {
			broken := build(t, "testdata/broken/"+tt.fixture)
			var s *manifest.Set
			switch tt.side {
			case "k8s":
				s = broken.Merge(realIstio)
			case "flagger":
				s = flaggerK8s.Merge(broken)
			default:
				s = realK8s.Merge(broken)
			}
			err := checkAll(s, bins)[tt.check]
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check %s: got %v, want an error containing %q", tt.check, err, tt.want)
			}
		})
	}
}

func TestBrokenFilesFailToDecode(t *testing.T) {
	tests := []struct{ file, want string }{
		{"unknown-field-deployment.yaml", `unknown field "replica"`},
		{"unknown-field-virtualservice.yaml", "retrys"},
		{"unknown-field-canary.yaml", `unknown field "stepWieght"`},
		{"unknown-kind.yaml", "Ingress"},
		{"wrong-type.yaml", "containerPort"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/broken/decode/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = manifest.Decode(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := manifest.Decode(mustRead(t, "testdata/broken/decode/unknown-kind.yaml")); !errors.Is(err, manifest.ErrUnknownKind) {
		t.Errorf("unknown kind: got %v, want ErrUnknownKind", err)
	}
}

func TestBrokenKustomizationFailsToBuild(t *testing.T) {
	_, err := manifest.Build("testdata/broken/kustomize")
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("got %v, want an error naming missing.yaml", err)
	}
}

func TestMainFlagsRefusesHiddenFlags(t *testing.T) {
	const main = "testdata/broken/main/main.go.txt"
	_, _, err := manifest.MainFlags(main, "fs", "cfg")
	for _, want := range []string{"telemetry.RegisterFlags", "tel.RegisterFlags", "not a string literal"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %q", err, want)
		}
	}
	_, err = manifest.BinaryFlags(main, "fs", map[string]func(*flag.FlagSet){"cfg": func(*flag.FlagSet) {}})
	if err == nil {
		t.Error("BinaryFlags accepted a main whose flags cannot be read")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
