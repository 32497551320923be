package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/eventshop/eventshop/pkg/internal/jspull"
)

// JetStream mapping (details and rationale in README.md):
//
//   - one JetStream stream per category, named <prefix><category> (default prefix
//     "ES_"), capturing subjects "<category>.events.>";
//   - one subject per event stream: "order-0195..." -> "order.events.0195...";
//   - one JetStream message per commit: all events of one Append in one message body,
//     so a multi-event append is atomic on every server version (JetStream atomic batch
//     publish needs 2.12+) and a partial commit can never be read;
//   - headers: Nats-Msg-Id = ID of the commit's first event (deduplication),
//     Eventstore-Stream, Eventstore-Version (version of the first event),
//     Eventstore-Count (events in the commit);
//   - optimistic concurrency with Nats-Expected-Last-Subject-Sequence: the store keeps
//     the (version, subject sequence) of each stream's last commit, so the expected
//     event version maps to the expected JetStream sequence;
//   - Position = JetStream stream sequence << 16 | index of the event in its commit.
const (
	hdrStream  = "Eventstore-Stream"
	hdrVersion = "Eventstore-Version"
	hdrCount   = "Eventstore-Count"
	// hdrNumPending, on a batch direct get's answer, counts the matching messages
	// after this one.
	hdrNumPending = "Nats-Num-Pending"

	// DefaultDuplicateWindow is how long JetStream remembers commit ids. A retry of
	// an Any append later than this is treated as a new append and stored again. A
	// retry with an exact expected version is recognised at any time: the store
	// compares it with the commit right after that version; were it not the same
	// commit, optimistic concurrency would reject it because the version moved on.
	DefaultDuplicateWindow = 10 * time.Minute

	// DefaultStreamPrefix prefixes the JetStream stream name of each category.
	DefaultStreamPrefix = "ES_"

	// headCacheSize bounds the per-stream (version, sequence) hints; they are only
	// hints (the server enforces concurrency), so dropping them all is harmless.
	headCacheSize = 1 << 16
	// DefaultOperationTimeout bounds one Append or ReadStream (see WithOperationTimeout).
	DefaultOperationTimeout = 5 * time.Second

	// maxAttempts bounds retries of an append that keeps losing races (Any) or
	// meets stale hints.
	maxAttempts = 100
)

var _ Store = (*JetStream)(nil)

// JetStream is the NATS JetStream backend of Store. Each category's JetStream stream
// is created on first Append or SubscribeCategory (or by EnsureCategory at start-up)
// with the configuration from the options; an existing stream is used as it is and is
// never reconfigured. Reads of a category whose stream does not exist find nothing.
type JetStream struct {
	js          jetstream.JetStream
	prefix      string
	storage     jetstream.StorageType
	replicas    int
	dupWindow   time.Duration
	streamsMu   sync.Mutex
	streams     map[string]jetstream.Stream // category -> stream handle
	headsMu     sync.Mutex
	heads       map[string]head // event stream -> last commit
	readBatchSz int
	scanIdle    time.Duration // jspull.OrderedIdle; shorter in tests
	opTimeout   time.Duration
}

type head struct {
	version Version
	seq     uint64
}

// JetStreamOption configures NewJetStream.
type JetStreamOption func(*JetStream)

// WithStreamPrefix sets the prefix of the JetStream stream names (default "ES_"). Use
// a distinct prefix to keep several stores apart in one account.
func WithStreamPrefix(prefix string) JetStreamOption {
	return func(s *JetStream) { s.prefix = prefix }
}

// WithStorage sets the storage of created streams (default jetstream.FileStorage).
func WithStorage(st jetstream.StorageType) JetStreamOption {
	return func(s *JetStream) { s.storage = st }
}

// WithReplicas sets the replica count of created streams (default 1).
func WithReplicas(n int) JetStreamOption {
	return func(s *JetStream) { s.replicas = n }
}

// WithDuplicateWindow sets the Duplicates window of created streams (default
// DefaultDuplicateWindow): how long a retried append is recognised as the same one.
func WithDuplicateWindow(d time.Duration) JetStreamOption {
	return func(s *JetStream) { s.dupWindow = d }
}

