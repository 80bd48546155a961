package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// dialect holds what the engines do differently, side by side. Everything else is one SQL text for both.
type dialect struct {
	// lockEventLog serialises appends to the event log for the rest of the transaction.
	lockEventLog func(ctx context.Context, tx *sql.Tx) error
	// existingMessages calls found for each event already in the log with one of the dedupe keys, received
	// after since.
	existingMessages func(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error
}

var sqliteDialect = dialect{
	// SQLite has one writer at a time already: the write connection, in a BEGIN IMMEDIATE transaction.
	lockEventLog: func(context.Context, *sql.Tx) error { return nil },
	existingMessages: func(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error {
		const chunk = 500
		for len(keys) > 0 {
			n := min(chunk, len(keys))
			args := make([]any, 0, n+1)
			args = append(args, since)
			for _, k := range keys[:n] {
				args = append(args, k)
			}
			q := `SELECT source_id, message_id FROM events WHERE received_at > $1 AND dedupe_key IN (` + placeholders(2, n) + `)`
			if err := scanPairs(ctx, tx, q, args, found); err != nil {
				return err
			}
			keys = keys[n:]
		}
		return nil
	},
}

// eventLogLock is the PostgreSQL advisory lock key that serialises event log appends across Hearth nodes.
const eventLogLock = 7_263_871_002

var postgresDialect = dialect{
	lockEventLog: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLogLock)
		return err
	},
	existingMessages: func(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error {
		if len(keys) == 0 {
			return nil
		}
		return scanPairs(ctx, tx, `SELECT source_id, message_id FROM events WHERE received_at > $1 AND dedupe_key = ANY($2)`, []any{since, keys}, found)
	},
}

func scanPairs(ctx context.Context, tx *sql.Tx, q string, args []any, found func(a, b string)) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return err
		}
		found(a, b)
	}
	return rows.Err()
}

// placeholders returns "$from, $from+1, …" for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}
