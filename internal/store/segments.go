package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
)

// Segments: their definitions, the queries that find the profiles a condition holds for, the engine's
// steps, and the members and history the API reads (docs/segments.md).

const segmentColumns = `id, name, description, kind, rule, list_items, size, version, evaluated_version, evaluated_offset, evaluated_at, windows_checked,
	created_at, updated_at, created_by`

func scanSegment(row interface{ Scan(...any) error }) (segment.Segment, error) {
	var s segment.Segment
	var rule sql.NullString
	var evaluated, checked sql.NullTime
	err := row.Scan(&s.ID, &s.Name, &s.Description, &s.Kind, &rule, &s.ListItems, &s.Size, &s.Version, &s.EvaluatedVersion,
		&s.EvaluatedOffset, &evaluated, &checked, &s.CreatedAt, &s.UpdatedAt, &s.CreatedBy)
	if err != nil {
		return s, err
	}
	s.EvaluatedAt, s.WindowsChecked = utcOrZero(evaluated), utcOrZero(checked)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	if rule.Valid {
		s.Rule = &segment.Rule{}
		if err := json.Unmarshal([]byte(rule.String), s.Rule); err != nil {
			return s, fmt.Errorf("the rule of segment %s: %w", s.ID, err)
		}
	}
	return s, nil
}

// Segments returns every segment.
func (db *DB) Segments(ctx context.Context) ([]segment.Segment, error) {
	return queryAll(ctx, db, "store.segments", scanSegment, `SELECT `+segmentColumns+` FROM segments ORDER BY created_at, id`)
}

// Segment returns a segment.
func (db *DB) Segment(ctx context.Context, id string) (segment.Segment, error) {
	s, err := scanSegment(db.read.QueryRowContext(ctx, `SELECT `+segmentColumns+` FROM segments WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return s, notFound("store.segment", "Segment")
	}
	return s, db.wrap("store.segment", err)
}

func ruleJSON(r *segment.Rule) (any, error) {
	if r == nil {
		return nil, nil
	}
	b, err := json.Marshal(r)
	return string(b), err
}

// CreateSegment stores a new segment.
func (db *DB) CreateSegment(ctx context.Context, s segment.Segment) error {
	const op = "store.create_segment"
	rule, err := ruleJSON(s.Rule)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO segments (id, name, description, kind, rule, version, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, s.ID, s.Name, s.Description, string(s.Kind), rule, s.Version, s.CreatedAt.UTC(), s.UpdatedAt.UTC(), s.CreatedBy)
	return db.wrap(op, err)
}

// UpdateSegment writes a segment's name, description and rule; changed asks for a full evaluation.
func (db *DB) UpdateSegment(ctx context.Context, s segment.Segment, changed bool) error {
	const op = "store.update_segment"
	rule, err := ruleJSON(s.Rule)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	bump := 0
	if changed {
		bump = 1
	}
	res, err := db.write.ExecContext(ctx, `UPDATE segments SET name = $1, description = $2, rule = $3, updated_at = $4, version = version + $5 WHERE id = $6`,
		s.Name, s.Description, rule, s.UpdatedAt.UTC(), bump, s.ID)
	if err != nil {
		return db.wrap(op, err)
	}
	return oneRow(res, op, "Segment")
}

// DeleteSegment removes a segment with its members, history, sizes and list.
func (db *DB) DeleteSegment(ctx context.Context, id string) error {
	const op = "store.delete_segment"
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM segment_members WHERE segment_id = $1`, `DELETE FROM segment_changes WHERE segment_id = $1`,
			`DELETE FROM segment_sizes WHERE segment_id = $1`, `DELETE FROM segment_list_items WHERE segment_id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return db.wrap(op, err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM segments WHERE id = $1`, id)
		if err != nil {
			return db.wrap(op, err)
		}
		return oneRow(res, op, "Segment")
	})
}

// ReplaceList makes items the list of a list segment, and asks for a full evaluation.
func (db *DB) ReplaceList(ctx context.Context, id string, items []identity.Identifier, at time.Time) error {
	const op = "store.replace_list"
	return db.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE segments SET list_items = $1, version = version + 1, updated_at = $2 WHERE id = $3`, len(items), at.UTC(), id)
		if err != nil {
			return db.wrap(op, err)
		}
		if err := oneRow(res, op, "Segment"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM segment_list_items WHERE segment_id = $1`, id); err != nil {
			return db.wrap(op, err)
		}
		rows := make([][]any, 0, len(items))
		for _, it := range items {
			rows = append(rows, []any{id, string(it.Type), it.Value})
		}
		return db.insertRows(func(q string, args ...any) error {
			_, err := tx.ExecContext(ctx, q, args...)
			return db.wrap(op, err)
		}, `INSERT INTO segment_list_items (segment_id, type, value) VALUES `, rows, "")
	})
}

// query builds a statement's text and its parameters side by side, in the engine's placeholder style.
type query struct {
	db   *DB
	text strings.Builder
	args []any
}

// arg adds a parameter and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.db.dialect.param(len(q.args))
}

func (q *query) add(parts ...string) *query {
	for _, p := range parts {
		q.text.WriteString(p)
	}
	return q
}

// in writes "col IN (…)" for the profile ids.
func (q *query) in(col string, ids []string) {
	q.add(col, " IN (")
	for i, id := range ids {
		if i > 0 {
			q.add(", ")
		}
		q.add(q.arg(id))
	}
	q.add(")")
}

