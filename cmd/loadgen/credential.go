package main

import (
	"context"
	"sync"
	"time"
)

// credential is a shopper's bearer token, shared by every goroutine acting as that
// shopper. When the shop refuses it (401, Unauthenticated: it expired, or the issuer
// lost its key), the client logs in again once and retries, instead of counting
// every later call as refused for the rest of the run.
type credential struct {
	login func(context.Context) (string, error) // nil: the token is never renewed

	mu      sync.Mutex
	token   string
	renewed time.Time
}

// minRenewal bounds how often a refused credential logs in again, so a shop that
// refuses every token is not also flooded with logins.
const minRenewal = time.Second

func (c *credential) current() string {
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// renew returns a token to retry with after refused was refused, and false when
// there is none: no login func, a login that failed, or one too recent. A caller
// whose token another goroutine already replaced gets the new one.
func (c *credential) renew(ctx context.Context, refused string) (string, bool) {
	if c == nil || c.login == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != refused {
		return c.token, true
	}
	if time.Since(c.renewed) < minRenewal {
		return "", false
	}
	c.renewed = time.Now()
	t, err := c.login(ctx)
	if err != nil {
		return "", false
	}
	c.token = t
	return t, true
}
