package store

import (
	"context"
	"database/sql"
	"hash/fnv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// dedupeKey is the 64-bit FNV-1a hash of a source and message id: the compact key that the dedupe index
// holds. Matches are compared in full, so collisions cost a row read, never an event.
func dedupeKey(sourceID, messageID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(sourceID))
	h.Write([]byte{0})
	h.Write([]byte(messageID))
	return int64(h.Sum64())
}

const eventColumns = `seq, source_id, message_id, type, name, user_id, anonymous_id, timestamp, received_at, bot, payload`

const insertEventColumns = `dedupe_key, source_id, message_id, type, name, user_id, anonymous_id, timestamp, received_at, bot, payload`

// insertEventsSQL is a multi-row INSERT of rows events in the engine's parameter style.
func (db *DB) insertEventsSQL(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (` + insertEventColumns + `) VALUES `)
	const cols = 11
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(db.dialect.param(r*cols + c + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// prepared returns a statement prepared once on the event log's writer and kept under key: parsing a
// statement costs more than running it (an upsert's parse took a fifth of a small commit), and so does
// building the text of one with hundreds of parameters, which query does only the first time.
func (db *DB) prepared(ctx context.Context, key any, query func() string) (*sql.Stmt, error) {
	return db.preparedOn(ctx, db.eventLog, key, query)
}

// writeStmtKey keys a statement of derivedStmtTx's transactions, prepared on the state's writer.
type writeStmtKey string

// preparedOn is prepared on another pool: the state's writer, for derivedStmtTx's statements.
func (db *DB) preparedOn(ctx context.Context, pool *sql.DB, key any, query func() string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(key); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := pool.PrepareContext(ctx, query())
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(key, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// rowsPerInsert bounds a multi-row INSERT: few statements per batch, well under both engines' parameter limits.
const rowsPerInsert = 64

// logBatch is a batch bound for the event log with its rows: made by newLogBatch in the request's goroutine,
// beside the other requests', so that the one writer only checks, binds and commits.
type logBatch struct {
	*collect.Batch
	rows []eventRow // one per event
}

// eventRow is an event with its deduplication key and, on SQLite, the values its row binds, times already
// formatted: the driver formats a time.Time in the writer's goroutine, a tenth of its time under load.
type eventRow struct {
	key    int64
	source string
	event  *collect.Event
	values []any // SQLite: the columns of insertEventColumns
}

func (db *DB) newLogBatch(b *collect.Batch) logBatch {
	rows := make([]eventRow, len(b.Events))
	for i := range b.Events {
		e := &b.Events[i]
		r := eventRow{key: dedupeKey(b.SourceID, e.MessageID), source: b.SourceID, event: e}
		if db.engine == SQLite {
			r.values = []any{r.key, b.SourceID, e.MessageID, e.Type, e.Name, e.UserID, e.AnonymousID,
				sqliteTime(e.Timestamp), sqliteTime(e.ReceivedAt), e.Bot, string(e.Payload)}
		}
		rows[i] = r
	}
	return logBatch{Batch: b, rows: rows}
}

// sqliteTime is a time as the SQLite driver binds a time.Time (its String), so that stored times compare
// with those that queries bind; without a monotonic clock reading, which String would append.
func sqliteTime(t time.Time) string { return t.Round(0).String() }

// appendBatches writes batches to the event log in one transaction: deduplicates against the window and
// within the transaction, inserts, records rejections and per-source counts. Appends are serialised (one
// writer on SQLite, an advisory lock on PostgreSQL), so log order is commit order and readers that follow
// offsets never skip an event committed late.
//
// held is how long the transaction held the writer, from its start to its commit, without the wait for it,
// and how long the commit took.
func (db *DB) appendBatches(ctx context.Context, batches []logBatch, dedupeSince time.Time) (results []collect.AppendResult, held WriteTimes, err error) {
	const op = "store.append_events"
	results = make([]collect.AppendResult, len(batches))
	// Prepared before the transaction: on SQLite the transaction holds the one write connection.
	insert, err := db.dialect.eventInserter(ctx, db)
	if err != nil {
		return nil, WriteTimes{}, db.wrap(op, err)
	}
	countSources, err := db.prepared(ctx, upsertSourceStatsKey{}, func() string { return upsertSourceStats })
	if err != nil {
		return nil, WriteTimes{}, db.wrap(op, err)
	}
	var began, committing time.Time
	var (
		newKeys  []int64
		newTimes []time.Time
		lastSeq  int64
	)
	err = db.runTx(op, func() (*sql.Tx, error) { return db.eventLog.BeginTx(ctx, nil) }, func(tx *sql.Tx) error {
		began = time.Now()
		if err := db.dialect.lockEventLog(ctx, tx); err != nil {
			return db.wrap(op, err)
		}
		type msg struct{ source, id string }
		var keys []int64
		for _, b := range batches {
			for _, r := range b.rows {
				keys = append(keys, r.key)
			}
		}
		seen := make(map[msg]bool)
		if err := db.dedupe.existing(ctx, tx, keys, dedupeSince, func(source, id string) { seen[msg{source, id}] = true }); err != nil {
			return db.wrap(op, err)
		}
		type counts struct {
			accepted, duplicates, rejected int
			last                           time.Time
		}
		stats := map[string]*counts{}
		rows := make([]eventRow, 0, len(keys))
		newKeys, newTimes = newKeys[:0], newTimes[:0]
		for bi, b := range batches {
			c := stats[b.SourceID]
			if c == nil {
				c = &counts{}
				stats[b.SourceID] = c
			}
			if b.ReceivedAt.After(c.last) {
				c.last = b.ReceivedAt
			}
			c.rejected += len(b.Rejected)
			for _, r := range b.rows {
				e := r.event
				m := msg{b.SourceID, e.MessageID}
				if seen[m] {
					results[bi].Duplicates++
					c.duplicates++
					continue
				}
				seen[m] = true
				results[bi].Accepted++
				c.accepted++
				newKeys, newTimes = append(newKeys, r.key), append(newTimes, e.ReceivedAt)
				rows = append(rows, r)
			}
			for _, r := range b.Rejected {
				if _, err := tx.ExecContext(ctx, `INSERT INTO rejected_events (source_id, received_at, reason, payload) VALUES ($1, $2, $3, $4)`,
					b.SourceID, b.ReceivedAt, r.Reason, string(r.Payload)); err != nil {
					return db.wrap(op, err)
				}
			}
		}
		if len(rows) > 0 {
			var err error
			if lastSeq, err = insert(ctx, tx, rows); err != nil {
				return db.wrap(op, err)
			}
		}
		countSources := tx.StmtContext(ctx, countSources)
		for source, c := range stats {
			if _, err := countSources.ExecContext(ctx, source, c.accepted, c.duplicates, c.rejected, c.last); err != nil {
				return db.wrap(op, err)
			}
		}
		committing = time.Now()
		return nil
	})
	if !began.IsZero() {
		held.Held = time.Since(began)
	}
	if !committing.IsZero() {
		held.Commit = time.Since(committing)
	}
	if err == nil && len(newKeys) > 0 {
		db.dedupe.added(newKeys, lastSeq-int64(len(newKeys))+1, newTimes, dedupeSince)
	}
	return results, held, err
}

// eventInserter inserts rows into the event log in a transaction and returns the seq of the last, when the
// engine tells it cheaply (0 when not: only SQLite's in-memory deduplication needs it).
type eventInserter func(ctx context.Context, tx *sql.Tx, rows []eventRow) (lastSeq int64, err error)

// sqliteEventInserter inserts with multi-row INSERTs prepared once, of 64, 32, 16, … 1 rows: a group commit
// of single events (29 on average under 256 clients) takes a few statements rather than one per event.
func sqliteEventInserter(ctx context.Context, db *DB) (eventInserter, error) {
	var stmts []*sql.Stmt // of 64 rows, then 32, … 1
	for n := rowsPerInsert; n >= 1; n /= 2 {
		st, err := db.prepared(ctx, insertEventsKey(n), func() string { return db.insertEventsSQL(n) })
		if err != nil {
			return nil, err
		}
		stmts = append(stmts, st)
	}
	return func(ctx context.Context, tx *sql.Tx, rows []eventRow) (int64, error) {
		args := make([]any, 0, rowsPerInsert*11)
		inTx := make([]*sql.Stmt, len(stmts))
		var last sql.Result
		for len(rows) > 0 {
			i := 0
			for rowsPerInsert>>i > len(rows) {
				i++
			}
			n := rowsPerInsert >> i
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r.values...)
			}
			if inTx[i] == nil {
				inTx[i] = tx.StmtContext(ctx, stmts[i])
			}
			var err error
			if last, err = inTx[i].ExecContext(ctx, args...); err != nil {
				return 0, err
			}
			rows = rows[n:]
		}
		// Rows appended by one writer get consecutive seqs: the last one tells them all.
		return last.LastInsertId()
	}, nil
}

// postgresEventInserter inserts all rows in one statement, each column sent as one array: PostgreSQL
// parses and plans one statement per commit, whatever its size.
func postgresEventInserter(context.Context, *DB) (eventInserter, error) {
	return func(ctx context.Context, tx *sql.Tx, rows []eventRow) (int64, error) {
		n := len(rows)
		var (
			keys                                     = make([]int64, n)
			sources, ids, types, names, users, anons = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			stamps, received                         = make([]time.Time, n), make([]time.Time, n)
			bots                                     = make([]bool, n)
			payloads                                 = make([]string, n)
		)
		for i, r := range rows {
			e := r.event
			keys[i], sources[i], ids[i], types[i], names[i], users[i], anons[i] = r.key, r.source, e.MessageID, e.Type, e.Name, e.UserID, e.AnonymousID
			stamps[i], received[i], bots[i], payloads[i] = e.Timestamp, e.ReceivedAt, e.Bot, string(e.Payload)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO events (`+insertEventColumns+`)
			SELECT k, s, m, t, n, u, a, ts, r, b, p::jsonb
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $10::bool[], $11::text[])
				AS x(k, s, m, t, n, u, a, ts, r, b, p)`,
			keys, sources, ids, types, names, users, anons, stamps, received, bots, payloads)
		return 0, err
	}, nil
}

