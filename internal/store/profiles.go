package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// knownChunk bounds the identifiers or profiles one lookup names, well under both engines' parameter limits.
const knownChunk = 500

// placeholders returns n parameters in the engine's style, numbered from first, comma-separated.
func (db *DB) placeholders(first, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(db.dialect.param(first + i))
	}
	return b.String()
}

// KnownIdentities returns what the graph holds around ids: the profile of each that one holds, and the
// first seq and identifier counts per type of those profiles. A batch of the profile processor asks it once:
// a few queries, one per identifier type and two for the profiles, per 500 values.
func (db *DB) KnownIdentities(ctx context.Context, ids []identity.Identifier) (profile.Known, error) {
	return db.knownIdentities(ctx, db.graph, ids)
}

// KnownIdentitiesAhead is KnownIdentities on a reader: on SQLite beside the writer's transaction in progress
// (which it does not see), where KnownIdentities waits for it.
func (db *DB) KnownIdentitiesAhead(ctx context.Context, ids []identity.Identifier) (profile.Known, error) {
	return db.knownIdentities(ctx, db.read, ids)
}

func (db *DB) knownIdentities(ctx context.Context, conn *sql.DB, ids []identity.Identifier) (profile.Known, error) {
	const op = "store.known_identities"
	k := profile.Known{ProfileOf: map[identity.Identifier]string{}, FirstSeq: map[string]int64{}, Counts: map[string]map[identity.Type]int{},
		Facts: map[string]profile.Facts{}}
	// One query per type (and per chunk of values): both engines find each by the primary key, where SQLite
	// would scan the table for a list of (type, value) pairs.
	byType := map[identity.Type][]any{}
	var types []identity.Type
	for _, id := range ids {
		if _, ok := byType[id.Type]; !ok {
			types = append(types, id.Type)
		}
		byType[id.Type] = append(byType[id.Type], id.Value)
	}
	var profiles []any
	for _, t := range types {
		for values := byType[t]; len(values) > 0; {
			n := min(knownChunk, len(values))
			args := append([]any{string(t)}, values[:n]...)
			values = values[n:]
			err := scanOn(ctx, conn, `SELECT value, profile_id FROM identities WHERE type = `+db.dialect.param(1)+` AND value IN (`+db.placeholders(2, n)+`)`, args, func(row *sql.Rows) error {
				id := identity.Identifier{Type: t}
				var p string
				if err := row.Scan(&id.Value, &p); err != nil {
					return err
				}
				k.ProfileOf[id] = p
				if _, ok := k.Counts[p]; !ok {
					k.Counts[p] = map[identity.Type]int{}
					profiles = append(profiles, p)
				}
				return nil
			})
			giveWay()
			if err != nil {
				return k, db.wrap(op, err)
			}
		}
	}
	for len(profiles) > 0 {
		n := min(knownChunk, len(profiles))
		in := db.placeholders(1, n)
		err := scanOn(ctx, conn, `SELECT id, first_seq, steps, activated_at, converted_at, seen_through FROM profiles WHERE id IN (`+in+`)`, profiles[:n], func(row *sql.Rows) error {
			var p string
			var seq int64
			var steps int
			var f profile.Facts
			var activated, converted sql.NullTime
			err := row.Scan(&p, &seq, &steps, &activated, &converted, &f.SeenThrough)
			f.Steps, f.ActivatedAt, f.ConvertedAt = profile.StepsOfBits(steps), utcOrZero(activated), utcOrZero(converted)
			k.FirstSeq[p] = seq
			k.Facts[p] = f
			return err
		})
		if err == nil {
			err = scanOn(ctx, conn, `SELECT profile_id, `+traitColumns+` FROM profile_traits WHERE profile_id IN (`+in+`) ORDER BY profile_id, name`, profiles[:n], func(row *sql.Rows) error {
				var p string
				t, err := scanTrait(row, &p)
				f := k.Facts[p]
				f.Traits = append(f.Traits, t)
				k.Facts[p] = f
				return err
			})
		}
		if err == nil {
			err = scanOn(ctx, conn, `SELECT profile_id, type, count(*) FROM identities WHERE profile_id IN (`+in+`) GROUP BY profile_id, type`, profiles[:n], func(row *sql.Rows) error {
				var p string
				var t identity.Type
				var c int
				err := row.Scan(&p, &t, &c)
				k.Counts[p][t] = c
				return err
			})
		}
		giveWay()
		if err != nil {
			return k, db.wrap(op, err)
		}
		profiles = profiles[n:]
	}
	return k, nil
}