// WithOperationTimeout bounds each Append and ReadStream (default
// DefaultOperationTimeout; zero or less leaves only the caller's deadline). An
// operation that runs out of it returns an error matching ErrUnavailable. An append
// cut short this way may still be stored when the connection comes back: retry it
// with the same first event ID, which the store recognises.
func WithOperationTimeout(d time.Duration) JetStreamOption {
	return func(s *JetStream) { s.opTimeout = d }
}

// WithReadBatchSize sets how many commits one batch direct get of ReadStream asks
// for (default 256); a longer stream takes more requests.
func WithReadBatchSize(n int) JetStreamOption {
	return func(s *JetStream) {
		if n > 0 {
			s.readBatchSz = n
		}
	}
}

// NewJetStream returns a Store on js. It does no I/O. It panics if js is nil.
func NewJetStream(js jetstream.JetStream, opts ...JetStreamOption) *JetStream {
	if js == nil {
		panic("eventstore: nil jetstream.JetStream")
	}
	s := &JetStream{
		js:          js,
		prefix:      DefaultStreamPrefix,
		storage:     jetstream.FileStorage,
		replicas:    1,
		dupWindow:   DefaultDuplicateWindow,
		streams:     map[string]jetstream.Stream{},
		heads:       map[string]head{},
		readBatchSz: 256,
		scanIdle:    jspull.OrderedIdle,
		opTimeout:   DefaultOperationTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// MinServerVersion is the oldest nats-server the JetStream store works with: it reads
// aggregates with batch direct gets, which came in 2.11.
const MinServerVersion = "2.11.0"

// ErrServerTooOld is returned when the connected nats-server predates
// MinServerVersion.
var ErrServerTooOld = errors.New("eventstore: nats-server too old (needs " + MinServerVersion + " or later for batch direct get)")

// checkServer returns ErrServerTooOld, naming the version, unless the connected
// server is at least MinServerVersion.
func (s *JetStream) checkServer() error {
	v := s.js.Conn().ConnectedServerVersion()
	if !versionAtLeast(v, MinServerVersion) {
		return fmt.Errorf("%w: connected to %s", ErrServerTooOld, v)
	}
	return nil
}

// versionAtLeast compares dotted versions ("2.11.3", "2.12.0-beta") by their
// numeric major, minor and patch.
func versionAtLeast(v, min string) bool {
	parse := func(v string) [3]int {
		var out [3]int
		v, _, _ = strings.Cut(v, "-")
		for i, p := range strings.SplitN(v, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	a, b := parse(v), parse(min)
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return true
}

// StreamName returns the JetStream stream that holds category.
func (s *JetStream) StreamName(category string) string { return s.prefix + category }

func subjectOf(category, id string) string { return category + ".events." + id }

// EnsureCategory creates category's JetStream stream if it does not exist. It returns
// ErrInvalidStream for an invalid category, ErrServerTooOld for a nats-server older
// than MinServerVersion, or the JetStream error (wrapped) if the
// stream cannot be created, e.g. because its subjects overlap another stream's.
func (s *JetStream) EnsureCategory(ctx context.Context, category string) error {
	if err := ValidateCategory(category); err != nil {
		return err
	}
	_, err := s.stream(ctx, category, true)
	return err
}

// stream returns category's stream handle, creating the stream when create is set.
// Without create, a missing stream returns jetstream.ErrStreamNotFound.
func (s *JetStream) stream(ctx context.Context, category string, create bool) (jetstream.Stream, error) {
	s.streamsMu.Lock()
	st, ok := s.streams[category]
	s.streamsMu.Unlock()
	if ok {
		return st, nil
	}
	if err := s.checkServer(); err != nil {
		return nil, err
	}
	name := s.StreamName(category)
	var err error
	if create {
		st, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "eventstore category " + category,
			Subjects:    []string{category + ".events.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     s.storage,
			Replicas:    s.replicas,
			Duplicates:  s.dupWindow,
			// Events are immutable history.
			DenyDelete: true,
			DenyPurge:  true,
			// Aggregates are read with batch direct gets (see ReadStream).
			AllowDirect: true,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, name)
		}
	} else {
		st, err = s.js.Stream(ctx, name)
	}
	if err == nil && !st.CachedInfo().Config.AllowDirect {
		// A stream created before reads used direct gets: allow them, which changes
		// nothing else about the stream.
		cfg := st.CachedInfo().Config
		cfg.AllowDirect = true
		st, err = s.js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: jetstream stream %s: %w", name, err)
	}
	s.streamsMu.Lock()
	s.streams[category] = st
	s.streamsMu.Unlock()
	return st, nil
}

func (s *JetStream) cachedHead(stream string) (head, bool) {
	s.headsMu.Lock()
	defer s.headsMu.Unlock()
	h, ok := s.heads[stream]
	return h, ok
}

// remember records a stream's last commit. A head read from the server (authoritative)
// always replaces the hint; one from a publish only if it is newer, since concurrent
// appends in this process may report out of order.
func (s *JetStream) remember(stream string, h head, authoritative bool) {
	s.headsMu.Lock()
	defer s.headsMu.Unlock()
	if len(s.heads) >= headCacheSize {
		clear(s.heads)
	}
	if old, ok := s.heads[stream]; authoritative || !ok || old.seq < h.seq {
		s.heads[stream] = h
	}
}

// loadHead reads the last commit of a stream's subject from the server.
func (s *JetStream) loadHead(ctx context.Context, st jetstream.Stream, stream, subject string) (head, *jetstream.RawStreamMsg, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		s.remember(stream, head{}, true)
		return head{}, nil, nil
	}
	if err != nil {
		return head{}, nil, fmt.Errorf("eventstore: last commit of %s: %w", stream, err)
	}
	first, n, err := commitHeaders(m.Header, stream)
	if err != nil {
		return head{}, nil, err
	}
	h := head{version: first + Version(n) - 1, seq: m.Sequence}
	s.remember(stream, h, true)
	return h, m, nil
}

func commitHeaders(h nats.Header, stream string) (first Version, n int, err error) {
	if got := h.Get(hdrStream); got != stream {
		return 0, 0, fmt.Errorf("%w: commit for %q found on the subject of %q", errCorruptCommit, got, stream)
	}
	v, err1 := strconv.ParseUint(h.Get(hdrVersion), 10, 64)
	c, err2 := strconv.Atoi(h.Get(hdrCount))
	if err := errors.Join(err1, err2); err != nil || v == 0 || c <= 0 {
		return 0, 0, fmt.Errorf("%w: bad version headers of %s: %v", errCorruptCommit, stream, err)
	}
	return Version(v), c, nil
}

func isTooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Append implements Store.Append; it returns the errors documented there (a commit
// over the server's max payload is ErrInvalidEvent), plus wrapped JetStream errors.
// Retries with an exact expected version are recognised at any time, retries with Any
// within the stream's duplicate window (see WithDuplicateWindow).
func (s *JetStream) Append(ctx context.Context, stream string, expected Version, events ...Event) (Version, error) {
	opCtx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.append(opCtx, stream, expected, events)
	return v, s.unavailable(ctx, err)
}

func (s *JetStream) append(ctx context.Context, stream string, expected Version, events []Event) (Version, error) {
	category, id, err := ParseStream(stream)
	if err != nil {
		return 0, err
	}
	evs, err := PrepareAppend(events, time.Now())
	if err != nil {
		return 0, err
	}
	st, err := s.stream(ctx, category, true)
	if err != nil {
		return 0, err
	}
	subject := subjectOf(category, id)
	body := encodeCommit(evs)
	// fresh tells whether h comes from the server (authoritative) or from the hint.
	h, cached := s.cachedHead(stream)
	fresh := !cached
	var last *jetstream.RawStreamMsg
	if fresh {
		if h, last, err = s.loadHead(ctx, st, stream, subject); err != nil {
			return 0, err
		}
	}
	for attempt := 1; ; attempt++ {
		if expected != Any && expected != h.version {
			if !fresh {
				// The hint may be stale; decide on the server's view.
				if h, last, err = s.loadHead(ctx, st, stream, subject); err != nil {
					return 0, err
				}
				fresh = true
				continue
			}
			if h.version > expected {
				// A retry of an append that succeeded has its commit right after
				// the version the caller expected.
				v, ok, err := s.committed(ctx, st, stream, subject, last, expected+1, evs[0].ID)
				if err != nil || ok {
					return v, err
				}
			}
			return 0, &WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: h.version}
		}
		first := h.version + 1
		msg := nats.NewMsg(subject)
		msg.Header.Set(hdrStream, stream)
		msg.Header.Set(hdrVersion, strconv.FormatUint(uint64(first), 10))
		msg.Header.Set(hdrCount, strconv.Itoa(len(evs)))
		msg.Data = body
		ack, err := s.js.PublishMsg(ctx, msg,
			jetstream.WithMsgID(evs[0].ID),
			jetstream.WithExpectLastSequencePerSubject(h.seq))
		switch {
		case err == nil && ack.Duplicate:
			return s.duplicateResult(ctx, st, stream, ack.Sequence)
		case err == nil:
			v := first + Version(len(evs)) - 1
			s.remember(stream, head{version: v, seq: ack.Sequence}, false)
			return v, nil
		case isTooLarge(err):
			return 0, fmt.Errorf("%w: commit of %d bytes to %s is over the server's limit: %v", ErrInvalidEvent, len(body), stream, err)
		case !isWrongLastSequence(err):
			return 0, fmt.Errorf("eventstore: append to %s: %w", stream, err)
		case attempt >= maxAttempts:
			return 0, fmt.Errorf("eventstore: append to %s: gave up after %d concurrent conflicts", stream, attempt)
		}
		// Someone else appended, or the hint was stale: look again.
		if h, last, err = s.loadHead(ctx, st, stream, subject); err != nil {
			return 0, err
		}
		fresh = true
	}
}

// bound gives one operation the store's own deadline, so a call never waits on the
// bus longer than that, whatever deadline its caller has (or has not): while the
// connection is re-established a request otherwise waits in the client's buffer for
// as long as the caller does.
func (s *JetStream) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// unavailable marks err with ErrUnavailable when it says the server could not answer
// now rather than that the request was wrong: no responders or no stream response
// (no leader during a failover), a request timeout, the store's own operation
// deadline, a closed or reconnecting connection (whose buffer is full or off), or
// JetStream's own "temporarily unavailable" (503). The deadline of caller (ctx, the
// caller's context) stays context.DeadlineExceeded.
func (s *JetStream) unavailable(caller context.Context, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) && caller.Err() == nil {
		// The store's own deadline, or a JetStream request's: not the caller's.
		return fmt.Errorf("%w: no answer in time: %w", ErrUnavailable, err)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.As(err, &apiErr) && apiErr.Code == 503:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// committed reports whether the commit holding version target of stream has msgID,
// i.e. whether an append being retried was already stored, and if so the version it
// returned. last is the stream's last commit.
func (s *JetStream) committed(ctx context.Context, st jetstream.Stream, stream, subject string, last *jetstream.RawStreamMsg, target Version, msgID string) (Version, bool, error) {
	match := func(hdr nats.Header) (Version, bool, bool, error) {
		first, n, err := commitHeaders(hdr, stream)
		if err != nil {
			return 0, false, false, err
		}
		if target < first || target >= first+Version(n) {
			return 0, false, false, nil
		}
		return first + Version(n) - 1, hdr.Get(jetstream.MsgIDHeader) == msgID, true, nil
	}
	if v, ok, found, err := match(last.Header); err != nil || found {
		return v, ok, err
	}
	var (
		v     Version
		ok    bool
		found bool
	)
	err := s.commits(ctx, st, subject, func(m *jetstream.RawStreamMsg) (bool, error) {
		var err error
		v, ok, found, err = match(m.Header)
		return !found && m.Sequence < last.Sequence, err
	})
	if err != nil {
		return 0, false, fmt.Errorf("eventstore: look for a retried append in %s: %w", stream, err)
	}
	return v, ok && found, nil
}

// duplicateResult answers a retried append with the result of the original one.
func (s *JetStream) duplicateResult(ctx context.Context, st jetstream.Stream, stream string, seq uint64) (Version, error) {
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return 0, fmt.Errorf("eventstore: load original of duplicate append to %s: %w", stream, err)
	}
	if got := m.Header.Get(hdrStream); got != stream {
		return 0, fmt.Errorf("%w: event id already appended to %s", ErrInvalidEvent, got)
	}
	first, n, err := commitHeaders(m.Header, stream)
	if err != nil {
		return 0, err
	}
	return first + Version(n) - 1, nil
}

// ReadStream implements Store.ReadStream; it returns the errors documented there, plus
// wrapped JetStream errors.
//
// A stream is read with batch direct gets (one request answered by up to
// readBatchSize messages, repeated only for longer streams), served by any replica
// and creating no consumer: reading an aggregate costs one round trip.
func (s *JetStream) ReadStream(ctx context.Context, stream string, from Version) ([]Event, error) {
	opCtx, cancel := s.bound(ctx)
	defer cancel()
	evs, err := s.readStream(opCtx, stream, from)
	return evs, s.unavailable(ctx, err)
}

func (s *JetStream) readStream(ctx context.Context, stream string, from Version) ([]Event, error) {
	category, id, err := ParseStream(stream)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(ctx, category, false)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, stream)
	}
	if err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	var out []Event
	var h head
	err = s.commits(ctx, st, subjectOf(category, id), func(m *jetstream.RawStreamMsg) (bool, error) {
		evs, err := commitEvents(stream, m.Header, m.Data, m.Sequence)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Version >= from {
				out = append(out, e)
			}
		}
		h = head{version: evs[len(evs)-1].Version, seq: m.Sequence}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: read %s: %w", stream, err)
	}
	if h.seq == 0 {
		s.remember(stream, head{}, true)
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, stream)
	}
	s.remember(stream, h, true)
	return out, nil
}

