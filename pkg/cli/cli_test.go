package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestExecute(t *testing.T) {
	var got []string
	record := func(name string) func(context.Context, []string) error {
		return func(_ context.Context, args []string) error {
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Bool("fast", false, "")
			if err := fs.Parse(args); err != nil {
				return err
			}
			got = append([]string{name}, fs.Args()...)
			return nil
		}
	}
	run := func(args ...string) (string, error) {
		got = nil
		root := Command("tool [flags]", "the tool", record("tool"))
		root.AddCommand(Group("things", "thing tools", Command("rebuild", "rebuild things", record("rebuild"))))
		var out bytes.Buffer
		err := Execute(context.Background(), root, args, &out, io.Discard)
		return out.String(), err
	}

	if _, err := run("-fast", "x"); err != nil || strings.Join(got, " ") != "tool x" {
		t.Errorf("tool -fast x: ran %v, %v", got, err)
	}
	if _, err := run("things", "rebuild", "-fast", "y"); err != nil || strings.Join(got, " ") != "rebuild y" {
		t.Errorf("tool things rebuild -fast y: ran %v, %v", got, err)
	}
	if _, err := run("things", "rebuild", "-h"); err != nil || got != nil {
		t.Errorf("tool things rebuild -h: ran %v, %v; want help from the command's flags and no error", got, err)
	}
	if _, err := run("-bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("tool -bogus: %v, want the flag set's error", err)
	}
	for _, tc := range []struct {
		args  []string
		lists string
	}{{[]string{"help"}, "things"}, {[]string{"things"}, "rebuild"}} {
		out, err := run(tc.args...)
		if err != nil || got != nil || !strings.Contains(out, tc.lists) {
			t.Errorf("tool %v: ran %v, %v; want help listing %q:\n%s", tc.args, got, err, tc.lists, out)
		}
	}
	if _, err := run("things", "rebuidl"); err == nil || !strings.Contains(err.Error(), `did you mean "rebuild"`) {
		t.Errorf("tool things rebuidl: %v, want an unknown command with a suggestion", err)
	}
}
