package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	orderv1 "github.com/eventshop/eventshop/gen/go/eventshop/order/v1"
)

const (
	alertsFile    = "../../deploy/monitoring/alerts.yaml"
	dashboardFile = "../../deploy/monitoring/dashboard.json"
	runbookFile   = "../../docs/operations.md"
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
	exported := scrapeNames(t, strings.TrimRight(s.StorefrontURL(), "/")+"/metrics")
	for name, where := range named {
		if !exported[name] {
			slices.Sort(where)
			t.Errorf("%s is not exported by the shop; named by %v", name, where)
		}
	}
}

// scrapeNames returns the names of the samples url serves in the Prometheus text format.
func scrapeNames(t *testing.T, url string) map[string]bool {
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
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := sample.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