// commits passes the commits on subject to fn in order, until fn returns false or
// an error, with batch direct gets of up to readBatchSize messages each: served by
// any replica, no consumer created.
func (s *JetStream) commits(ctx context.Context, st jetstream.Stream, subject string, fn func(m *jetstream.RawStreamMsg) (bool, error)) error {
	for seq := uint64(1); ; {
		msgs, err := jetstreamext.GetBatch(ctx, s.js, st.CachedInfo().Config.Name, s.readBatchSz,
			jetstreamext.GetBatchSubject(subject), jetstreamext.GetBatchSeq(seq))
		if err != nil {
			return err
		}
		n, ended, pending := 0, false, ""
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				ended = true
				break
			}
			if err != nil {
				return err
			}
			n++
			pending = m.Header.Get(hdrNumPending)
			more, err := fn(m)
			if err != nil || !more {
				return err
			}
			seq = m.Sequence + 1
		}
		switch {
		case n == s.readBatchSz:
			continue
		case ended || (n > 0 && pending == "0"):
			return nil
		}
		// The answer stopped before its end: the request ran out of time, which the
		// batch reader reports as a quiet end. A short read must never pass for the
		// whole stream (an aggregate missing its last events, or "not found").
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%w: batch read of %s stopped after %d commits, %s more pending", ErrUnavailable, subject, n, cmp.Or(pending, "unknown"))
	}
}

