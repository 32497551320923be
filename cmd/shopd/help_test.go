package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// shopd help lists the commands and starts nothing; a command's -h prints its flags
// and exits 0; an unknown word is refused at once instead of starting a shop.
func TestHelp(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"help"}, {"--help"}} {
		var out, errb bytes.Buffer
		if code := run(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("shopd %v = %d: %s", args, code, errb.String())
		}
		for _, want := range []string{"token", "audit", "nats-auth", "projections rebuild", "dlq"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("shopd %v lacks %q:\n%s", args, want, out.String())
			}
		}
	}

	var out, errb bytes.Buffer
	if code := run(ctx, []string{"audit", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-data-dir") {
		t.Errorf("shopd audit -h = %d:\n%s", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, []string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "-order-read-dsn") {
		t.Errorf("shopd -h = %d:\n%s", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, []string{"hlep"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "hlep"`) {
		t.Errorf("shopd hlep = %d:\n%s", code, errb.String())
	}
}