// scanRows runs a query on the read pool and calls scan for each row.
func (db *DB) scanRows(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	return scanOn(ctx, db.read, query, args, scan)
}

// scanOn runs a query on conn and calls scan for each row.
func scanOn(ctx context.Context, conn *sql.DB, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ApplyProfiles writes what a batch of the log did to the profiles, in the order profile.Changes describes,
// and records how far the consumer has read, in one transaction: a processor that stops in between replays
// the batch from the old offset and writes the same.
func (db *DB) ApplyProfiles(ctx context.Context, consumer string, upto int64, c profile.Changes) error {
	now := db.clock.Now()
	return db.profileTx(ctx, "store.apply_profiles", consumer, c, func(tx *sql.Tx, exec execFunc) error {
		if err := db.applyChanges(exec, c, now); err != nil {
			return err
		}
		return exec(`UPDATE consumer_offsets SET position = $1, updated_at = $2 WHERE name = $3`, upto, now, consumer)
	})
}

// execFunc runs a statement in a transaction. Each is prepared once for the store's writer and kept: parsing it
// again for each of a batch's thousands of rows took half the time of the writes, and parsing the batch's
// statements again for each batch a fifth of the processor's time at 2,000 touches a second (batches of
// about 200). On SQLite a statement is prepared on the writer's pool only between transactions, since a
// transaction holds its one connection.
type execFunc func(q string, args ...any) error

// derivedStmtTx is derivedTx with an execFunc that keeps its statements prepared (see execFunc).
func (db *DB) derivedStmtTx(ctx context.Context, op string, fn func(tx *sql.Tx, exec execFunc) error) error {
	var unprepared []string // statements new to the store, prepared for the next transactions once this one is done
	defer func() {
		for _, q := range unprepared {
			db.preparedOn(ctx, db.write, writeStmtKey(q), func() string { return q }) // one that fails is prepared per transaction
		}
	}()
	return db.derivedTx(ctx, op, func(tx *sql.Tx) error {
		unprepared = unprepared[:0]
		stmts := map[string]*sql.Stmt{}
		exec := func(q string, args ...any) error {
			st := stmts[q]
			if st == nil {
				if shared, ok := db.stmts.Load(writeStmtKey(q)); ok {
					st = tx.StmtContext(ctx, shared.(*sql.Stmt)) // prepared on this connection already: not parsed again
				} else {
					var err error
					if st, err = tx.PrepareContext(ctx, q); err != nil {
						return db.wrap(op, err)
					}
					unprepared = append(unprepared, q)
				}
				stmts[q] = st // closed with the transaction
			}
			_, err := st.ExecContext(ctx, args...)
			giveWay()
			return db.wrap(op, err)
		}
		return fn(tx, exec)
	})
}

// profileTx runs fn in a transaction that writes the profiles: it stands only if the graph is still the one
// c was resolved against, that is, if no other processor moved the consumer's offset from c.From and no
// unmerge finished since c.Unmerges were. The offset's row stays locked until the commit, so that two nodes
// cannot both pass the check.
func (db *DB) profileTx(ctx context.Context, op, consumer string, c profile.Changes, fn func(tx *sql.Tx, exec execFunc) error) error {
	now := db.clock.Now()
	return db.derivedStmtTx(ctx, op, func(tx *sql.Tx, exec execFunc) error {
		if err := exec(`INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`, consumer, now); err != nil {
			return err
		}
		var pos, unmerges int64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM consumer_offsets WHERE name = $1`+db.dialect.forUpdate, consumer).Scan(&pos); err != nil {
			return db.wrap(op, err)
		}
		if pos != c.From {
			return hearth.Errorf(hearth.Conflict, op, "The profile processor's offset moved from %d to %d: another processor stored this batch.", c.From, pos)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM unmerges WHERE done_at IS NOT NULL`).Scan(&unmerges); err != nil {
			return db.wrap(op, err)
		}
		if unmerges != c.Unmerges {
			return hearth.Errorf(hearth.Conflict, op, "An unmerge changed the profiles while the batch was resolved.")
		}
		// A write that breaks a unique key is a fault of the batch, not another node's work: the offset was
		// checked above. As a Conflict, the processor would take it for that and retry it silently forever.
		err := fn(tx, exec)
		if hearth.KindOf(err) == hearth.Conflict {
			return &hearth.Error{Kind: hearth.Internal, Op: op, Msg: "A write of the batch broke a unique key.", Err: err}
		}
		return err
	})
}

