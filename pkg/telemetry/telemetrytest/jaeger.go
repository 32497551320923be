package telemetrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// JaegerURLEnv names the variable holding the base URL of a running Jaeger query
// service (http://127.0.0.1:16686); `make test-jaeger` sets it.
const JaegerURLEnv = "SHOP_TEST_JAEGER_URL"

// JaegerURL returns the Jaeger query URL from JaegerURLEnv, or skips the test saying
// how to run it.
func JaegerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(JaegerURLEnv)
	if u == "" {
		t.Skipf("set %s to run against Jaeger (make test-jaeger does)", JaegerURLEnv)
	}
	return u
}

// JaegerSpan is one span as Jaeger's query API returns it.
type JaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"` // CHILD_OF or FOLLOWS_FROM
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Service string `json:"-"` // filled from the trace's processes
}

// JaegerTrace is a trace as Jaeger stored it.
type JaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []JaegerSpan `json:"spans"`
}

// Services returns the sorted service names of the trace's spans.
func (tr JaegerTrace) Services() []string {
	var out []string
	for _, s := range tr.Spans {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	sort.Strings(out)
	return out
}

// FetchJaegerTrace reads trace id from the Jaeger query API at baseURL
// (/api/traces/{id}). It returns an error for a transport failure or a non-200
// answer, which is what Jaeger answers until the trace has been stored.
func FetchJaegerTrace(ctx context.Context, baseURL string, id trace.TraceID) (JaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/traces/"+id.String(), nil)
	if err != nil {
		return JaegerTrace{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return JaegerTrace{}, fmt.Errorf("jaeger query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return JaegerTrace{}, fmt.Errorf("jaeger query: trace %s: status %s", id, resp.Status)
	}
	var body struct {
		Data []struct {
			JaegerTrace
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return JaegerTrace{}, fmt.Errorf("jaeger query: decode: %w", err)
	}
	if len(body.Data) == 0 {
		return JaegerTrace{}, fmt.Errorf("jaeger query: trace %s not found", id)
	}
	d := body.Data[0]
	tr := d.JaegerTrace
	for i := range tr.Spans {
		tr.Spans[i].Service = d.Processes[tr.Spans[i].ProcessID].ServiceName
	}
	return tr, nil
}

// WaitForJaegerTrace polls Jaeger for trace id until its spans come from every
// service in want, and returns it. Jaeger stores spans asynchronously after the
// exporter has sent them, and offers no notification, so polling (every 200ms, for at
// most DefaultWait) is the only way. It fails the test with what Jaeger last answered.
func WaitForJaegerTrace(t testing.TB, baseURL string, id trace.TraceID, want ...string) JaegerTrace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWait)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var (
		last    JaegerTrace
		lastErr error
	)
	for {
		last, lastErr = FetchJaegerTrace(ctx, baseURL, id)
		if lastErr == nil && containsAll(last.Services(), want) {
			return last
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("jaeger at %s: trace %s lacks services %v within %s: services %v, error %v",
				baseURL, id, want, DefaultWait, last.Services(), lastErr)
			return JaegerTrace{}
		}
	}
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
