package store

import (
	"context"
	"database/sql"
	"strconv"
)

// dialect holds what the engines do differently, side by side. Everything else is one SQL text for both.
type dialect struct {
	// param writes the nth (1-based) query parameter. SQLite reads "$N" as a name and looks every name up
	// in a list, which costs a quadratic time on the many-row statements of the event log; "?" costs none.
	param func(n int) string
	// forUpdate locks the rows a SELECT reads until the transaction ends; SQLite needs no lock (one writer).
	forUpdate string
	// skipLocked claims rows no other transaction holds, skipping those it does: how workers on several
	// nodes share a queue table. SQLite has one writer: nothing to skip.
	skipLocked string
	// lockEventLog serialises appends to the event log for the rest of the transaction.
	lockEventLog func(ctx context.Context, tx *sql.Tx) error
	// touchToken reads a touch event's token out of its payload, in the database.
	touchToken string
	// eventInserter prepares what appending to the event log inserts with, outside a transaction.
	eventInserter func(ctx context.Context, db *DB) (eventInserter, error)
}

var sqliteDialect = dialect{
	param: func(int) string { return "?" },
	// SQLite has one writer at a time already: the write connection, in a BEGIN IMMEDIATE transaction.
	lockEventLog:  func(context.Context, *sql.Tx) error { return nil },
	touchToken:    `coalesce(json_extract(payload, '$.properties.token'), '')`,
	eventInserter: sqliteEventInserter,
}

// eventLogLock is the PostgreSQL advisory lock key that serialises event log appends across Hearth nodes.
const eventLogLock = 7_263_871_002

var postgresDialect = dialect{
	param:      func(n int) string { return "$" + strconv.Itoa(n) },
	forUpdate:  " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	lockEventLog: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, eventLogLock)
		return err
	},
	touchToken:    `coalesce(payload->'properties'->>'token', '')`,
	eventInserter: postgresEventInserter,
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
