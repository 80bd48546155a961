package store

import (
	"context"
	"database/sql"
	"math"
	"slices"
	"strings"

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
	const op = "store.known_identities"
	k := profile.Known{ProfileOf: map[identity.Identifier]string{}, FirstSeq: map[string]int64{}, Counts: map[string]map[identity.Type]int{}}
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
			err := db.scanRows(ctx, `SELECT value, profile_id FROM identities WHERE type = `+db.dialect.param(1)+` AND value IN (`+db.placeholders(2, n)+`)`, args, func(row *sql.Rows) error {
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
			if err != nil {
				return k, db.wrap(op, err)
			}
		}
	}
	for len(profiles) > 0 {
		n := min(knownChunk, len(profiles))
		in := db.placeholders(1, n)
		err := db.scanRows(ctx, `SELECT id, first_seq FROM profiles WHERE id IN (`+in+`)`, profiles[:n], func(row *sql.Rows) error {
			var p string
			var seq int64
			err := row.Scan(&p, &seq)
			k.FirstSeq[p] = seq
			return err
		})
		if err == nil {
			err = db.scanRows(ctx, `SELECT profile_id, type, count(*) FROM identities WHERE profile_id IN (`+in+`) GROUP BY profile_id, type`, profiles[:n], func(row *sql.Rows) error {
				var p string
				var t identity.Type
				var c int
				err := row.Scan(&p, &t, &c)
				k.Counts[p][t] = c
				return err
			})
		}
		if err != nil {
			return k, db.wrap(op, err)
		}
		profiles = profiles[n:]
	}
	return k, nil
}

// scanRows runs a query on the read pool and calls scan for each row.
func (db *DB) scanRows(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := db.read.QueryContext(ctx, query, args...)
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
	const op = "store.apply_profiles"
	now := db.clock.Now()
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		exec := func(q string, args ...any) error {
			_, err := tx.ExecContext(ctx, q, args...)
			return db.wrap(op, err)
		}
		// The batch was resolved against the graph as of c.From: it stands only if no other processor moved
		// the offset since. The row is locked until the commit, so two nodes cannot both pass this check.
		if err := exec(`INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`, consumer, now); err != nil {
			return err
		}
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM consumer_offsets WHERE name = $1`+db.dialect.forUpdate, consumer).Scan(&pos); err != nil {
			return db.wrap(op, err)
		}
		if pos != c.From {
			return hearth.Errorf(hearth.Conflict, op, "The profile processor's offset moved from %d to %d: another processor stored this batch.", c.From, pos)
		}
		for _, p := range c.New {
			if err := exec(`INSERT INTO profiles (id, first_seq, first_seen, last_seen, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
				p.ID, p.FirstSeq, p.FirstSeen.UTC(), p.LastSeen.UTC(), now); err != nil {
				return err
			}
		}
		for _, id := range c.Identities {
			if err := exec(`INSERT INTO identities (type, value, profile_id, first_seq) VALUES ($1, $2, $3, $4)`,
				string(id.Identifier.Type), id.Identifier.Value, id.Profile, id.FirstSeq); err != nil {
				return err
			}
		}
		for _, e := range c.Events {
			if err := exec(`INSERT INTO event_profiles (seq, profile_id) VALUES ($1, $2)`, e.Seq, e.Profile); err != nil {
				return err
			}
		}
		for _, m := range c.Merges {
			if err := exec(`UPDATE identities SET profile_id = $1 WHERE profile_id = $2`, m.Into, m.From); err != nil {
				return err
			}
			if err := exec(`UPDATE event_profiles SET profile_id = $1 WHERE profile_id = $2`, m.Into, m.From); err != nil {
				return err
			}
			// The absorbed profile's span of time joins the one that absorbed it.
			if err := exec(`UPDATE profiles SET
				first_seen = (SELECT min(first_seen) FROM profiles WHERE id IN ($1, $2)),
				last_seen = (SELECT max(last_seen) FROM profiles WHERE id IN ($1, $2)),
				updated_at = $3 WHERE id = $1`, m.Into, m.From, now); err != nil {
				return err
			}
			if err := exec(`DELETE FROM profiles WHERE id = $1`, m.From); err != nil {
				return err
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
		for _, id := range sortedKeys(c.LastSeen) {
			if err := exec(`UPDATE profiles SET last_seen = CASE WHEN last_seen < $1 THEN $1 ELSE last_seen END, updated_at = $2 WHERE id = $3`,
				c.LastSeen[id].UTC(), now, id); err != nil {
				return err
			}
		}
		return exec(`INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`, consumer, upto, now)
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const profileColumns = `id, first_seq, first_seen, last_seen, created_at, updated_at`

func scanProfile(row interface{ Scan(...any) error }) (profile.Profile, error) {
	var p profile.Profile
	err := row.Scan(&p.ID, &p.FirstSeq, &p.FirstSeen, &p.LastSeen, &p.CreatedAt, &p.UpdatedAt)
	p.FirstSeen, p.LastSeen, p.CreatedAt, p.UpdatedAt = p.FirstSeen.UTC(), p.LastSeen.UTC(), p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, err
}

// Profile returns a profile with its identifiers (by first seq) and its merge history (by seq): the merges
// into it, and those into the profiles it absorbed.
func (db *DB) Profile(ctx context.Context, id string) (profile.Profile, error) {
	const op = "store.profile"
	p, err := scanProfile(db.read.QueryRowContext(ctx, `SELECT `+profileColumns+` FROM profiles WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return p, notFound(op, "Profile")
	}
	if err != nil {
		return p, db.wrap(op, err)
	}
	if p.Identities, err = queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (profile.Identity, error) {
		var i profile.Identity
		err := row.Scan(&i.Identifier.Type, &i.Identifier.Value, &i.Profile, &i.FirstSeq)
		return i, err
	}, `SELECT type, value, profile_id, first_seq FROM identities WHERE profile_id = $1 ORDER BY first_seq, type, value`, id); err != nil {
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
