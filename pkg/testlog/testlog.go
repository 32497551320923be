// Package testlog is for tests that read what a logger wrote from other goroutines
// (the tests of pkg and of the binaries in cmd).
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a logger may write to from several goroutines while
// a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