// commitEvents decodes one commit message into events with stream, versions and
// positions set.
func commitEvents(stream string, hdr nats.Header, data []byte, seq uint64) ([]Event, error) {
	if stream == "" {
		stream = hdr.Get(hdrStream)
	}
	first, n, err := commitHeaders(hdr, stream)
	if err != nil {
		return nil, err
	}
	evs, err := decodeCommit(data)
	if err != nil {
		return nil, err
	}
	if len(evs) != n {
		return nil, fmt.Errorf("%w: %s at sequence %d holds %d events, header says %d", errCorruptCommit, stream, seq, len(evs), n)
	}
	for i := range evs {
		evs[i].Stream = stream
		evs[i].Version = first + Version(i)
		evs[i].Position = Position(seq<<16 | uint64(i))
	}
	return evs, nil
}

// scan delivers the messages of filter from sequence start, in order, to fn until fn
// returns false or an error, or ctx ends. It reads with an ordered consumer through a
// jspull.Iterator, which replaces the consumer, from after the last message read,
// when it has been idle for scanIdle (see package jspull for why).
func (s *JetStream) scan(ctx context.Context, st jetstream.Stream, filter string, start uint64, fn func(m jetstream.Msg, seq uint64) (bool, error)) error {
	// Both are touched only by open, which runs in this goroutine (from New, then
	// from the iterator's Next).
	next := max(start, 1)
	var cons jetstream.Consumer
	open := func() (jetstream.MessagesContext, error) {
		s.dropConsumer(st, cons)
		c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			FilterSubjects:    []string{filter},
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       next,
			InactiveThreshold: time.Minute,
		})
		if err != nil {
			return nil, err
		}
		cons = c
		return c.Messages(jetstream.PullMaxMessages(s.readBatchSz))
	}
	it, err := jspull.New(s.scanIdle, open)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer func() {
		it.Stop()
		s.dropConsumer(st, cons)
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		next = meta.Sequence.Stream + 1
		more, err := fn(m, meta.Sequence.Stream)
		if err != nil || !more {
			return err
		}
	}
}

