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
	// param writes the nth (1-based) query parameter. SQLite reads "$N" as a name and looks every name up
	// in a list, which costs a quadratic time on the many-row statements of the event log; "?" costs none.
	param func(n int) string
	// forUpdate locks the rows a SELECT reads until the transaction ends; SQLite needs no lock (one writer).
	forUpdate string
	// lockEventLog serialises appends to the event log for the rest of the transaction.
	lockEventLog func(ctx context.Context, tx *sql.Tx) error
	// existingMessages calls found for each event already in the log with one of the dedupe keys, received
	// after since.
	existingMessages func(ctx context.Context, tx *sql.Tx, keys []int64, since time.Time, found func(source, id string)) error
}

var sqliteDialect = dialect{
	param: func(int) string { return "?" },
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
			q := `SELECT source_id, message_id FROM events WHERE received_at > ? AND dedupe_key IN (` + strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`
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
	param:     func(n int) string { return "$" + strconv.Itoa(n) },
	forUpdate: " FOR UPDATE",
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