// profileSet adds the profile ids a query returns, as numbers, to b.
func profileSet(ctx context.Context, conn querier, text string, args []any, b *segment.SetBuilder) error {
	rows, err := conn.QueryContext(ctx, text, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return err
		}
		n, err := segment.ProfileNumber(id)
		if err != nil {
			return err
		}
		b.Add(n)
	}
	return rows.Err()
}

// querier is a connection pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// profiles runs a query for profile ids as build writes it: with restrict nil, once over every profile;
// else once per chunk of the restricting profiles, which build names with in.
func (db *DB) profiles(ctx context.Context, conn querier, op string, restrict *segment.Set, build func(q *query, in func(col string))) (*segment.Set, error) {
	var out segment.SetBuilder
	run := func(ids []string) error {
		q := &query{db: db}
		build(q, func(col string) {
			if ids != nil {
				q.add(" AND ")
				q.in(col, ids)
			}
		})
		return db.wrap(op, profileSet(ctx, conn, q.text.String(), q.args, &out))
	}
	if restrict == nil {
		if err := run(nil); err != nil {
			return nil, err
		}
		return out.Set(), nil
	}
	ids := segment.ProfileIDs(restrict)
	for len(ids) > 0 {
		n := min(knownChunk, len(ids))
		if err := run(ids[:n]); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out.Set(), nil
}

// View runs fn with a Reader of one snapshot of the store: a read-only transaction.
func (db *DB) View(ctx context.Context, fn func(segment.Reader) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.engine == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.read.BeginTx(ctx, opts)
	if err != nil {
		return db.wrap("store.view", err)
	}
	defer tx.Rollback()
	return fn(segmentReader{db: db, tx: tx})
}

// segmentReader answers the conditions of segment rules (segment.Reader) in a transaction. Restricted to
// some profiles, a query names them and compares its condition's own columns through an expression (the
// column joined with empty text), so that both engines look the profiles up rather than scan the condition's index.
type segmentReader struct {
	db *DB
	tx *sql.Tx
}

func (r segmentReader) Profiles(ctx context.Context, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_profiles", within, func(q *query, in func(string)) {
		q.add(`SELECT id FROM profiles WHERE true`)
		in("id")
	})
}

// plain is a column as a condition compares it: itself, or through an expression when the query is
// restricted to some profiles.
func plain(col string, within *segment.Set) string {
	if within != nil {
		return "(" + col + " || '')"
	}
	return col
}

// plainNumber is plain for a column of numbers.
func plainNumber(col string, within *segment.Set) string {
	if within != nil {
		return "(" + col + " + 0)"
	}
	return col
}

func (r segmentReader) Traits(ctx context.Context, c segment.Compare, today string, within *segment.Set) (*segment.Set, error) {
	const op = "store.segment_traits"
	escaped := `instr(value, char(92)) > 0` // a backslash: the value was written with escapes
	if r.db.engine == Postgres {
		escaped = `strpos(value, chr(92)) > 0`
	}
	texts, fast := plainTexts(c)
	if !fast || within != nil {
		return r.db.profiles(ctx, r.tx, op, within, func(q *query, in func(string)) {
			q.add(`SELECT profile_id FROM profile_traits WHERE `, plain("name", within), ` = `, q.arg(c.Name), ` AND `)
			r.db.compare(q, traitJSON(r.db), c, today)
			in("profile_id")
		})
	}
	// Text without quotes, backslashes or control characters has one JSON form: the values in that form
	// are found in the index by name and value, and the others, written with escapes, by their own index.
	s, err := r.db.profiles(ctx, r.tx, op, nil, func(q *query, _ func(string)) {
		q.add(`SELECT profile_id FROM profile_traits WHERE name = `, q.arg(c.Name), ` AND value IN (`)
		for i, t := range texts {
			if i > 0 {
				q.add(", ")
			}
			q.add(q.arg(`"` + t + `"`))
		}
		q.add(`)`)
	})
	if err != nil {
		return nil, err
	}
	escapes, err := r.db.profiles(ctx, r.tx, op, nil, func(q *query, _ func(string)) {
		q.add(`SELECT profile_id FROM profile_traits WHERE name = `, q.arg(c.Name), ` AND `, escaped, ` AND `)
		r.db.compare(q, traitJSON(r.db), c, today)
	})
	if err != nil {
		return nil, err
	}
	s.Or(escapes)
	return s, nil
}

// plainTexts returns the texts an equals or in compares with, if they are all text whose JSON form is the
// text in quotes.
func plainTexts(c segment.Compare) ([]string, bool) {
	values := c.Values
	if c.Op == segment.Equals {
		values = []any{c.Value}
	} else if c.Op != segment.In {
		return nil, false
	}
	texts := make([]string, 0, len(values))
	for _, v := range values {
		t, ok := v.(string)
		if !ok || strings.ContainsFunc(t, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }) {
			return nil, false
		}
		texts = append(texts, t)
	}
	return texts, true
}

