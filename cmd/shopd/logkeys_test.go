package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// Every JSON log line of the shop names its service once: no key twice (JSON with a
// repeated key is read differently by different tools), and "service" on every
// line a service wrote.
func TestLogLinesHaveEachKeyOnce(t *testing.T) {
	m := NewMain()
	var stdout, stderr bytes.Buffer
	m.Stdout, m.Stderr = &stdout, &stderr
	args := shopArgs(t.TempDir(), "127.0.0.1:0")
	args = append(args, "-log-level", "info")
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	services := map[string]bool{}
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		keys, err := topLevelKeys(line)
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q twice: %s", k, line)
			}
			seen[k] = true
		}
		var rec struct {
			Msg     string `json:"msg"`
			Service string `json:"service"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		if strings.HasSuffix(rec.Msg, " serving") {
			services[rec.Service] = true
		}
	}
	for _, svc := range []string{"catalog", "cart", "order", "payment", "inventory", "shipping", "gateway"} {
		if !services[svc] {
			t.Errorf("no %q serving line with service=%s (saw %v)", svc, svc, services)
		}
	}
}

// topLevelKeys returns the keys of a JSON object in order, repeats included.
func topLevelKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
