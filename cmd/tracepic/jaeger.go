package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Trace is one trace as Jaeger's HTTP query API returns it, reduced to what the
// waterfall needs.
type Trace struct {
	TraceID string
	Spans   []Span
}

// Span is one span of a Trace. Start and Duration come from Jaeger's microseconds.
type Span struct {
	SpanID     string
	Name       string
	Service    string
	Kind       string // span.kind tag: server, client, producer, consumer, internal
	Start      time.Time
	Duration   time.Duration
	Error      bool
	References []Reference
	Tags       map[string]string
}

// Reference is a span's CHILD_OF (parent) or FOLLOWS_FROM (link) reference.
type Reference struct {
	Type   string
	SpanID string
}

// ErrNoTrace is returned when the query API answers but holds no matching trace.
var ErrNoTrace = errors.New("no such trace")

// apiTrace mirrors one element of the query API's "data" array.
type apiTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		StartTime     int64  `json:"startTime"` // µs since the epoch
		Duration      int64  `json:"duration"`  // µs
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// DecodeTraces reads a query API answer ({"data": [...]}) as served by
// /api/traces/<id> and /api/traces?service=... It returns the JSON decoder's error,
// or ErrNoTrace when the answer holds no trace.
func DecodeTraces(r io.Reader) ([]Trace, error) {
	var body struct {
		Data []apiTrace `json:"data"`
	}
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode jaeger answer: %w", err)
	}
	if len(body.Data) == 0 {
		return nil, ErrNoTrace
	}
	out := make([]Trace, 0, len(body.Data))
	for _, d := range body.Data {
		tr := Trace{TraceID: d.TraceID, Spans: make([]Span, 0, len(d.Spans))}
		for _, s := range d.Spans {
			sp := Span{
				SpanID:   s.SpanID,
				Name:     s.OperationName,
				Service:  d.Processes[s.ProcessID].ServiceName,
				Start:    time.UnixMicro(s.StartTime),
				Duration: time.Duration(s.Duration) * time.Microsecond,
				Tags:     make(map[string]string, len(s.Tags)),
			}
			for _, t := range s.Tags {
				sp.Tags[t.Key] = fmt.Sprint(t.Value)
			}
			sp.Kind = sp.Tags["span.kind"]
			sp.Error = sp.Tags["error"] == "true" || sp.Tags["otel.status_code"] == "ERROR"
			for _, r := range s.References {
				sp.References = append(sp.References, Reference{Type: r.RefType, SpanID: r.SpanID})
			}
			tr.Spans = append(tr.Spans, sp)
		}
		out = append(out, tr)
	}
	return out, nil
}

// Client reads traces from a Jaeger query service.
type Client struct {
	BaseURL string // http://127.0.0.1:16686
	HTTP    *http.Client
}

// Trace fetches trace id (/api/traces/<id>). It returns a transport error, an error
// naming a non-200 status (Jaeger answers 404 until the trace is stored), or
// DecodeTraces' errors.
func (c Client) Trace(ctx context.Context, id string) (Trace, error) {
	trs, err := c.get(ctx, "/api/traces/"+url.PathEscape(id))
	if err != nil {
		return Trace{}, fmt.Errorf("trace %s: %w", id, err)
	}
	return trs[0], nil
}

// Latest returns the most recent trace of service whose root span belongs to service
// and satisfies match (nil: any), among the last limit traces Jaeger lists. Errors:
// as Trace's, and ErrNoTrace when none matches.
func (c Client) Latest(ctx context.Context, service string, match func(root Span) bool, limit int) (Trace, error) {
	q := url.Values{"service": {service}, "limit": {fmt.Sprint(limit)}}
	trs, err := c.get(ctx, "/api/traces?"+q.Encode())
	if err != nil {
		return Trace{}, fmt.Errorf("traces of %s: %w", service, err)
	}
	trs = slices.DeleteFunc(trs, func(tr Trace) bool {
		root, ok := tr.Root()
		return !ok || root.Service != service || (match != nil && !match(root))
	})
	if len(trs) == 0 {
		return Trace{}, fmt.Errorf("traces of %s with a matching root span: %w", service, ErrNoTrace)
	}
	return slices.MaxFunc(trs, func(a, b Trace) int {
		ra, _ := a.Root()
		rb, _ := b.Root()
		return ra.Start.Compare(rb.Start)
	}), nil
}

func (c Client) get(ctx context.Context, path string) ([]Trace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	hc := cmp.Or(c.HTTP, http.DefaultClient)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger query: status %s", resp.Status)
	}
	return DecodeTraces(resp.Body)
}

// Root returns the earliest span with no parent in the trace, false for an empty
// trace.
func (tr Trace) Root() (Span, bool) {
	ids := make(map[string]bool, len(tr.Spans))
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	var (
		root  Span
		found bool
	)
	for _, s := range tr.Spans {
		if p := s.Parent(); p != "" && ids[p] {
			continue
		}
		if !found || s.Start.Before(root.Start) {
			root, found = s, true
		}
	}
	return root, found
}

// Parent returns the span id of the span's CHILD_OF reference, empty for none.
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.Type == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}