func (r segmentReader) Events(ctx context.Context, e segment.EventQuery, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_events", within, func(q *query, in func(string)) {
		q.add(`SELECT ep.profile_id FROM event_profiles ep`)
		if len(e.Where) > 0 {
			q.add(` JOIN events e ON e.seq = ep.seq`)
		}
		q.add(` WHERE `, plain("ep.name", within), ` = `, q.arg(e.Name))
		if within == nil {
			q.add(` AND ep.name <> ''`) // the partial index event_profiles_name holds only these
		}
		if !e.From.IsZero() {
			q.add(` AND ep.at >= `, q.arg(e.From.UTC()))
		}
		if !e.To.IsZero() {
			q.add(` AND ep.at < `, q.arg(e.To.UTC()))
		}
		for _, w := range e.Where {
			q.add(` AND `)
			r.db.compare(q, propertyJSON(r.db, w.Property), w, "")
		}
		in("ep.profile_id")
		if e.Min > 1 || e.Max > 0 {
			q.add(` GROUP BY ep.profile_id HAVING count(*) >= `, q.arg(e.Min))
			if e.Max > 0 {
				q.add(` AND count(*) <= `, q.arg(e.Max))
			}
		}
	})
}

// touchKey writes the column and value a touch condition names.
func touchKey(q *query, t segment.Touched, within *segment.Set) {
	switch {
	case t.TouchpointID != "":
		q.add(plain("touchpoint_id", within), ` = `, q.arg(t.TouchpointID))
	case t.CampaignID != "":
		q.add(plain("campaign_id", within), ` = `, q.arg(t.CampaignID))
	default:
		q.add(plain("channel", within), ` = `, q.arg(t.Channel))
	}
}

func (r segmentReader) Touched(ctx context.Context, t segment.Touched, since time.Time, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_touched", within, func(q *query, in func(string)) {
		q.add(`SELECT profile_id FROM profile_touches WHERE `)
		touchKey(q, t, within)
		if !since.IsZero() {
			q.add(` AND last_at >= `, q.arg(since.UTC()))
		}
		in("profile_id")
	})
}

func (r segmentReader) ConvertedAfter(ctx context.Context, t segment.Touched, within *segment.Set) (*segment.Set, error) {
	// Asked of the converted people a funnel found (a fraction of those touched): each one's touches are a few
	// rows of profile_touches by its primary key.
	return r.db.profiles(ctx, r.tx, "store.segment_converted_after", within, func(q *query, in func(string)) {
		q.add(`SELECT id FROM profiles p WHERE converted_at >= (SELECT min(first_at) FROM profile_touches WHERE profile_id = p.id AND `)
		touchKey(q, t, within)
		q.add(`)`)
		in("id")
	})
}

func (r segmentReader) Steps(ctx context.Context, steps []profile.Steps, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_steps", within, func(q *query, in func(string)) {
		q.add(`SELECT id FROM profiles WHERE `, plainNumber("steps", within), ` IN (-1`) // -1: no combination, for none
		for _, s := range steps {
			q.add(", ", q.arg(s.Bits()))
		}
		q.add(")")
		in("id")
	})
}

// reachVia are the identifier type and the consent trait of each channel a person can be reached on.
var reachVia = map[string]struct {
	id      identity.Type
	consent string
}{
	"email":  {identity.Email, profile.EmailSubscribed},
	"sms":    {identity.Phone, profile.SMSSubscribed},
	"wechat": {identity.WeChatOpenID, profile.WeChatSubscribed},
}

func (r segmentReader) Reachable(ctx context.Context, channel string, within *segment.Set) (*segment.Set, error) {
	channels := []string{channel}
	if channel == "any" {
		channels = []string{"email", "sms", "wechat"}
	}
	out := roaring64.New()
	for _, ch := range channels {
		via := reachVia[ch]
		s, err := r.db.profiles(ctx, r.tx, "store.segment_reachable", within, func(q *query, in func(string)) {
			q.add(`SELECT i.profile_id FROM identities i WHERE `, plain("i.type", within), ` = `, q.arg(string(via.id)),
				` AND NOT EXISTS (SELECT 1 FROM profile_traits t WHERE t.profile_id = i.profile_id AND t.name = `, q.arg(via.consent),
				` AND t.value = 'false')`)
			in("i.profile_id")
		})
		if err != nil {
			return nil, err
		}
		out.Or(s)
	}
	return out, nil
}

func (r segmentReader) Members(ctx context.Context, id string, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_members", within, func(q *query, in func(string)) {
		q.add(`SELECT profile_id FROM segment_members WHERE segment_id = `, q.arg(id))
		in("profile_id")
	})
}

func (r segmentReader) Listed(ctx context.Context, id string, within *segment.Set) (*segment.Set, error) {
	return r.db.profiles(ctx, r.tx, "store.segment_listed", within, func(q *query, in func(string)) {
		if within == nil {
			q.add(`SELECT i.profile_id FROM segment_list_items l JOIN identities i ON i.type = l.type AND i.value = l.value WHERE l.segment_id = `, q.arg(id))
			return
		}
		q.add(`SELECT i.profile_id FROM identities i JOIN segment_list_items l ON l.segment_id = `, q.arg(id),
			` AND l.type = i.type AND l.value = i.value WHERE true`)
		in("i.profile_id")
	})
}

