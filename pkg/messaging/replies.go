package messaging

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Reply is the event a command handler answers a command with, published on Subject.
type Reply struct {
	Subject string
	Msg     proto.Message
}

// Replies gives a command handler exactly-once effects with a resendable answer: it
// stores the handler's reply, keyed by the command's id, in the same SQL transaction
// as the handler's effects, so a redelivered command gets the very reply it got the
// first time instead of running again. The table of replies is the command inbox: a
// command is handled if and only if its reply is stored. (It once kept an Inbox
// record beside each reply as well: a second index written per command, with
// nothing to say that the reply's key did not.) Its SQL runs unchanged on SQLite
// and PostgreSQL.
type Replies struct {
	table   string
	migrate string
	insert  string
	load    string
	prune   string
}

// Querier is what Replies reads a stored reply through: *sql.DB, *sql.Tx or a
// wrapper embedding one of them.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// NewReplies returns the replies stored in table. It panics if table is not a plain
// SQL identifier: names are fixed at wiring time.
func NewReplies(table string) *Replies {
	if !identifier.MatchString(table) {
		panic(fmt.Sprintf("messaging: replies table %q is not a plain identifier", table))
	}
	return &Replies{
		table: table,
		// Payloads are base64 TEXT: the one column type both dialects read back byte
		// for byte. Times are Unix microseconds.
		migrate: `CREATE TABLE IF NOT EXISTS ` + table + ` (
	command_id  TEXT PRIMARY KEY,
	subject     TEXT NOT NULL,
	type        TEXT NOT NULL,
	payload     TEXT NOT NULL,
	create_time BIGINT NOT NULL
)`,
		insert: `INSERT INTO ` + table + ` (command_id, subject, type, payload, create_time)
	VALUES ($1, $2, $3, $4, $5)`,
		load:  `SELECT subject, type, payload FROM ` + table + ` WHERE command_id = $1`,
		prune: `DELETE FROM ` + table + ` WHERE create_time < $1`,
	}
}

// Table is the replies table name.
func (r *Replies) Table() string { return r.table }

// Schema is the statement that creates the replies table if it does not exist, for
// a versioned migration.
func (r *Replies) Schema() string { return r.migrate }

// Migrate creates the replies table if it does not exist. It returns the database
// error.
func (r *Replies) Migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, r.migrate); err != nil {
		return fmt.Errorf("messaging: migrate replies %s: %w", r.table, err)
	}
	return nil
}

// Execute runs fn inside tx the first time commandID is seen and stores its reply in
// tx; for a command seen before it skips fn and returns the stored reply. It returns
// fn's error or the database or encoding error; the caller rolls tx back on any
// error. Two transactions executing one command at once (on PostgreSQL, two
// instances given the same redelivered command) both run fn, and the second to
// store its reply fails on the table's key and rolls back, fn's work with it: run
// again, it finds the first one's reply.
func (r *Replies) Execute(ctx context.Context, tx *sql.Tx, commandID string, fn func(ctx context.Context) (Reply, error)) (Reply, error) {
	reply, ok, err := r.Load(ctx, tx, commandID)
	if err != nil || ok {
		return reply, err
	}
	reply, err = fn(ctx)
	if err != nil {
		return Reply{}, err
	}
	if err := r.save(ctx, tx, commandID, reply); err != nil {
		return Reply{}, err
	}
	return reply, nil
}

func (r *Replies) save(ctx context.Context, tx *sql.Tx, commandID string, reply Reply) error {
	b, err := proto.Marshal(reply.Msg)
	if err != nil {
		return fmt.Errorf("marshal reply to %s: %w", commandID, err)
	}
	_, err = tx.ExecContext(ctx, r.insert, commandID, reply.Subject, string(reply.Msg.ProtoReflect().Descriptor().FullName()),
		base64.StdEncoding.EncodeToString(b), time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("save reply to %s: %w", commandID, err)
	}
	return nil
}

// Load returns the reply stored for commandID and whether there is one. The reply's
// message type must be linked into the binary (protoregistry.GlobalTypes). It returns
// the database error or the decoding error.
func (r *Replies) Load(ctx context.Context, q Querier, commandID string) (Reply, bool, error) {
	var subject, typ, payload string
	err := q.QueryRowContext(ctx, r.load, commandID).Scan(&subject, &typ, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return Reply{}, false, nil
	}
	if err != nil {
		return Reply{}, false, fmt.Errorf("load reply to %s: %w", commandID, err)
	}
	msg, err := decodeReply(commandID, typ, payload)
	if err != nil {
		return Reply{}, false, err
	}
	return Reply{Subject: subject, Msg: msg}, true, nil
}

func decodeReply(commandID, typ, payload string) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
	if err != nil {
		return nil, fmt.Errorf("reply to %s has unknown type %s: %w", commandID, typ, err)
	}
	b, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("decode reply to %s: %w", commandID, err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(b, msg); err != nil {
		return nil, fmt.Errorf("unmarshal reply to %s: %w", commandID, err)
	}
	return msg, nil
}

// Prune forgets the commands processed before before, with their replies. A command
// resent after that is handled as new, so keep them longer than any redelivery or
// retry can take. It returns how many it forgot and the database error.
func (r *Replies) Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	res, err := db.ExecContext(ctx, r.prune, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("messaging: prune replies %s: %w", r.table, err)
	}
	return res.RowsAffected()
}

// Rows is what Replies reads several stored replies through: *sql.DB, *sql.Tx or a
// wrapper embedding one of them.
type Rows interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// LoadMany returns the replies stored for those of commandIDs that have one, by
// command id, in one query. It returns the database error or a decoding error.
func (r *Replies) LoadMany(ctx context.Context, q Rows, commandIDs []string) (map[string]Reply, error) {
	out := make(map[string]Reply)
	if len(commandIDs) == 0 {
		return out, nil
	}
	var in strings.Builder
	args := make([]any, len(commandIDs))
	for i, id := range commandIDs {
		if i > 0 {
			in.WriteString(", ")
		}
		fmt.Fprintf(&in, "$%d", i+1)
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT command_id, subject, type, payload FROM `+r.table+` WHERE command_id IN (`+in.String()+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("load replies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, subject, typ, payload string
		if err := rows.Scan(&id, &subject, &typ, &payload); err != nil {
			return nil, fmt.Errorf("load replies: %w", err)
		}
		msg, err := decodeReply(id, typ, payload)
		if err != nil {
			return nil, err
		}
		out[id] = Reply{Subject: subject, Msg: msg}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load replies: %w", err)
	}
	return out, nil
}
