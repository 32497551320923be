package messaging

import "github.com/nats-io/nats.go/jetstream"

// defaultPublisher is what New uses when no WithPublisher option is given.
func defaultPublisher(js jetstream.JetStream, _ string) Publisher {
	return JetStreamPublisher{JS: js}
}
