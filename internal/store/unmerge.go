package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// absorbedTree is a recursive query of a profile ($1) and every profile merged into it, at any depth.
const absorbedTree = `WITH RECURSIVE absorbed (id) AS (
		SELECT CAST($1 AS TEXT)
		UNION SELECT m.from_profile FROM merges m JOIN absorbed a ON m.into_profile = a.id
	)`

const unmergeColumns = `id, profile_id, into_profile, from_profile, merge_seq, via_type, via_value, requested_by, requested_at, done_at, result`

func scanUnmerge(row interface{ Scan(...any) error }) (profile.Unmerge, error) {
	var u profile.Unmerge
	var done sql.NullTime
	var result string
	err := row.Scan(&u.ID, &u.Profile, &u.Merge.Into, &u.Merge.From, &u.Merge.Seq, &u.Merge.Via.Type, &u.Merge.Via.Value,
		&u.RequestedBy, &u.RequestedAt, &done, &result)
	u.RequestedAt, u.DoneAt = u.RequestedAt.UTC(), utcOrZero(done)
	if err == nil && result != "" {
		var r unmergeResult
		if json.Unmarshal([]byte(result), &r) == nil {
			u.Profiles, u.Error = r.Profiles, r.Error
		}
	}
	return u, err
}

type unmergeResult struct {
	Profiles []string `json:"profiles,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// RequestUnmerge asks for the profile id to be split where the profile from was merged into it (or into one
// it absorbed). NotFound when id holds no such merge; Conflict when one is pending for it already.
func (db *DB) RequestUnmerge(ctx context.Context, id, from, by string) (profile.Unmerge, error) {
	const op = "store.request_unmerge"
	u := profile.Unmerge{Profile: id, RequestedBy: by, RequestedAt: db.clock.Now().UTC()}
	err := db.inTx(ctx, op, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, absorbedTree+`
			SELECT seq, into_profile, from_profile, via_type, via_value FROM merges
			WHERE into_profile IN (SELECT id FROM absorbed) AND from_profile = $2 ORDER BY seq DESC LIMIT 1`, id, from).
			Scan(&u.Merge.Seq, &u.Merge.Into, &u.Merge.From, &u.Merge.Via.Type, &u.Merge.Via.Value)
		if err == sql.ErrNoRows {
			return &hearth.Error{Kind: hearth.NotFound, Op: op, Msg: "This profile holds no merge of that profile."}
		}
		if err != nil {
			return db.wrap(op, err)
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM unmerges WHERE profile_id = $1 AND done_at IS NULL`, id).Scan(&pending); err != nil {
			return db.wrap(op, err)
		}
		if pending > 0 {
			return hearth.Errorf(hearth.Conflict, op, "An unmerge of this profile is under way already.")
		}
		return db.wrap(op, tx.QueryRowContext(ctx, `INSERT INTO unmerges (profile_id, into_profile, from_profile, merge_seq, via_type, via_value, requested_by, requested_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			id, u.Merge.Into, u.Merge.From, u.Merge.Seq, string(u.Merge.Via.Type), u.Merge.Via.Value, by, u.RequestedAt).Scan(&u.ID))
	})
	return u, err
}

// Unmerge returns an unmerge by id.
func (db *DB) Unmerge(ctx context.Context, id int64) (profile.Unmerge, error) {
	u, err := scanUnmerge(db.read.QueryRowContext(ctx, `SELECT `+unmergeColumns+` FROM unmerges WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return u, notFound("store.unmerge", "Unmerge")
	}
	return u, db.wrap("store.unmerge", err)
}

// PendingUnmerges returns the unmerges not carried out yet, oldest first.
func (db *DB) PendingUnmerges(ctx context.Context) ([]profile.Unmerge, error) {
	var out []profile.Unmerge
	err := scanOn(ctx, db.graph, `SELECT `+unmergeColumns+` FROM unmerges WHERE done_at IS NULL ORDER BY id`, nil, func(row *sql.Rows) error {
		u, err := scanUnmerge(row)
		out = append(out, u)
		return err
	})
	return out, db.wrap("store.pending_unmerges", err)
}

// FinishedUnmerges counts the unmerges carried out (or failed): a batch resolved before one finished is
// refused (ApplyProfiles).
func (db *DB) FinishedUnmerges(ctx context.Context) (int64, error) {
	var n int64
	err := db.graph.QueryRowContext(ctx, `SELECT count(*) FROM unmerges WHERE done_at IS NOT NULL`).Scan(&n)
	return n, db.wrap("store.finished_unmerges", err)
}

