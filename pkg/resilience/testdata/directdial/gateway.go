package directdial

import (
	"context"

	foov1 "example.com/gen/foo/v1"
)

func register(ctx context.Context) error {
	return foov1.RegisterFooHandlerFromEndpoint(ctx, "foo:8080", nil)
}
