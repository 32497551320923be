package eventstore_test

import (
	"testing"

	"github.com/eventshop/eventshop/pkg/eventstore"
	"github.com/eventshop/eventshop/pkg/eventstore/eventstoretest"
)

func TestMemoryConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store { return eventstore.NewMemory() })
}
