package esdb_test

import (
	"os"
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/esdb"
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
)

// TestConformance needs an EventStoreDB with the standard projections running
// (--run-projections=All --start-standard-projections), for the $ce-<category> streams.
func TestConformance(t *testing.T) {
	url := os.Getenv("SHOP_TEST_EVENTSTORE_URL")
	if url == "" {
		t.Skip("set SHOP_TEST_EVENTSTORE_URL (e.g. esdb://127.0.0.1:2113?tls=false) to run the EventStoreDB conformance suite")
	}
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		c, err := esdb.Dial(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return esdb.New(c)
	})
}