// Facts reads what the rules of a step need of the profiles, a few queries per 500 profiles, each looking
// the profiles up (their other columns compared through expressions, as for restricted conditions).
func (r segmentReader) Facts(ctx context.Context, profiles *segment.Set, needs segment.Needs) (map[uint64]*segment.Facts, error) {
	const op = "store.segment_facts"
	out := map[uint64]*segment.Facts{}
	ids := segment.ProfileIDs(profiles)
	for len(ids) > 0 {
		chunk := ids[:min(knownChunk, len(ids))]
		ids = ids[len(chunk):]
		// each runs a query for the chunk, with more written after "IN (…)", and scans its rows
		each := func(head, tail string, extra []any, scan func(f *segment.Facts) error, dest ...any) error {
			q := &query{db: r.db}
			q.add(head)
			q.in("", chunk)
			q.add(tail)
			q.args = append(q.args, extra...)
			giveWay()
			rows, err := r.tx.QueryContext(ctx, q.text.String(), q.args...)
			if err != nil {
				return r.db.wrap(op, err)
			}
			defer rows.Close()
			var id string
			for rows.Next() {
				if err := rows.Scan(append([]any{&id}, dest...)...); err != nil {
					return r.db.wrap(op, err)
				}
				n, err := segment.ProfileNumber(id)
				if err != nil {
					return err
				}
				if f := out[n]; f != nil {
					if err := scan(f); err != nil {
						return err
					}
				}
			}
			return r.db.wrap(op, rows.Err())
		}
		var steps int
		if err := r.profilesOf(ctx, chunk, out, &steps); err != nil {
			return nil, err
		}
		var name, value string
		if len(needs.Traits) > 0 {
			tail := ` AND (name || '') IN (` + r.db.placeholders(len(chunk)+1, len(needs.Traits)) + `)`
			err := each(`SELECT profile_id, name, value FROM profile_traits WHERE profile_id`, tail, anys(needs.Traits), func(f *segment.Facts) error {
				f.Traits[name] = json.RawMessage(value)
				return nil
			}, &name, &value)
			if err != nil {
				return nil, err
			}
		}
		if needs.Reachable {
			var typ string
			err := each(`SELECT profile_id, type FROM identities WHERE profile_id`, ` AND (type || '') IN ('email', 'phone', 'wechat_openid')`, nil, func(f *segment.Facts) error {
				for ch, via := range reachVia {
					if string(via.id) == typ && !bytes.Equal(f.Traits[via.consent], []byte("false")) {
						f.Reachable[ch] = true
					}
				}
				return nil
			}, &typ)
			if err != nil {
				return nil, err
			}
		}
		if needs.Touches {
			var t segment.TouchFact
			err := each(`SELECT profile_id, touchpoint_id, campaign_id, channel, last_at FROM profile_touches WHERE profile_id`, ``, nil, func(f *segment.Facts) error {
				t.Last = t.Last.UTC()
				f.Touches = append(f.Touches, t)
				return nil
			}, &t.TouchpointID, &t.CampaignID, &t.Channel, &t.Last)
			if err != nil {
				return nil, err
			}
		}
		if len(needs.Events) > 0 {
			var at time.Time
			tail := ` AND (name || '') IN (` + r.db.placeholders(len(chunk)+1, len(needs.Events)) + `)`
			err := each(`SELECT profile_id, name, at FROM event_profiles WHERE profile_id`, tail, anys(needs.Events), func(f *segment.Facts) error {
				if !slices.Contains(needs.Properties, name) {
					f.Events = append(f.Events, segment.EventFact{Name: name, At: at.UTC()})
				}
				return nil
			}, &name, &at)
			if err != nil {
				return nil, err
			}
		}
		if len(needs.Properties) > 0 {
			var at time.Time
			var payload []byte
			tail := ` AND (ep.name || '') IN (` + r.db.placeholders(len(chunk)+1, len(needs.Properties)) + `)`
			err := each(`SELECT ep.profile_id, ep.name, ep.at, e.payload FROM event_profiles ep JOIN events e ON e.seq = ep.seq WHERE ep.profile_id`, tail, anys(needs.Properties), func(f *segment.Facts) error {
				var body struct {
					Properties map[string]json.RawMessage `json:"properties"`
				}
				_ = json.Unmarshal(payload, &body) // the collector checked it is an object
				f.Events = append(f.Events, segment.EventFact{Name: name, At: at.UTC(), Properties: body.Properties})
				return nil
			}, &name, &at, &payload)
			if err != nil {
				return nil, err
			}
		}
		if needs.Members {
			var seg string
			if err := each(`SELECT profile_id, segment_id FROM segment_members WHERE profile_id`, ``, nil, func(f *segment.Facts) error {
				f.Members[seg] = true
				return nil
			}, &seg); err != nil {
				return nil, err
			}
		}
		if needs.Lists {
			var seg string
			if err := each(`SELECT i.profile_id, l.segment_id FROM identities i JOIN segment_list_items l ON l.type = i.type AND l.value = i.value WHERE i.profile_id`, ``, nil, func(f *segment.Facts) error {
				f.Listed[seg] = true
				return nil
			}, &seg); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// profilesOf adds the profiles of ids that exist to out, with their steps.
func (r segmentReader) profilesOf(ctx context.Context, ids []string, out map[uint64]*segment.Facts, steps *int) error {
	q := &query{db: r.db}
	q.add(`SELECT id, steps FROM profiles WHERE `)
	q.in("id", ids)
	giveWay()
	rows, err := r.tx.QueryContext(ctx, q.text.String(), q.args...)
	if err != nil {
		return r.db.wrap("store.segment_facts", err)
	}
	defer rows.Close()
	var id string
	for rows.Next() {
		if err := rows.Scan(&id, steps); err != nil {
			return err
		}
		n, err := segment.ProfileNumber(id)
		if err != nil {
			return err
		}
		out[n] = &segment.Facts{Steps: profile.StepsOfBits(*steps), Traits: map[string]json.RawMessage{}, Reachable: map[string]bool{},
			Members: map[string]bool{}, Listed: map[string]bool{}}
	}
	return rows.Err()
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// jsonValue is a JSON value in the database, as each engine reads it: its type, and its value as text.
type jsonValue struct {
	typ  func(q *query) string // SQLite: text, integer, real, true, false, null; PostgreSQL: string, number, boolean, null
	text func(q *query) string // a string's text
	num  func(q *query) string // a number (an expression evaluated only when typ says number)
}

// traitJSON is the value of a profile_traits row.
func traitJSON(db *DB) jsonValue {
	if db.engine == Postgres {
		return jsonValue{
			typ:  func(*query) string { return `jsonb_typeof(value::jsonb)` },
			text: func(*query) string { return `(value::jsonb #>> '{}')` },
			num:  func(*query) string { return `(value::jsonb #>> '{}')::numeric` },
		}
	}
	return jsonValue{
		typ:  func(*query) string { return `json_type(value)` },
		text: func(*query) string { return `json_extract(value, '$')` },
		num:  func(*query) string { return `json_extract(value, '$')` },
	}
}

// propertyJSON is a property of the event e.
func propertyJSON(db *DB, property string) jsonValue {
	if db.engine == Postgres {
		v := func(q *query) string { return `(e.payload -> 'properties' -> ` + q.arg(property) + `)` }
		return jsonValue{
			typ:  func(q *query) string { return `jsonb_typeof` + v(q) },
			text: func(q *query) string { return `(` + v(q) + ` #>> '{}')` },
			num:  func(q *query) string { return `(` + v(q) + ` #>> '{}')::numeric` },
		}
	}
	path := `$.properties."` + property + `"` // checked to hold no quote or backslash
	return jsonValue{
		typ:  func(q *query) string { return `json_type(e.payload, ` + q.arg(path) + `)` },
		text: func(q *query) string { return `json_extract(e.payload, ` + q.arg(path) + `)` },
		num:  func(q *query) string { return `json_extract(e.payload, ` + q.arg(path) + `)` },
	}
}

// compare writes the condition that v compares as c says.
func (db *DB) compare(q *query, v jsonValue, c segment.Compare, today string) {
	pg := db.engine == Postgres
	isText := func() string {
		if pg {
			return v.typ(q) + ` = 'string'`
		}
		return v.typ(q) + ` = 'text'`
	}
	isNumber := func() string {
		if pg {
			return v.typ(q) + ` = 'number'`
		}
		return v.typ(q) + ` IN ('integer', 'real')`
	}
	// number compares a number; PostgreSQL evaluates the cast only where CASE lets it.
	number := func(op string, x float64) string {
		if pg {
			return `CASE WHEN ` + isNumber() + ` THEN ` + v.num(q) + ` END ` + op + ` ` + q.arg(x)
		}
		return `(` + isNumber() + ` AND ` + v.num(q) + ` ` + op + ` ` + q.arg(x) + `)`
	}
	// day is a date's text as YYYY-MM-DD, where the text starts with one.
	day := func() string {
		if pg {
			return `CASE WHEN ` + isText() + ` AND ` + v.text(q) + ` ~ '^\d{4}-\d{2}-\d{2}' THEN left(` + v.text(q) + `, 10) END`
		}
		return `CASE WHEN ` + isText() + ` AND ` + v.text(q) + ` GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' THEN substr(` + v.text(q) + `, 1, 10) END`
	}
	switch c.Op {
	case segment.Equals:
		switch x := c.Value.(type) {
		case string:
			q.add(`(`, isText(), ` AND `, v.text(q), ` = `, q.arg(x), `)`)
		case float64:
			q.add(number("=", x))
		case bool:
			word := map[bool]string{true: "true", false: "false"}[x]
			if pg {
				q.add(v.typ(q), ` = 'boolean' AND `, v.text(q), ` = '`, word, `'`)
			} else {
				q.add(v.typ(q), ` = '`, word, `'`)
			}
		}
	case segment.Contains:
		if pg {
			q.add(`(`, isText(), ` AND strpos(lower(`, v.text(q), `), lower(`, q.arg(c.Value), `)) > 0)`)
		} else {
			q.add(`(`, isText(), ` AND instr(lower(`, v.text(q), `), lower(`, q.arg(c.Value), `)) > 0)`)
		}
	case segment.In:
		var texts []string
		var nums []float64
		for _, x := range c.Values {
			switch x := x.(type) {
			case string:
				texts = append(texts, x)
			case float64:
				nums = append(nums, x)
			}
		}
		q.add(`(false`)
		if len(texts) > 0 {
			q.add(` OR (`, isText(), ` AND `, v.text(q), ` IN (`)
			for i, t := range texts {
				if i > 0 {
					q.add(", ")
				}
				q.add(q.arg(t))
			}
			q.add(`))`)
		}
		for _, n := range nums {
			q.add(` OR `, number("=", n))
		}
		q.add(`)`)
	case segment.Greater, segment.GreaterOrEqual, segment.Less, segment.LessOrEqual:
		op := map[segment.Op]string{segment.Greater: ">", segment.GreaterOrEqual: ">=", segment.Less: "<", segment.LessOrEqual: "<="}[c.Op]
		q.add(number(op, c.Value.(float64)))
	case segment.Exists:
		q.add(v.typ(q), ` <> 'null'`) // NULL, and so false, where the property is missing
	case segment.Before:
		q.add(day(), ` < `, q.arg(c.Value))
	case segment.After:
		q.add(day(), ` > `, q.arg(c.Value))
	case segment.WithinLastDays:
		t, _ := time.Parse(time.DateOnly, today)
		q.add(day(), ` BETWEEN `, q.arg(t.AddDate(0, 0, -c.Days).Format(time.DateOnly)), ` AND `, q.arg(today))
	default:
		q.add(`false`)
	}
}

// Unmerges returns the id of the last unmerge carried out after afterID with none pending before it, and the
// profiles those unmerges split.
func (db *DB) Unmerges(ctx context.Context, afterID int64) (int64, *segment.Set, error) {
	const op = "store.segment_unmerges"
	last, split := afterID, roaring64.New()
	rows, err := db.read.QueryContext(ctx, `SELECT id, into_profile, from_profile, done_at IS NOT NULL FROM unmerges WHERE id > $1 ORDER BY id`, afterID)
	if err != nil {
		return last, split, db.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var into, from string
		var done bool
		if err := rows.Scan(&id, &into, &from, &done); err != nil {
			return last, split, db.wrap(op, err)
		}
		if !done {
			break
		}
		last = id
		for _, p := range []string{into, from} {
			if n, err := segment.ProfileNumber(p); err == nil {
				split.Add(n)
			}
		}
	}
	return last, split, db.wrap(op, rows.Err())
}

// Changed returns the profiles the events in (after, upto] belong to now, and the profiles those events
// merged away.
func (db *DB) Changed(ctx context.Context, after, upto int64) (*segment.Set, []string, error) {
	const op = "store.segment_changed"
	var touched segment.SetBuilder
	if err := profileSet(ctx, db.read, `SELECT profile_id FROM event_profiles WHERE seq > $1 AND seq <= $2`, []any{after, upto}, &touched); err != nil {
		return nil, nil, db.wrap(op, err)
	}
	gone, err := queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (string, error) {
		var from string
		return from, row.Scan(&from)
	}, `SELECT from_profile FROM merges WHERE seq > $1 AND seq <= $2 ORDER BY seq, id`, after, upto)
	return touched.Set(), gone, err
}

// EventsLeaving returns the profiles with a track event of the name at a time in [from, to).
func (db *DB) EventsLeaving(ctx context.Context, name string, from, to time.Time) (*segment.Set, error) {
	var s segment.SetBuilder
	err := profileSet(ctx, db.read, `SELECT profile_id FROM event_profiles WHERE name = $1 AND name <> '' AND at >= $2 AND at < $3`,
		[]any{name, from.UTC(), to.UTC()}, &s)
	return s.Set(), db.wrap("store.events_leaving", err)
}

// TouchesLeaving returns the profiles whose last touch as t names is at a time in [from, to).
func (db *DB) TouchesLeaving(ctx context.Context, t segment.Touched, from, to time.Time) (*segment.Set, error) {
	q := &query{db: db}
	q.add(`SELECT profile_id FROM profile_touches WHERE `)
	touchKey(q, t, nil)
	q.add(` AND last_at >= `, q.arg(from.UTC()), ` AND last_at < `, q.arg(to.UTC()))
	var s segment.SetBuilder
	err := profileSet(ctx, db.read, q.text.String(), q.args, &s)
	return s.Set(), db.wrap("store.touches_leaving", err)
}

// TraitDays returns the profiles with a trait of the name whose date is a day in [from, to).
func (db *DB) TraitDays(ctx context.Context, name, from, to string) (*segment.Set, error) {
	if from >= to {
		return segment.NewSet(), nil
	}
	q := &query{db: db}
	q.add(`SELECT profile_id FROM profile_traits WHERE name = `, q.arg(name), ` AND `)
	db.compare(q, traitJSON(db), segment.Compare{Op: segment.After, Value: "0000-00-00"}, "") // a date
	v := traitJSON(db)
	q.add(` AND `, v.text(q), ` >= `, q.arg(from), ` AND `, v.text(q), ` < `, q.arg(to))
	var s segment.SetBuilder
	err := profileSet(ctx, db.read, q.text.String(), q.args, &s)
	return s.Set(), db.wrap("store.trait_days", err)
}

// ApplyStep writes a step of the segment engine in one transaction. A Conflict says that another engine moved
// the offset; a write that breaks a unique key once the offset was checked is a fault of the step (as a
// Conflict, the engine would take it for another's work and try the same step again at once, for ever).
func (db *DB) ApplyStep(ctx context.Context, s segment.Step) error {
	const op = "store.apply_segment_step"
	at := s.At.UTC()
	hour := at.Truncate(time.Hour)
	checked := false
	err := db.derivedTx(ctx, op, func(tx *sql.Tx) error {
		exec := func(q string, args ...any) error {
			_, err := tx.ExecContext(ctx, q, args...)
			giveWay()
			return db.wrap(op, err)
		}
		for _, c := range []string{segment.Consumer, segment.UnmergesConsumer} {
			if err := exec(`INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`, c, at); err != nil {
				return err
			}
		}
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM consumer_offsets WHERE name = $1`+db.dialect.forUpdate, segment.Consumer).Scan(&pos); err != nil {
			return db.wrap(op, err)
		}
		if pos != s.From {
			return hearth.Errorf(hearth.Conflict, op, "The segment engine's offset moved from %d to %d: another engine stored this step.", s.From, pos)
		}
		checked = true
		if s.Upto != s.From {
			if err := exec(`UPDATE consumer_offsets SET position = $1, updated_at = $2 WHERE name = $3`, s.Upto, at, segment.Consumer); err != nil {
				return err
			}
		}
		if s.Unmerges > 0 {
			if err := exec(`UPDATE consumer_offsets SET position = $1, updated_at = $2 WHERE name = $3 AND position < $1`, s.Unmerges, at, segment.UnmergesConsumer); err != nil {
				return err
			}
		}
		sizes := map[string]int64{} // the change of each segment's size
		for _, from := range s.Gone {
			rows, err := tx.QueryContext(ctx, `SELECT segment_id FROM segment_members WHERE profile_id = $1`, from)
			if err != nil {
				return db.wrap(op, err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return db.wrap(op, err)
				}
				sizes[id]--
			}
			rows.Close()
			if err := exec(`DELETE FROM segment_members WHERE profile_id = $1`, from); err != nil {
				return err
			}
			if err := exec(`DELETE FROM segment_changes WHERE profile_id = $1`, from); err != nil {
				return err
			}
		}
		existing := map[string]bool{}
		if err := scanPairs(ctx, tx, `SELECT id, id FROM segments`, nil, func(id, _ string) { existing[id] = true }); err != nil {
			return db.wrap(op, err)
		}
		execAll := func(q string, args ...any) error { return exec(q, args...) }
		for _, d := range s.Deltas {
			if !existing[d.Segment] { // deleted meanwhile
				continue
			}
			members, changes := make([][]any, 0, len(d.Entered)), make([][]any, 0, len(d.Entered)+len(d.Left))
			for _, p := range d.Entered {
				members = append(members, []any{d.Segment, p, at})
				changes = append(changes, []any{d.Segment, p, true, at})
			}
			if err := db.insertRows(execAll, `INSERT INTO segment_members (segment_id, profile_id, since) VALUES `, members, ""); err != nil {
				return err
			}
			for left := d.Left; len(left) > 0; {
				n := min(knownChunk, len(left))
				q := &query{db: db}
				q.add(`DELETE FROM segment_members WHERE segment_id = `, q.arg(d.Segment), ` AND `)
				q.in("profile_id", left[:n])
				if err := exec(q.text.String(), q.args...); err != nil {
					return err
				}
				for _, p := range left[:n] {
					changes = append(changes, []any{d.Segment, p, false, at})
				}
				left = left[n:]
			}
			if err := db.insertRows(execAll, `INSERT INTO segment_changes (segment_id, profile_id, entered, at) VALUES `, changes, ""); err != nil {
				return err
			}
			sizes[d.Segment] += int64(len(d.Entered) - len(d.Left))
		}
		for _, id := range sortedKeys(s.Evaluated) {
			if !existing[id] {
				continue
			}
			// A full evaluation counts the members again, which a step's sums could only follow.
			ev := s.Evaluated[id]
			if err := exec(`UPDATE segments SET evaluated_version = $1, evaluated_offset = $2, evaluated_at = $3,
				size = (SELECT count(*) FROM segment_members WHERE segment_id = $4) WHERE id = $4`, ev.Version, ev.Offset, at, id); err != nil {
				return err
			}
			if _, ok := sizes[id]; !ok {
				sizes[id] = 0 // so that the size of this hour is recorded
			}
		}
		for _, id := range sortedKeys(sizes) {
			if !existing[id] {
				continue
			}
			if _, evaluated := s.Evaluated[id]; !evaluated {
				if err := exec(`UPDATE segments SET size = size + $1 WHERE id = $2`, sizes[id], id); err != nil {
					return err
				}
			}
			if err := exec(`INSERT INTO segment_sizes (segment_id, hour, size) SELECT id, $1, size FROM segments WHERE id = $2
				ON CONFLICT (segment_id, hour) DO UPDATE SET size = excluded.size`, hour, id); err != nil {
				return err
			}
		}
		for _, id := range sortedKeys(s.Checked) {
			if err := exec(`UPDATE segments SET windows_checked = $1 WHERE id = $2`, s.Checked[id].UTC(), id); err != nil {
				return err
			}
		}
		return nil
	})
	if checked && hearth.KindOf(err) == hearth.Conflict {
		return &hearth.Error{Kind: hearth.Internal, Op: op, Msg: "A write of the step broke a unique key.", Err: err}
	}
	return err
}

// SegmentMember is a member of a segment, as lists show one.
type SegmentMember struct {
	ProfileID string
	Name      string
	Stage     profile.Stage
	Since     time.Time
}

// MemberPage is a page of a segment's members, newest first.
type MemberPage struct {
	Members []SegmentMember
	Next    string // the cursor of the next page; "" at the end
}

// SegmentMembers returns up to limit members of a segment after the cursor of an earlier page ("" first).
func (db *DB) SegmentMembers(ctx context.Context, id, cursor string, limit int) (MemberPage, error) {
	const op = "store.segment_members_page"
	q := &query{db: db}
	q.add(`SELECT m.profile_id, p.name, p.steps, m.since FROM segment_members m JOIN profiles p ON p.id = m.profile_id WHERE m.segment_id = `, q.arg(id))
	if cursor != "" {
		nanos, pid, ok := strings.Cut(cursor, "_")
		n, err := strconv.ParseInt(nanos, 10, 64)
		if !ok || err != nil {
			return MemberPage{}, hearth.Errorf(hearth.Invalid, op, "The cursor is not one this API gave.")
		}
		since := time.Unix(0, n).UTC()
		q.add(` AND (m.since < `, q.arg(since), ` OR m.since = `, q.arg(since), ` AND m.profile_id < `, q.arg(pid), `)`)
	}
	q.add(` ORDER BY m.since DESC, m.profile_id DESC LIMIT `, q.arg(limit+1))
	members, err := queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (SegmentMember, error) {
		var m SegmentMember
		err := row.Scan(&m.ProfileID, &m.Name, stageOf{&m.Stage}, &m.Since)
		m.Since = m.Since.UTC()
		return m, err
	}, q.text.String(), q.args...)
	if err != nil {
		return MemberPage{}, err
	}
	page := MemberPage{Members: members}
	if len(members) > limit {
		page.Members = members[:limit]
		last := page.Members[limit-1]
		page.Next = strconv.FormatInt(last.Since.UnixNano(), 10) + "_" + last.ProfileID
	}
	return page, nil
}

// MemberExport is a member of a segment as an export writes one.
type MemberExport struct {
	SegmentMember
	Email string // the first of the profile's email addresses
	Phone string
}

// ExportMembers calls fn for every member of a segment, oldest member first, reading as it goes.
func (db *DB) ExportMembers(ctx context.Context, id string, fn func(MemberExport) error) error {
	const op = "store.export_segment_members"
	rows, err := db.read.QueryContext(ctx, `SELECT m.profile_id, p.name, p.steps, m.since,
		coalesce((SELECT min(value) FROM identities WHERE profile_id = m.profile_id AND type = 'email'), ''),
		coalesce((SELECT min(value) FROM identities WHERE profile_id = m.profile_id AND type = 'phone'), '')
		FROM segment_members m JOIN profiles p ON p.id = m.profile_id WHERE m.segment_id = $1 ORDER BY m.since, m.profile_id`, id)
	if err != nil {
		return db.wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m MemberExport
		if err := rows.Scan(&m.ProfileID, &m.Name, stageOf{&m.Stage}, &m.Since, &m.Email, &m.Phone); err != nil {
			return db.wrap(op, err)
		}
		m.Since = m.Since.UTC()
		if err := fn(m); err != nil {
			return err
		}
	}
	return db.wrap(op, rows.Err())
}

// SegmentSize is a segment's size at the end of an hour that changed it.
type SegmentSize struct {
	At   time.Time
	Size int64
}

// SegmentSizes returns a segment's sizes from since on, oldest first.
func (db *DB) SegmentSizes(ctx context.Context, id string, since time.Time) ([]SegmentSize, error) {
	return queryAll(ctx, db, "store.segment_sizes", func(row interface{ Scan(...any) error }) (SegmentSize, error) {
		var s SegmentSize
		err := row.Scan(&s.At, &s.Size)
		s.At = s.At.UTC()
		return s, err
	}, `SELECT hour, size FROM segment_sizes WHERE segment_id = $1 AND hour >= $2 ORDER BY hour`, id, since.UTC().Truncate(time.Hour))
}

// ProfileSegment is a segment a person is in.
type ProfileSegment struct {
	ID    string
	Name  string
	Since time.Time
}

// SegmentChange is a person entering or leaving a segment.
type SegmentChange struct {
	SegmentID string
	Segment   string // its name
	Entered   bool
	At        time.Time
}

// maxProfileSegmentChanges bounds the history a profile's segments return.
const maxProfileSegmentChanges = 500

// ProfileSegments returns the segments a profile is in, newest first, and its latest entering and leaving.
func (db *DB) ProfileSegments(ctx context.Context, profileID string) ([]ProfileSegment, []SegmentChange, error) {
	const op = "store.profile_segments"
	in, err := queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (ProfileSegment, error) {
		var s ProfileSegment
		err := row.Scan(&s.ID, &s.Name, &s.Since)
		s.Since = s.Since.UTC()
		return s, err
	}, `SELECT s.id, s.name, m.since FROM segment_members m JOIN segments s ON s.id = m.segment_id WHERE m.profile_id = $1 ORDER BY m.since DESC, s.name`, profileID)
	if err != nil {
		return nil, nil, err
	}
	changes, err := queryAll(ctx, db, op, func(row interface{ Scan(...any) error }) (SegmentChange, error) {
		var c SegmentChange
		err := row.Scan(&c.SegmentID, &c.Segment, &c.Entered, &c.At)
		c.At = c.At.UTC()
		return c, err
	}, `SELECT c.segment_id, s.name, c.entered, c.at FROM segment_changes c JOIN segments s ON s.id = c.segment_id
		WHERE c.profile_id = $1 ORDER BY c.at DESC, c.id DESC LIMIT $2`, profileID, maxProfileSegmentChanges)
	return in, changes, err
}