// LoadDedupe prepares deduplication from the log; the event writer calls it before its first append.
func (db *DB) LoadDedupe(ctx context.Context, window time.Duration) error {
	return db.dedupe.load(ctx, db, db.clock.Now().Add(-window))
}

// SaveDedupe keeps the deduplication index for the next start (SQLite: a file in the data folder), so that
// the next LoadDedupe reads only the events logged since. Call it when no more appends come.
func (db *DB) SaveDedupe(window time.Duration) error {
	return db.dedupe.save(db.clock.Now().Add(-window))
}

// SaveDedupeLater takes the deduplication index as it is now and returns what saves it, to be run on another
// goroutine while appends go on (nil: this engine keeps nothing). Call it where appends are made, and let a
// save finish before the next starts.
func (db *DB) SaveDedupeLater(window time.Duration) func() error {
	return db.dedupe.saveLater(db.clock.Now().Add(-window))
}

type (
	insertEventsKey      int // rows
	upsertSourceStatsKey struct{}
)

const upsertSourceStats = `INSERT INTO source_stats (source_id, accepted, duplicates, rejected, last_event_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source_id) DO UPDATE SET
	accepted = source_stats.accepted + excluded.accepted,
	duplicates = source_stats.duplicates + excluded.duplicates,
	rejected = source_stats.rejected + excluded.rejected,
	last_event_at = CASE WHEN source_stats.last_event_at IS NULL OR excluded.last_event_at > source_stats.last_event_at
		THEN excluded.last_event_at ELSE source_stats.last_event_at END`

