package store

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"

	"github.com/hearth-cdp/hearth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, &hearth.Error{Kind: hearth.Invalid, Op: "store.open", Msg: "The PostgreSQL URL is not valid.", Err: err}
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(20)
	pool.SetMaxIdleConns(10)
	db := &DB{engine: Postgres, write: pool, eventLog: pool, read: pool, graph: pool, mapErr: mapPostgresError, logger: discardLogger, dialect: postgresDialect, dedupe: sqlDedupe{}}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, &hearth.Error{Kind: hearth.Unavailable, Op: "store.open", Msg: fmt.Sprintf("Cannot connect to PostgreSQL at %s.", RedactURL(url)), Err: err}
	}
	return db, nil
}

func mapPostgresError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Code {
	case "23505": // unique_violation
		return &hearth.Error{Kind: hearth.Conflict, Err: err}
	case "40001", "40P01", "53300", "57P03": // serialization failure, deadlock, too many connections, starting up
		return &hearth.Error{Kind: hearth.Unavailable, Msg: "The database is busy; try again.", Err: err}
	}
	return nil
}

// RedactURL hides the password in a database URL so that it can be printed or logged.
func RedactURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	// pgx also takes the password from the query string.
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}
