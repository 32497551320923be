package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

const (
	alertsFile    = "../../deploy/monitoring/alerts.yaml"
	dashboardFile = "../../deploy/monitoring/dashboard.json"
	runbookFile   = "../../docs/operations.md"
	templatesFile = "../../istio/flagger/metric-templates.yaml"
)

// The alert rules parse with Prometheus's own rule parser; each has a severity, a
// summary and a runbook that docs/operations.md really has. Every query of the rules
// and of the dashboard parses as PromQL and names only metrics a running shop
// exports once it has taken an order.
func TestMonitoringNamesWhatTheShopExports(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(raw, false, model.LegacyValidation, p, nil)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", alertsFile, errs)
	}
	runbook, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{} // where → PromQL
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			queries["alert "+r.Alert] = r.Expr
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no severity or summary", r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "docs/operations.md#")
			if !ok || !strings.Contains(string(runbook), "\n### "+r.Alert+"\n") || anchor != strings.ToLower(r.Alert) {
				t.Errorf("alert %s: runbook_url %q has no section in %s", r.Alert, r.Annotations["runbook_url"], runbookFile)
			}
		}
	}
	if alerts < 5 {
		t.Fatalf("%d alerts in %s", alerts, alertsFile)
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	raw, err = os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, panel := range dash.Panels {
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for i, tg := range panel.Targets {
			queries["panel "+panel.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}

	// The canary's templates: Flagger fills in its variables before Prometheus sees
	// the query. Istio's own metrics come from the sidecars, the others from the shop,
	// and those must carry the version, which is how a canary is told apart.
	versioned := map[string]bool{}
	for name, q := range flaggerQueries(t) {
		where := "canary template " + name
		queries[where] = q
		expr, err := p.ParseExpr(q)
		if err != nil {
			continue // reported below
		}
		business := false
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && !strings.HasPrefix(vs.Name, "istio_") {
				versioned[vs.Name], business = true, true
			}
			return nil
		})
		if !business && !strings.Contains(name, "grpc") {
			t.Errorf("%s names none of the shop's metrics", where)
		}
	}
	if len(versioned) < 4 {
		t.Errorf("the canary templates name %d of the shop's metrics (%v): sagas, compensations and projection lag are judged", len(versioned), slices.Sorted(maps.Keys(versioned)))
	}

	named := map[string][]string{} // metric → where
	for where, q := range queries {
		expr, err := p.ParseExpr(q)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				named[vs.Name] = append(named[vs.Name], where)
			}
			return nil
		})
	}

	s := startSagaShop(t)
	id := placeViaAPI(t, s)
	s.awaitStatus(id, orderv1.OrderStatus_ORDER_STATUS_COMPLETED)
	exported, withVersion := scrapeNames(t, strings.TrimRight(s.StorefrontURL(), "/")+"/metrics")
	for name, where := range named {
		if strings.HasPrefix(name, "istio_") && slices.ContainsFunc(where, func(w string) bool { return strings.HasPrefix(w, "canary template ") }) {
			continue // the mesh's, not the shop's
		}
		if !exported[name] {
			slices.Sort(where)
			t.Errorf("%s is not exported by the shop; named by %v", name, where)
		}
	}
	for name := range versioned {
		if exported[name] && !withVersion[name] {
			t.Errorf("%s has a series without the service_version label: a canary's figures could not be told from the primary's", name)
		}
	}
}

// flaggerQueries returns the query of each MetricTemplate in templatesFile, by
// name, with Flagger's variables filled in as it would for the order Canary.
func flaggerQueries(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(templatesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := strings.NewReplacer("{{ namespace }}", "eventshop", "{{ target }}", "order-v1", "{{ interval }}", "1m")
	out := map[string]string{}
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Query string `yaml:"query"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", templatesFile, err)
		}
		if doc.Kind != "MetricTemplate" || doc.Spec.Query == "" {
			t.Fatalf("%s: %s %q is no MetricTemplate with a query", templatesFile, doc.Kind, doc.Metadata.Name)
		}
		out[doc.Metadata.Name] = vars.Replace(doc.Spec.Query)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no template", templatesFile)
	}
	return out
}

// scrapeNames returns the names of the samples url serves in the Prometheus text
// format, and those of them whose every sample has a service_version label.
func scrapeNames(t *testing.T, url string) (names, versioned map[string]bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)
	version := regexp.MustCompile(`[{,]service_version="[^"]+"`)
	names, unversioned := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := sample.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
			if !version.MatchString(sc.Text()) {
				unversioned[m[1]] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	versioned = map[string]bool{}
	for n := range names {
		if !unversioned[n] {
			versioned[n] = true
		}
	}
	return names, versioned
}