func scanEvent(row interface{ Scan(...any) error }) (collect.Event, error) {
	var e collect.Event
	var payload string
	err := row.Scan(&e.Seq, &e.SourceID, &e.MessageID, &e.Type, &e.Name, &e.UserID, &e.AnonymousID, &e.Timestamp, &e.ReceivedAt, &e.Bot, &payload)
	e.Timestamp, e.ReceivedAt, e.Payload = e.Timestamp.UTC(), e.ReceivedAt.UTC(), []byte(payload)
	return e, err
}

func (db *DB) queryEvents(ctx context.Context, op, query string, args ...any) ([]collect.Event, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, db.wrap(op, err)
	}
	defer rows.Close()
	var out []collect.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, db.wrap(op, err)
		}
		if len(out)%256 == 255 { // consumers read thousands at a time
			giveWay()
		}
		out = append(out, e)
	}
	return out, db.wrap(op, rows.Err())
}

// ReadEvents returns up to limit events after the offset, in log order: how consumers read the log.
func (db *DB) ReadEvents(ctx context.Context, after int64, limit int) ([]collect.Event, error) {
	return db.queryEvents(ctx, "store.read_events", `SELECT `+eventColumns+` FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
}

// LogHead is the offset of the newest event, 0 for an empty log.
func (db *DB) LogHead(ctx context.Context) (int64, error) {
	var head sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&head)
	return head.Int64, db.wrap("store.log_head", err)
}

// ConsumerOffset is how far a consumer has read; 0 for one that never read.
func (db *DB) ConsumerOffset(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := db.read.QueryRowContext(ctx, `SELECT position FROM consumer_offsets WHERE name = $1`, name).Scan(&pos)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return pos, db.wrap("store.consumer_offset", err)
}

// SetConsumerOffset records how far a consumer has read.
func (db *DB) SetConsumerOffset(ctx context.Context, name string, pos int64) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`, name, pos, db.clock.Now())
	return db.wrap("store.set_consumer_offset", err)
}

