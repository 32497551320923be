package deploy

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/eventshop/eventshop/deploy/manifest"
	"github.com/eventshop/eventshop/gateway"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/participant"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
	"github.com/eventshop/eventshop/services/cart"
	"github.com/eventshop/eventshop/services/catalog"
	"github.com/eventshop/eventshop/services/inventory"
	"github.com/eventshop/eventshop/services/order"
	"github.com/eventshop/eventshop/services/payment"
	"github.com/eventshop/eventshop/services/shipping"
)

// ingressPrincipal is the identity of Istio's ingress gateway (installed by
// istioctl, not by these manifests): the only caller from outside the namespace.
const ingressPrincipal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"

var (
	k8sOverlays   = []string{"k8s/overlays/dev", "k8s/overlays/prod", "k8s/overlays/prod-eventstoredb"}
	istioOverlays = []string{"../istio/base", "../istio/canary-10", "../istio/canary-50", "../istio/promote"}
)

// mains are the deployable binaries: the Configs whose RegisterFlags their main may
// call (by the name of its variable there), and the listen flag. A participant's
// main hands its Config to participant.Program, whose RegisterFlags defines every
// flag the binary parses.
var mains = []struct {
	name, main, listen string
	registers          map[string]func(*flag.FlagSet)
	program            func(*flag.FlagSet)
}{
	{"catalog", "../services/catalog/cmd/catalog/main.go", "grpc-addr", registers(new(catalog.Config).RegisterFlags), nil},
	{"cart", "../services/cart/cmd/cart/main.go", "grpc-addr", registers(new(cart.Config).RegisterFlags), nil},
	{"order", "../services/order/cmd/order/main.go", "grpc-addr", registers(new(order.Config).RegisterFlags), nil},
	{"payment", "../services/payment/cmd/payment/main.go", "grpc-addr", nil, participant.Program{Flags: new(payment.Config).RegisterFlags}.RegisterFlags},
	{"inventory", "../services/inventory/cmd/inventory/main.go", "grpc-addr", nil, participant.Program{Flags: new(inventory.Config).RegisterFlags}.RegisterFlags},
	{"shipping", "../services/shipping/cmd/shipping/main.go", "grpc-addr", nil, participant.Program{Flags: new(shipping.Config).RegisterFlags}.RegisterFlags},
	{"gateway", "../gateway/cmd/gateway/main.go", "http-addr", registers(new(gateway.Config).RegisterFlags), nil},
}

// registers names the Configs as the mains do: the binary's own Config "cfg", the
// service start-up Config "startCfg" (services) and the telemetry Config "telCfg"
// (gateway).
func registers(cfg func(*flag.FlagSet)) map[string]func(*flag.FlagSet) {
	return map[string]func(*flag.FlagSet){
		"cfg":      cfg,
		"startCfg": new(service.Config).RegisterFlags,
		"telCfg":   new(telemetry.Config).RegisterFlags,
		// How services run on their own reach NATS: identity and CA.
		"natsFlags": new(natsauth.ClientFlags).RegisterFlags,
	}
}

// binaries reads, from the code, what each deployable binary accepts: the flags of
// its Configs plus those its main adds, its listen flag and, for HTTP, its health paths.
func binaries(t *testing.T) map[string]manifest.Binary {
	t.Helper()
	bins := map[string]manifest.Binary{}
	for _, m := range mains {
		var fs *flag.FlagSet
		var err error
		if m.program != nil {
			fs, err = programFlags(m.main, m.program)
		} else {
			fs, err = manifest.BinaryFlags(m.main, "fs", m.registers)
		}
		if err != nil {
			t.Fatalf("flags of %s: %v", m.name, err)
		}
		b := manifest.Binary{Flags: fs, ListenFlag: m.listen}
		if m.listen == "http-addr" {
			b.HealthPaths = healthPaths(t, filepath.Dir(filepath.Dir(filepath.Dir(m.main))))
		}
		bins[m.name] = b
	}
	return bins
}

// programFlags returns the flags program defines, after checking that main defines
// none of its own beside it.
func programFlags(main string, program func(*flag.FlagSet)) (*flag.FlagSet, error) {
	extra, _, err := manifest.MainFlags(main, "fs")
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		return nil, fmt.Errorf("%s defines flags %v outside participant.Program", main, extra)
	}
	fs := flag.NewFlagSet(main, flag.ContinueOnError)
	program(fs)
	return fs, nil
}