// applyChanges writes c in the order profile.Changes describes.
func (db *DB) applyChanges(exec execFunc, c profile.Changes, now time.Time) error {
	rows := make([][]any, 0, len(c.Events))
	through := c.Through()
	// A new profile is inserted with its row as the batch left it, rather than inserted and then updated:
	// with each visitor new, the update was a statement per event.
	inserted := make(map[string]bool, len(c.New))
	for _, p := range c.New {
		u := profile.Update{LastSeen: p.LastSeen}
		if final, ok := c.Updates[p.ID]; ok {
			u, inserted[p.ID] = final, true
			if p.LastSeen.After(u.LastSeen) {
				u.LastSeen = p.LastSeen
			}
		}
		rows = append(rows, []any{p.ID, p.FirstSeq, p.FirstSeen.UTC(), u.LastSeen.UTC(), through, u.Steps.Bits(),
			zeroNull(u.ActivatedAt), zeroNull(u.ConvertedAt), u.Name, profile.NameKey(u.Name), now, now})
	}
	if err := db.insertRows(exec, `INSERT INTO profiles (id, first_seq, first_seen, last_seen, seen_through, steps, activated_at, converted_at, name, name_key, created_at, updated_at) VALUES `, rows, ""); err != nil {
		return err
	}
	rows = rows[:0]
	for _, id := range c.Identities {
		rows = append(rows, []any{string(id.Identifier.Type), id.Identifier.Value, id.Profile, id.FirstSeq})
	}
	if err := db.insertRows(exec, `INSERT INTO identities (type, value, profile_id, first_seq) VALUES `, rows, ""); err != nil {
		return err
	}
	rows = rows[:0]
	for _, e := range c.Events {
		rows = append(rows, []any{e.Seq, e.Profile, e.Name, e.At.UTC()})
	}
	if err := db.insertRows(exec, `INSERT INTO event_profiles (seq, profile_id, name, at) VALUES `, rows, ""); err != nil {
		return err
	}
	for _, m := range c.Merges {
		if err := exec(`UPDATE identities SET profile_id = $1 WHERE profile_id = $2`, m.Into, m.From); err != nil {
			return err
		}
		if err := exec(`UPDATE event_profiles SET profile_id = $1 WHERE profile_id = $2`, m.Into, m.From); err != nil {
			return err
		}
		// The absorbed profile's span of time joins the one that absorbed it: last_seen from both rows and
		// the events that neither row counts yet, now all on the timeline of the one that absorbed it.
		if err := exec(`UPDATE profiles SET
			first_seen = (SELECT min(first_seen) FROM profiles WHERE id IN ($1, $2)),
			last_seen = (SELECT max(t) FROM (SELECT last_seen AS t FROM profiles WHERE id IN ($1, $2) UNION ALL
				SELECT at FROM event_profiles WHERE profile_id = $1 AND seq > (SELECT min(seen_through) FROM profiles WHERE id IN ($1, $2))) AS seen),
			seen_through = $3, updated_at = $4 WHERE id = $1`, m.Into, m.From, through, now); err != nil {
			return err
		}
		// Its touches join those of the profile that absorbed it; its traits were combined by the
		// processor and come in Traits; its stage history ends with it.
		if err := exec(`INSERT INTO profile_touches AS t (profile_id, touchpoint_id, touchpoint, channel, campaign_id, count, first_seq, first_at, last_seq, last_at)
			SELECT $1, touchpoint_id, touchpoint, channel, campaign_id, count, first_seq, first_at, last_seq, last_at FROM profile_touches WHERE profile_id = $2 AND true
			ON CONFLICT (profile_id, touchpoint_id) DO UPDATE SET `+touchCombine, m.Into, m.From); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM profile_touches WHERE profile_id = $1`, `DELETE FROM profile_traits WHERE profile_id = $1`,
			`DELETE FROM stage_changes WHERE profile_id = $1`, `DELETE FROM profiles WHERE id = $1`} {
			if err := exec(q, m.From); err != nil {
				return err
			}
		}
		if err := exec(`INSERT INTO merges (seq, into_profile, from_profile, via_type, via_value, at) VALUES ($1, $2, $3, $4, $5, $6)`,
			m.Seq, m.Into, m.From, string(m.Via.Type), m.Via.Value, m.At.UTC()); err != nil {
			return err
		}
	}
	for _, l := range c.LeftOut {
		if err := exec(`INSERT INTO left_out (seq, type, value, reason) VALUES ($1, $2, $3, $4)`,
			l.Seq, string(l.Identifier.Type), l.Identifier.Value, l.Reason); err != nil {
			return err
		}
	}
	// Touches and traits come one per (profile, touchpoint) and (profile, name): PostgreSQL refuses an
	// upsert that meets the same row twice.
	rows = rows[:0]
	for _, t := range c.Touches {
		rows = append(rows, []any{t.Profile, t.TouchpointID, t.Touchpoint, t.Channel, t.CampaignID, t.Count, t.FirstSeq, t.First.UTC(), t.LastSeq, t.Last.UTC()})
	}
	if err := db.insertRows(exec, `INSERT INTO profile_touches AS t (profile_id, touchpoint_id, touchpoint, channel, campaign_id, count, first_seq, first_at, last_seq, last_at) VALUES `,
		rows, ` ON CONFLICT (profile_id, touchpoint_id) DO UPDATE SET `+touchCombine); err != nil {
		return err
	}
	for _, sc := range c.StageChanges {
		if err := exec(`INSERT INTO stage_changes (profile_id, seq, from_stage, to_stage, at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (profile_id, seq) DO UPDATE SET to_stage = excluded.to_stage, at = excluded.at`,
			sc.Profile, sc.Seq, string(sc.From), string(sc.To), sc.At.UTC()); err != nil {
			return err
		}
	}
	// A trait set again to the value it holds moves only its provenance: an update that leaves value out of
	// its SET leaves the indexes on the value (profile_traits_name, profile_traits_escaped) unwritten.
	rows, same := rows[:0], [][]any(nil)
	for _, t := range c.Traits {
		row := []any{t.Profile, t.Name, string(t.Value), t.SourceID, t.Seq, t.At.UTC()}
		if t.SameValue {
			same = append(same, row)
		} else {
			rows = append(rows, row)
		}
	}
	if err := db.insertRows(exec, `INSERT INTO profile_traits (profile_id, name, value, source_id, seq, at) VALUES `, rows,
		` ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value, source_id = excluded.source_id, seq = excluded.seq, at = excluded.at`); err != nil {
		return err
	}
	if err := db.insertRows(exec, `INSERT INTO profile_traits (profile_id, name, value, source_id, seq, at) VALUES `, same,
		` ON CONFLICT (profile_id, name) DO UPDATE SET source_id = excluded.source_id, seq = excluded.seq, at = excluded.at`); err != nil {
		return err
	}
	for _, id := range sortedKeys(c.Updates) {
		if inserted[id] {
			continue
		}
		u := c.Updates[id]
		switch {
		case u.Row:
			if err := exec(`UPDATE profiles SET `+foldSeen+`, seen_through = $1, steps = $2,
				activated_at = $3, converted_at = $4, name = $5, name_key = $6, updated_at = $7 WHERE id = $8`,
				through, u.Steps.Bits(), zeroNull(u.ActivatedAt), zeroNull(u.ConvertedAt), u.Name, profile.NameKey(u.Name), now, id); err != nil {
				return err
			}
		case u.Seen:
			if err := exec(`UPDATE profiles SET `+foldSeen+`, seen_through = $1, updated_at = $2 WHERE id = $3`, through, now, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// foldSeen sets a profile's last_seen to the latest time of its events, from the row's and from the timeline
// after seen_through (with the batch's events already on it).
const foldSeen = `last_seen = coalesce((SELECT max(at) FROM event_profiles WHERE profile_id = profiles.id AND seq > profiles.seen_through
	AND at > profiles.last_seen), last_seen)`

// seenJoin, after "FROM profiles p", joins as "seen" the profile's latest event after seen_through that is
// later than its stored last_seen, if any: a profile's last_seen is the later of p.last_seen and seen.at (see
// profile.Options.SeenRefresh). Its at is read as a column, where an expression would lose the column's time type.
const seenJoin = ` LEFT JOIN event_profiles seen ON seen.seq = (SELECT e.seq FROM event_profiles e
	WHERE e.profile_id = p.id AND e.seq > p.seen_through AND e.at > p.last_seen ORDER BY e.at DESC LIMIT 1)`

// laterSeen returns stored, or the time of a later event if seenJoin found one.
func laterSeen(stored time.Time, later sql.NullTime) time.Time {
	if later.Valid && later.Time.After(stored) {
		return later.Time.UTC()
	}
	return stored.UTC()
}

// insertRows inserts rows (each with the same number of values) with prefix, "INSERT INTO t (…) VALUES ",
// and suffix (an ON CONFLICT clause, or ""), up to rowsPerInsert at a time: one statement per row cost a batch
// of the processor thousands of statements.
func (db *DB) insertRows(exec execFunc, prefix string, rows [][]any, suffix string) error {
	for len(rows) > 0 {
		n := rowsPerInsert // 64 rows, then 32, 16, … 1: a few statements to keep prepared per table
		for n > len(rows) {
			n /= 2
		}
		var q strings.Builder
		q.WriteString(prefix)
		args := make([]any, 0, n*len(rows[0]))
		for i, r := range rows[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + db.placeholders(len(args)+1, len(r)) + ")")
			args = append(args, r...)
		}
		q.WriteString(suffix)
		if err := exec(q.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// touchCombine adds a profile's touches of a touchpoint to those stored (the row t): counts summed, the
// first and the last touch kept, and the touchpoint's name and campaign of the last touch.
const touchCombine = `count = t.count + excluded.count,
	first_seq = CASE WHEN excluded.first_at < t.first_at THEN excluded.first_seq ELSE t.first_seq END,
	first_at = CASE WHEN excluded.first_at < t.first_at THEN excluded.first_at ELSE t.first_at END,
	touchpoint = CASE WHEN excluded.last_at >= t.last_at THEN excluded.touchpoint ELSE t.touchpoint END,
	channel = CASE WHEN excluded.last_at >= t.last_at THEN excluded.channel ELSE t.channel END,
	campaign_id = CASE WHEN excluded.last_at >= t.last_at THEN excluded.campaign_id ELSE t.campaign_id END,
	last_seq = CASE WHEN excluded.last_at >= t.last_at THEN excluded.last_seq ELSE t.last_seq END,
	last_at = CASE WHEN excluded.last_at >= t.last_at THEN excluded.last_at ELSE t.last_at END`

const traitColumns = `name, value, source_id, seq, at`

func scanTrait(row interface{ Scan(...any) error }, profileID *string) (profile.Trait, error) {
	var t profile.Trait
	var value string
	dest := []any{&t.Name, &value, &t.SourceID, &t.Seq, &t.At}
	if profileID != nil {
		dest = append([]any{profileID}, dest...)
	}
	err := row.Scan(dest...)
	t.Value, t.At = json.RawMessage(value), t.At.UTC()
	return t, err
}

// zeroNull writes a zero time as NULL.
func zeroNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func utcOrZero(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stageOf scans a profile's steps into its stage, the furthest step met: the row keeps the steps alone.
type stageOf struct{ stage *profile.Stage }

func (s stageOf) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("store: a profile's steps are %T, not a number", src)
	}
	*s.stage = profile.StepsOfBits(int(n)).Stage()
	return nil
}

// profileColumns are read FROM profiles p with seenJoin.
const profileColumns = `p.id, p.first_seq, p.first_seen, p.last_seen, seen.at, p.created_at, p.updated_at, p.steps, p.name,
	p.activated_at, p.converted_at`

func scanProfile(row interface{ Scan(...any) error }) (profile.Profile, error) {
	var p profile.Profile
	var later, activated, converted sql.NullTime
	err := row.Scan(&p.ID, &p.FirstSeq, &p.FirstSeen, &p.LastSeen, &later, &p.CreatedAt, &p.UpdatedAt, stageOf{&p.Stage}, &p.Name, &activated, &converted)
	p.FirstSeen, p.LastSeen, p.CreatedAt, p.UpdatedAt = p.FirstSeen.UTC(), laterSeen(p.LastSeen, later), p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	p.ActivatedAt, p.ConvertedAt = utcOrZero(activated), utcOrZero(converted)
	return p, err
}

// Profile returns a profile with its identifiers (by first seq) and its merge history (by seq): the merges
// into it, and those into the profiles it absorbed.
func (db *DB) Profile(ctx context.Context, id string) (profile.Profile, error) {
	const op = "store.profile"
	p, err := scanProfile(db.read.QueryRowContext(ctx, `SELECT `+profileColumns+` FROM profiles p`+seenJoin+` WHERE p.id = $1`, id))
	if err == sql.ErrNoRows {
		return p, notFound(op, "Profile")
	}
	if err != nil {
		return p, db.wrap(op, err)
	}
	if p.Identities, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.Identity, error) {
		var i profile.Identity
		var at sql.NullTime
		err := row.Scan(&i.Identifier.Type, &i.Identifier.Value, &i.Profile, &i.FirstSeq, &at)
		if at.Valid {
			i.FirstAt = at.Time.UTC()
		}
		return i, err
	}, `SELECT i.type, i.value, i.profile_id, i.first_seq, e.at FROM identities i
		LEFT JOIN event_profiles e ON e.profile_id = i.profile_id AND e.seq = i.first_seq
		WHERE i.profile_id = $1 ORDER BY i.first_seq, i.type, i.value`, id); err != nil {
		return p, err
	}
	p.Merges, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.Merge, error) {
		var m profile.Merge
		err := row.Scan(&m.Seq, &m.Into, &m.From, &m.Via.Type, &m.Via.Value, &m.At)
		m.At = m.At.UTC()
		return m, err
	}, `WITH RECURSIVE absorbed (id) AS (
			SELECT CAST($1 AS TEXT)
			UNION SELECT m.from_profile FROM merges m JOIN absorbed a ON m.into_profile = a.id
		)
		SELECT seq, into_profile, from_profile, via_type, via_value, at FROM merges
		WHERE into_profile IN (SELECT id FROM absorbed) ORDER BY seq, id`, id)
	if err != nil {
		return p, err
	}
	if p.Traits, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.Trait, error) {
		return scanTrait(row, nil)
	}, `SELECT `+traitColumns+` FROM profile_traits WHERE profile_id = $1 ORDER BY name`, id); err != nil {
		return p, err
	}
	if p.Touches, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.Touch, error) {
		var t profile.Touch
		err := row.Scan(&t.TouchpointID, &t.Touchpoint, &t.Channel, &t.CampaignID, &t.Count, &t.FirstSeq, &t.First, &t.LastSeq, &t.Last)
		t.First, t.Last = t.First.UTC(), t.Last.UTC()
		return t, err
	}, `SELECT touchpoint_id, touchpoint, channel, campaign_id, count, first_seq, first_at, last_seq, last_at
		FROM profile_touches WHERE profile_id = $1 ORDER BY first_at, first_seq`, id); err != nil {
		return p, err
	}
	p.Stages, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.StageChange, error) {
		var c profile.StageChange
		err := row.Scan(&c.Seq, &c.From, &c.To, &c.At)
		c.At = c.At.UTC()
		return c, err
	}, `SELECT seq, from_stage, to_stage, at FROM stage_changes WHERE profile_id = $1 ORDER BY seq`, id)
	return p, err
}

// ProfileByIdentifier returns the profile that holds an identifier (normalised), as Profile does.
func (db *DB) ProfileByIdentifier(ctx context.Context, t identity.Type, value string) (profile.Profile, error) {
	const op = "store.profile_by_identifier"
	var id string
	err := db.read.QueryRowContext(ctx, `SELECT profile_id FROM identities WHERE type = $1 AND value = $2`, string(t), value).Scan(&id)
	if err == sql.ErrNoRows {
		return profile.Profile{}, notFound(op, "Profile")
	}
	if err != nil {
		return profile.Profile{}, db.wrap(op, err)
	}
	return db.Profile(ctx, id)
}

// ProfileEvents returns a profile's timeline: up to limit of its events before the seq before (0: from the
// newest), newest first.
func (db *DB) ProfileEvents(ctx context.Context, id string, before int64, limit int) ([]collect.Event, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	return db.queryEvents(ctx, "store.profile_events", `SELECT `+eventColumns+` FROM events WHERE seq IN
		(SELECT seq FROM event_profiles WHERE profile_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) ORDER BY seq DESC`, id, before, limit)
}

// LeftOut returns the identifiers that resolution kept out of the graph on the events in (after, upto], by seq.
func (db *DB) LeftOut(ctx context.Context, after, upto int64) ([]profile.LeftOut, error) {
	return queryAll(ctx, db, "store.left_out", func(row interface{ Scan(...any) error }) (profile.LeftOut, error) {
		var l profile.LeftOut
		err := row.Scan(&l.Seq, &l.Identifier.Type, &l.Identifier.Value, &l.Reason)
		return l, err
	}, `SELECT seq, type, value, reason FROM left_out WHERE seq > $1 AND seq <= $2 ORDER BY seq, type, value`, after, upto)
}