// SetEventAside moves a consumer's offset from after to seq, past the event at seq that it failed on, and
// records why; a Conflict, changing nothing, when the offset is no longer at after.
func (db *DB) SetEventAside(ctx context.Context, consumer string, after, seq int64, reason string) error {
	const op = "store.set_event_aside"
	now := db.clock.Now()
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`, consumer, now); err != nil {
			return db.wrap(op, err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE consumer_offsets SET position = $1, updated_at = $2 WHERE name = $3 AND position = $4`, seq, now, consumer, after)
		if err != nil {
			return db.wrap(op, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "The consumer has moved on.", Err: err}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO set_aside_events (consumer, seq, reason, set_aside_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (consumer, seq) DO UPDATE SET reason = excluded.reason, set_aside_at = excluded.set_aside_at`, consumer, seq, reason, now)
		return db.wrap(op, err)
	})
}

// SetAsideEvents returns how many events a consumer has set aside, and the latest limit of them, newest first.
func (db *DB) SetAsideEvents(ctx context.Context, consumer string, limit int) (int64, []collect.SetAsideEvent, error) {
	const op = "store.set_aside_events"
	var n int64
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM set_aside_events WHERE consumer = $1`, consumer).Scan(&n); err != nil || n == 0 || limit <= 0 {
		return n, nil, db.wrap(op, err)
	}
	var out []collect.SetAsideEvent
	err := scanOn(ctx, db.read, `SELECT seq, reason, set_aside_at FROM set_aside_events WHERE consumer = $1 ORDER BY seq DESC LIMIT $2`,
		[]any{consumer, limit}, func(row *sql.Rows) error {
			e := collect.SetAsideEvent{Consumer: consumer}
			if err := row.Scan(&e.Seq, &e.Reason, &e.At); err != nil {
				return err
			}
			e.At = e.At.UTC()
			out = append(out, e)
			return nil
		})
	return n, out, db.wrap(op, err)
}

// debuggerScan bounds how many log entries one debugger read looks through, so that watching a quiet source
// beside a busy one stays cheap.
const debuggerScan = 20000

// SourceEvents returns a source's events for the live debugger: with after = 0 its latest ones (newest
// first, looking back over the latest entries of the log), else those after the cursor (oldest first). The
// returned cursor is where the next read should start.
func (db *DB) SourceEvents(ctx context.Context, sourceID string, after int64, limit int) ([]collect.Event, int64, error) {
	const op = "store.source_events"
	head, err := db.LogHead(ctx)
	if err != nil {
		return nil, 0, err
	}
	if after <= 0 {
		evs, err := db.queryEvents(ctx, op, `SELECT `+eventColumns+` FROM events WHERE seq > $1 AND source_id = $2 ORDER BY seq DESC LIMIT $3`,
			head-debuggerScan, sourceID, limit)
		return evs, head, err
	}
	upto := min(head, after+debuggerScan)
	evs, err := db.queryEvents(ctx, op, `SELECT `+eventColumns+` FROM events WHERE seq > $1 AND seq <= $2 AND source_id = $3 ORDER BY seq LIMIT $4`,
		after, upto, sourceID, limit)
	if err == nil && len(evs) == limit {
		upto = evs[len(evs)-1].Seq
	}
	return evs, max(upto, after), err
}