// healthPaths returns the /healthz-style paths the Go files of dir register.
func healthPaths(t *testing.T, dir string) []string {
	t.Helper()
	re := regexp.MustCompile(`HandleFunc\("(?:GET )?(/[a-z]+z)"`)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			paths = append(paths, m[1])
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no health paths registered in %s", dir)
	}
	return paths
}

func build(t *testing.T, dir string) *manifest.Set {
	t.Helper()
	s, err := manifest.BuildSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkAll runs every cross-check on s and returns their errors by name.
func checkAll(s *manifest.Set, bins map[string]manifest.Binary) map[string]error {
	return map[string]error{
		"hosts":      manifest.CheckHosts(s),
		"subsets":    manifest.CheckSubsets(s),
		"weights":    manifest.CheckWeights(s),
		"principals": manifest.CheckPrincipals(s, ingressPrincipal),
		"workloads":  manifest.CheckWorkloads(s),
		"binaries":   manifest.CheckBinaries(s, bins),
		"callers":    manifest.CheckCallers(s, bins, ingressPrincipal),
		"canaries":   manifest.CheckCanaries(s),
		"nats":       manifest.CheckNATS(s),
	}
}

// TestEveryFileDecodesStrictly decodes every YAML file of the manifests on its own:
// resources into their typed APIs, kustomizations into kustomize's.
func TestEveryFileDecodesStrictly(t *testing.T) {
	n := 0
	for _, root := range []string{"k8s", "../istio"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
				return err
			}
			n++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if filepath.Base(path) == "kustomization.yaml" {
				var k types.Kustomization
				if err := yaml.UnmarshalStrict(b, &k); err != nil {
					t.Errorf("%s: %v", path, err)
				}
				return nil
			}
			if _, err := manifest.Decode(b); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 20 {
		t.Fatalf("decoded %d files; the manifests are missing", n)
	}
}

// TestOverlaysBuild runs kustomize on every overlay and decodes its output.
func TestOverlaysBuild(t *testing.T) {
	dirs := slices.Concat(k8sOverlays, istioOverlays, []string{"k8s/overlays/prod-flagger", "k8s/eventstoredb", "../istio/flagger"})
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			s := build(t, dir)
			if len(s.Deployments)+len(s.StatefulSets)+len(s.VirtualServices)+len(s.AuthorizationPolicies) == 0 {
				t.Errorf("%s renders no workloads and no mesh config", dir)
			}
		})
	}
}

// TestCrossChecks checks every pairing of a Kubernetes overlay with a mesh stage, as
// they are applied together.
func TestCrossChecks(t *testing.T) {
	bins := binaries(t)
	pairs := [][2]string{{"k8s/overlays/prod-flagger", "../istio/flagger"}}
	for _, k := range k8sOverlays {
		for _, i := range istioOverlays {
			pairs = append(pairs, [2]string{k, i})
		}
	}
	for _, p := range pairs {
		t.Run(p[0]+"+"+p[1], func(t *testing.T) {
			s := build(t, p[0]).Merge(build(t, p[1]))
			for name, err := range checkAll(s, bins) {
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestStagesShiftWeights checks that each stage gives v2 the share its name says,
// on the canary service only.
func TestStagesShiftWeights(t *testing.T) {
	stages := map[string]int32{"../istio/base": 0, "../istio/canary-10": 10, "../istio/canary-50": 50, "../istio/promote": 100}
	for dir, want := range stages {
		s := build(t, dir)
		for _, vs := range s.VirtualServices {
			canary := vs.Labels["eventshop.io/canary"] == "true"
			for _, r := range vs.Spec.GetHttp() {
				if r.GetName() != "split" {
					continue
				}
				var v2 int32
				for _, d := range r.GetRoute() {
					if d.GetDestination().GetSubset() == "v2" {
						v2 = d.GetWeight()
					}
				}
				if canary && v2 != want {
					t.Errorf("%s: %s sends %d%% to v2, want %d%%", dir, vs.Name, v2, want)
				}
				if !canary && v2 != 0 {
					t.Errorf("%s: %s is no canary but sends %d%% to v2", dir, vs.Name, v2)
				}
			}
		}
	}
}

// TestMainFlagsOutsideConfig lists the flags mains define themselves, beyond the
// Configs they register; it only keeps them visible (a Config is where shopd sets them).
func TestMainFlagsOutsideConfig(t *testing.T) {
	for _, m := range mains {
		names, calls, err := manifest.MainFlags(m.main, "fs", "cfg", "startCfg", "telCfg", "natsFlags")
		if err != nil {
			t.Error(err)
		}
		t.Logf("%s registers %v, defines itself %v", m.name, calls, names)
	}
}