// dropConsumer deletes a scan's ordered consumer (nil: none), off the caller's path:
// a stopped one would otherwise live on the server until its InactiveThreshold, and
// frequent aggregate loads would pile them up.
func (s *JetStream) dropConsumer(st jetstream.Stream, cons jetstream.Consumer) {
	if cons == nil {
		return
	}
	if info := cons.CachedInfo(); info != nil {
		go func(name string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = st.DeleteConsumer(ctx, name)
		}(info.Name)
	}
}

// ReadCategory implements Store.ReadCategory; it returns the errors documented there,
// plus wrapped JetStream errors.
func (s *JetStream) ReadCategory(ctx context.Context, category string, after Position, limit int) ([]Event, error) {
	evs, err := s.readCategory(ctx, category, after, limit)
	return evs, s.unavailable(ctx, err)
}

func (s *JetStream) readCategory(ctx context.Context, category string, after Position, limit int) ([]Event, error) {
	if err := ValidateCategory(category); err != nil {
		return nil, err
	}
	st, err := s.stream(ctx, category, false)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventstore: read category %s: %w", category, err)
	}
	lastSeq := info.State.LastSeq
	startSeq := uint64(after) >> 16
	if info.State.Msgs == 0 || startSeq > lastSeq {
		return nil, nil
	}
	var out []Event
	err = s.scan(ctx, st, category+".events.>", startSeq, func(m jetstream.Msg, seq uint64) (bool, error) {
		evs, err := commitEvents("", m.Headers(), m.Data(), seq)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Position <= after {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				return false, nil
			}
		}
		return seq < lastSeq, nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: read category %s: %w", category, err)
	}
	return out, nil
}

// SubscribeCategory implements Store.SubscribeCategory; it returns the errors
// documented there, plus wrapped JetStream errors. It creates the category's stream if
// needed, then follows it with an ordered consumer, which JetStream recreates from the
// last delivered sequence after a gap or reconnect.
func (s *JetStream) SubscribeCategory(ctx context.Context, category string, after Position, h Handler) error {
	if err := ValidateCategory(category); err != nil {
		return err
	}
	st, err := s.stream(ctx, category, true)
	if err != nil {
		return err
	}
	err = s.scan(ctx, st, category+".events.>", uint64(after)>>16, func(m jetstream.Msg, seq uint64) (bool, error) {
		evs, err := commitEvents("", m.Headers(), m.Data(), seq)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Position <= after {
				continue
			}
			if err := handle(ctx, h, e); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}