// SourceRejections returns a source's refused events after a cursor (0: the latest ones), newest first.
func (db *DB) SourceRejections(ctx context.Context, sourceID string, after int64, limit int) ([]collect.RejectedEvent, error) {
	const op = "store.source_rejections"
	rows, err := db.read.QueryContext(ctx, `SELECT id, source_id, received_at, reason, payload FROM rejected_events
		WHERE source_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3`, sourceID, after, limit)
	if err != nil {
		return nil, db.wrap(op, err)
	}
	defer rows.Close()
	var out []collect.RejectedEvent
	for rows.Next() {
		var r collect.RejectedEvent
		if err := rows.Scan(&r.ID, &r.SourceID, &r.ReceivedAt, &r.Reason, &r.Payload); err != nil {
			return nil, db.wrap(op, err)
		}
		r.ReceivedAt = r.ReceivedAt.UTC()
		out = append(out, r)
	}
	return out, db.wrap(op, rows.Err())
}

// AllSourceStats returns the counts of every source that has sent anything.
func (db *DB) AllSourceStats(ctx context.Context) (map[string]collect.SourceStats, error) {
	const op = "store.source_stats"
	rows, err := db.read.QueryContext(ctx, `SELECT source_id, accepted, duplicates, rejected, last_event_at FROM source_stats`)
	if err != nil {
		return nil, db.wrap(op, err)
	}
	defer rows.Close()
	out := map[string]collect.SourceStats{}
	for rows.Next() {
		var id string
		var s collect.SourceStats
		var last sql.NullTime
		if err := rows.Scan(&id, &s.Accepted, &s.Duplicates, &s.Rejected, &last); err != nil {
			return nil, db.wrap(op, err)
		}
		s.LastEventAt = nullTime(last)
		out[id] = s
	}
	return out, db.wrap(op, rows.Err())
}

// retentionChunk bounds one retention delete, so that it never holds the writer for long.
const retentionChunk = 5000

// DeleteEventsBefore removes events received before cutoff, oldest first, in small transactions, and
// rejected events older than rejectedCutoff. It returns how many events it removed. The newest event always
// stays: the log's positions, where consumers' offsets point, must never start over, and SQLite gives a new
// row the seq after the largest one left.
func (db *DB) DeleteEventsBefore(ctx context.Context, cutoff, rejectedCutoff time.Time) (int64, error) {
	const op = "store.delete_events"
	head, err := db.LogHead(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		// seq follows arrival closely, so the oldest rows are the expired ones: find where they end by
		// walking from the start, which only ever reads rows about to be deleted.
		var first, boundary sql.NullInt64
		if err := db.read.QueryRowContext(ctx, `SELECT min(seq) FROM events`).Scan(&first); err != nil {
			return total, db.wrap(op, err)
		}
		if !first.Valid {
			break
		}
		err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM (SELECT seq FROM events WHERE seq < $1 AND received_at < $2 ORDER BY seq LIMIT $3) expired`,
			min(first.Int64+retentionChunk, head), cutoff, retentionChunk).Scan(&boundary)
		if err != nil {
			return total, db.wrap(op, err)
		}
		if !boundary.Valid {
			break
		}
		res, err := db.eventLog.ExecContext(ctx, `DELETE FROM events WHERE seq <= $1 AND received_at < $2`, boundary.Int64, cutoff)
		if err != nil {
			return total, db.wrap(op, err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n == 0 {
			break
		}
	}
	_, err = db.eventLog.ExecContext(ctx, `DELETE FROM rejected_events WHERE received_at < $1`, rejectedCutoff)
	return total, db.wrap(op, err)
}