// Separations returns the pairs of profiles that unmerges keep apart, each with the smaller id first.
func (db *DB) Separations(ctx context.Context) ([][2]string, error) {
	return queryAll(ctx, db, "store.separations", func(row interface{ Scan(...any) error }) ([2]string, error) {
		var p [2]string
		err := row.Scan(&p[0], &p[1])
		return p, err
	}, `SELECT profile_a, profile_b FROM separations ORDER BY profile_a, profile_b`)
}

// ProfileNow returns the profile that id is now: itself while it exists, else the profile it was merged
// into (following merges); id itself when neither is found.
func (db *DB) ProfileNow(ctx context.Context, id string) (string, error) {
	var exists bool
	if err := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM profiles WHERE id = $1)`, id).Scan(&exists); err != nil {
		return "", db.wrap("store.profile_now", err)
	}
	if exists {
		return id, nil
	}
	into, err := db.ProfileMergedInto(ctx, id)
	if hearth.KindOf(err) == hearth.NotFound {
		return id, nil
	}
	return into, err
}

// AllProfileEvents returns every event on a profile's timeline, oldest first.
func (db *DB) AllProfileEvents(ctx context.Context, id string) ([]collect.Event, error) {
	return db.queryEvents(ctx, "store.all_profile_events", `SELECT `+eventColumns+` FROM events WHERE seq IN
		(SELECT seq FROM event_profiles WHERE profile_id = $1) ORDER BY seq`, id)
}

// ApplyUnmerge carries out an unmerge in one transaction: everything derived of the profile split (its
// identities, timeline, merge history, traits, touches, stage changes, and what resolution left out of its
// events) is replaced by c, the replay of its events with the two sides kept apart; the separation and the
// outcome are recorded. Like a batch, it stands only if the graph is the one c was resolved against.
func (db *DB) ApplyUnmerge(ctx context.Context, consumer string, u profile.Unmerge, seqs []int64, c profile.Changes) error {
	now := db.clock.Now()
	a, b := min(u.Merge.Into, u.Merge.From), max(u.Merge.Into, u.Merge.From)
	return db.profileTx(ctx, "store.apply_unmerge", consumer, c, func(tx *sql.Tx, exec execFunc) error {
		tree := absorbedTree + ` `
		for _, q := range []string{
			tree + `DELETE FROM merges WHERE into_profile IN (SELECT id FROM absorbed)`,
			`DELETE FROM identities WHERE profile_id = $1`,
			`DELETE FROM event_profiles WHERE profile_id = $1`,
			`DELETE FROM profile_traits WHERE profile_id = $1`,
			`DELETE FROM profile_touches WHERE profile_id = $1`,
			`DELETE FROM stage_changes WHERE profile_id = $1`,
			`DELETE FROM profiles WHERE id = $1`,
		} {
			if err := exec(q, u.Profile); err != nil {
				return err
			}
		}
		for len(seqs) > 0 {
			n := min(knownChunk, len(seqs))
			args := make([]any, n)
			for i, s := range seqs[:n] {
				args[i] = s
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM left_out WHERE seq IN (`+db.placeholders(1, n)+`)`, args...); err != nil {
				return db.wrap("store.apply_unmerge", err)
			}
			seqs = seqs[n:]
		}
		if err := exec(`INSERT INTO separations (profile_a, profile_b, unmerge_id) VALUES ($1, $2, $3) ON CONFLICT (profile_a, profile_b) DO NOTHING`, a, b, u.ID); err != nil {
			return err
		}
		if err := db.applyChanges(exec, c, now); err != nil {
			return err
		}
		profiles := make([]string, len(c.New))
		for i, p := range c.New {
			profiles[i] = p.ID
		}
		return db.finishUnmerge(exec, u.ID, unmergeResult{Profiles: profiles}, now)
	})
}

// FailUnmerge records that an unmerge could not be carried out, and why, in words for the admin.
func (db *DB) FailUnmerge(ctx context.Context, id int64, why string) error {
	_, err := db.write.ExecContext(ctx, `UPDATE unmerges SET done_at = $1, result = $2 WHERE id = $3 AND done_at IS NULL`,
		db.clock.Now(), mustJSON(unmergeResult{Error: strings.TrimSpace(why)}), id)
	return db.wrap("store.fail_unmerge", err)
}

func (db *DB) finishUnmerge(exec execFunc, id int64, r unmergeResult, now time.Time) error {
	return exec(`UPDATE unmerges SET done_at = $1, result = $2 WHERE id = $3`, now, mustJSON(r), id)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
