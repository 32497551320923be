package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	tests := []struct{ flag, want string }{
		{"nats-url", "SHOP_NATS_URL"},
		{"grpc-addr", "SHOP_GRPC_ADDR"},
		{"oidc-issuer", "SHOP_OIDC_ISSUER"},
		{"cart.ttl", "SHOP_CART_TTL"},
		{"x", "SHOP_X"},
	}
	for _, tt := range tests {
		if got := EnvName(tt.flag); got != tt.want {
			t.Errorf("EnvName(%q) = %q, want %q", tt.flag, got, tt.want)
		}
	}
}

type flags struct {
	addr  string
	ttl   time.Duration
	lines int
	debug bool
}

func newFlagSet() (*flag.FlagSet, *flags) {
	var f flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.StringVar(&f.addr, "grpc-addr", "127.0.0.1:9401", "")
	fs.DurationVar(&f.ttl, "cart-ttl", time.Hour, "")
	fs.IntVar(&f.lines, "max-lines", 50, "")
	fs.BoolVar(&f.debug, "debug", false, "")
	return fs, &f
}

func TestParseEnvFillsFlagsNotGiven(t *testing.T) {
	t.Setenv("SHOP_GRPC_ADDR", "127.0.0.1:7000")
	t.Setenv("SHOP_CART_TTL", "48h")
	t.Setenv("SHOP_DEBUG", "true")
	t.Setenv("SHOP_MAX_LINES", "9")

	fs, f := newFlagSet()
	if err := Parse(fs, []string{"-max-lines", "3"}); err != nil {
		t.Fatal(err)
	}
	if f.addr != "127.0.0.1:7000" || f.ttl != 48*time.Hour || !f.debug {
		t.Errorf("env not applied: %+v", *f)
	}
	if f.lines != 3 {
		t.Errorf("max-lines = %d, want the command line's 3 over the environment's 9", f.lines)
	}
}

func TestParseDefaultsWithoutEnv(t *testing.T) {
	fs, f := newFlagSet()
	if err := parse(fs, nil, func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
	if f.addr != "127.0.0.1:9401" || f.ttl != time.Hour || f.lines != 50 || f.debug {
		t.Errorf("defaults changed: %+v", *f)
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	env := map[string]string{"SHOP_CART_TTL": "soon", "SHOP_MAX_LINES": "many"}
	fs, _ := newFlagSet()
	err := parse(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("want an error for bad environment values")
	}
	for _, name := range []string{"SHOP_CART_TTL", "SHOP_MAX_LINES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestParseBadArgs(t *testing.T) {
	fs, _ := newFlagSet()
	fs.SetOutput(&strings.Builder{})
	if err := Parse(fs, []string{"-no-such-flag"}); err == nil {
		t.Fatal("want an error for an unknown flag")
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		say    string
	}{
		{nil, 0, ""},
		{flag.ErrHelp, 0, ""},
		{UsageError{Err: errors.New(`unexpected argument "x"`)}, 2, `tool: unexpected argument "x"` + "\n"},
		{fmt.Errorf("run: %w", UsageError{Err: errors.New("bad")}), 2, "tool: run: bad\n"},
		{errors.New("boom"), 1, "tool: boom\n"},
	} {
		var stderr bytes.Buffer
		if got := ExitStatus(&stderr, "tool: ", tc.err); got != tc.status || stderr.String() != tc.say {
			t.Errorf("ExitStatus(%v) = %d, printed %q; want %d, %q", tc.err, got, stderr.String(), tc.status, tc.say)
		}
	}
}
