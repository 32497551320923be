package messaging

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names and subject prefixes of the messaging contract.
const (
	CommandStream = "COMMANDS" // work queue, subjects cmd.>
	EventStream   = "EVENTS"   // limits with max age, subjects evt.>
	DLQStream     = "DLQ"      // limits with max age, subjects dlq.>

	CommandPrefix = "cmd."
	EventPrefix   = "evt."
	DLQPrefix     = "dlq."
)

// StreamsConfig sizes the three streams. Zero values take the defaults.
type StreamsConfig struct {
	// CommandMaxAge drops commands nobody consumed (a service that was never deployed);
	// the sender's timeout handles the silence. Default 7 days.
	CommandMaxAge time.Duration
	// EventMaxAge is how long events stay replayable. Default 7 days.
	EventMaxAge time.Duration
	// DLQMaxAge is how long dead letters wait for someone to look. Default 14 days.
	DLQMaxAge time.Duration
	// Duplicates is the JetStream dedup window for Nats-Msg-Id (= ce-id). A resend
	// later than this is not deduplicated by the server, which is why handlers with
	// side effects also use an Inbox. Default 10 minutes.
	Duplicates time.Duration
	// Replicas per stream; 1 for an embedded server, 3 for a cluster. Default 1.
	Replicas int
	// Storage defaults to file storage.
	Storage jetstream.StorageType
}

func (c StreamsConfig) withDefaults() StreamsConfig {
	if c.CommandMaxAge <= 0 {
		c.CommandMaxAge = 7 * 24 * time.Hour
	}
	if c.EventMaxAge <= 0 {
		c.EventMaxAge = 7 * 24 * time.Hour
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = 14 * 24 * time.Hour
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	return c
}

// DeclareStreams creates or updates the COMMANDS, EVENTS and DLQ streams; every
// service calls it at start-up, so the order in which services start does not matter.
// It returns the JetStream API error (e.g. jetstream.ErrJetStreamNotEnabled) of the
// first stream it could not declare; an unanswered request is tried again (Declare).
func DeclareStreams(ctx context.Context, js jetstream.JetStream, cfg StreamsConfig) error {
	cfg = cfg.withDefaults()
	streams := []jetstream.StreamConfig{
		{
			Name:        CommandStream,
			Description: "commands, each consumed once by the service that owns its subject",
			Subjects:    []string{CommandPrefix + ">"},
			Retention:   jetstream.WorkQueuePolicy,
			MaxAge:      cfg.CommandMaxAge,
		},
		{
			Name:        EventStream,
			Description: "domain events, replayable until they age out",
			Subjects:    []string{EventPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.EventMaxAge,
		},
		{
			Name:        DLQStream,
			Description: "messages no handler could process, with the reason in ce-error",
			Subjects:    []string{DLQPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      cfg.DLQMaxAge,
		},
	}
	for _, sc := range streams {
		sc.Duplicates = cfg.Duplicates
		sc.Replicas = cfg.Replicas
		sc.Storage = cfg.Storage
		if err := Declare(ctx, "messaging: declare stream "+sc.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}
