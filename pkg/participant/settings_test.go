package participant_test

import (
	"flag"
	"testing"

	"github.com/eventshop/eventshop/pkg/participant"
)

// The shared flags of every participant: their defaults validate, and a bad value of
// each is refused.
func TestSettingsFlags(t *testing.T) {
	parse := func(t *testing.T, args ...string) participant.Settings {
		t.Helper()
		var s participant.Settings
		fs := flag.NewFlagSet("p", flag.ContinueOnError)
		s.RegisterFlags(fs, "127.0.0.1:9999", "data/p.db")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := parse(t)
	if s.GRPCAddr != "127.0.0.1:9999" || s.DBDSN != "data/p.db" || s.StreamReplicas != 1 || s.Retention != participant.DefaultRetention || s.BatchSize != 0 {
		t.Errorf("defaults = %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("defaults: Validate: %v", err)
	}
	if s := parse(t, "-stream-replicas", "3", "-batch-size", "1"); s.StreamReplicas != 3 || s.BatchSize != 1 || s.Validate() != nil {
		t.Errorf("-stream-replicas 3 -batch-size 1: %+v, %v", s, s.Validate())
	}
	for _, args := range [][]string{
		{"-stream-replicas", "-1"}, {"-batch-size", "-1"}, {"-concurrency", "-1"},
		{"-max-deliver", "-1"}, {"-retention", "-1s"}, {"-drain-timeout", "-1s"}, {"-grpc-addr", ""},
	} {
		if parse(t, args...).Validate() == nil {
			t.Errorf("%v: Validate accepted it", args)
		}
	}
}
