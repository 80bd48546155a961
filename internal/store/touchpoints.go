package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// Campaigns.

const campaignColumns = `id, name, goal, starts_at, ends_at, status, fallback_url, utm_source, utm_medium, utm_campaign, created_at, updated_at`

func scanCampaign(row interface{ Scan(...any) error }) (touchpoint.Campaign, error) {
	var c touchpoint.Campaign
	var starts, ends sql.NullTime
	err := row.Scan(&c.ID, &c.Name, &c.Goal, &starts, &ends, &c.Status, &c.FallbackURL, &c.UTMSource, &c.UTMMedium, &c.UTMCampaign, &c.CreatedAt, &c.UpdatedAt)
	c.StartsAt, c.EndsAt = nullTime(starts), nullTime(ends)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// nullable turns an optional time into a parameter.
func nullable(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// CreateCampaign stores a new campaign.
func (db *DB) CreateCampaign(ctx context.Context, c touchpoint.Campaign) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO campaigns (`+campaignColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.Name, c.Goal, nullable(c.StartsAt), nullable(c.EndsAt), c.Status, c.FallbackURL, c.UTMSource, c.UTMMedium, c.UTMCampaign, c.CreatedAt, c.UpdatedAt)
	return db.wrap("store.create_campaign", err)
}

// Campaign returns a campaign by id.
func (db *DB) Campaign(ctx context.Context, id string) (touchpoint.Campaign, error) {
	c, err := scanCampaign(db.read.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return c, notFound("store.campaign", "Campaign")
	}
	return c, db.wrap("store.campaign", err)
}

// ListCampaigns lists campaigns, newest first.
func (db *DB) ListCampaigns(ctx context.Context) ([]touchpoint.Campaign, error) {
	return queryAll(ctx, db, "store.list_campaigns", scanCampaign, `SELECT `+campaignColumns+` FROM campaigns ORDER BY id DESC`)
}

// UpdateCampaign saves a campaign's fields.
func (db *DB) UpdateCampaign(ctx context.Context, c touchpoint.Campaign) error {
	res, err := db.write.ExecContext(ctx, `UPDATE campaigns SET name = $2, goal = $3, starts_at = $4, ends_at = $5, status = $6, fallback_url = $7,
		utm_source = $8, utm_medium = $9, utm_campaign = $10, updated_at = $11 WHERE id = $1`,
		c.ID, c.Name, c.Goal, nullable(c.StartsAt), nullable(c.EndsAt), c.Status, c.FallbackURL, c.UTMSource, c.UTMMedium, c.UTMCampaign, c.UpdatedAt)
	if err != nil {
		return db.wrap("store.update_campaign", err)
	}
	return oneRow(res, "store.update_campaign", "Campaign")
}

// Touchpoints.

const touchpointColumns = `number, id, name, channel, destination_url, campaign_id, location, owner, status, last_serial, created_at, updated_at`

func scanTouchpoint(row interface{ Scan(...any) error }) (touchpoint.Touchpoint, error) {
	var t touchpoint.Touchpoint
	var campaign sql.NullString
	err := row.Scan(&t.Number, &t.ID, &t.Name, &t.Channel, &t.DestinationURL, &campaign, &t.Location, &t.Owner, &t.Status, &t.LastSerial, &t.CreatedAt, &t.UpdatedAt)
	t.CampaignID = campaign.String
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// nullString turns an optional reference into a parameter.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateTouchpoint stores a new touchpoint and returns its number.
func (db *DB) CreateTouchpoint(ctx context.Context, t touchpoint.Touchpoint) (int64, error) {
	var n int64
	err := db.write.QueryRowContext(ctx, `INSERT INTO touchpoints (id, name, channel, destination_url, campaign_id, location, owner, status, last_serial, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING number`,
		t.ID, t.Name, t.Channel, t.DestinationURL, nullString(t.CampaignID), t.Location, t.Owner, t.Status, t.LastSerial, t.CreatedAt, t.UpdatedAt).Scan(&n)
	return n, db.wrap("store.create_touchpoint", err)
}

// Touchpoint returns a touchpoint by id.
func (db *DB) Touchpoint(ctx context.Context, id string) (touchpoint.Touchpoint, error) {
	t, err := scanTouchpoint(db.read.QueryRowContext(ctx, `SELECT `+touchpointColumns+` FROM touchpoints WHERE id = $1`, id))
	if err == sql.ErrNoRows {
		return t, notFound("store.touchpoint", "Touchpoint")
	}
	return t, db.wrap("store.touchpoint", err)
}

// TouchpointByNumber returns the touchpoint a token names.
func (db *DB) TouchpointByNumber(ctx context.Context, number int64) (touchpoint.Touchpoint, error) {
	t, err := scanTouchpoint(db.read.QueryRowContext(ctx, `SELECT `+touchpointColumns+` FROM touchpoints WHERE number = $1`, number))
	if err == sql.ErrNoRows {
		return t, notFound("store.touchpoint_by_number", "Touchpoint")
	}
	return t, db.wrap("store.touchpoint_by_number", err)
}

// ListTouchpoints lists the touchpoints a filter selects, newest first.
func (db *DB) ListTouchpoints(ctx context.Context, f touchpoint.TouchpointFilter) ([]touchpoint.Touchpoint, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.CampaignID != "" {
		add(`campaign_id = ?`, f.CampaignID)
	}
	if f.Channel != "" {
		add(`channel = ?`, f.Channel)
	}
	if f.Status != "" {
		add(`status = ?`, f.Status)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		add(`(lower(name) LIKE ? ESCAPE '\' OR lower(location) LIKE ? ESCAPE '\' OR lower(owner) LIKE ? ESCAPE '\')`, "%"+escapeLike(strings.ToLower(q))+"%")
	}
	query := `SELECT ` + touchpointColumns + ` FROM touchpoints`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	return queryAll(ctx, db, "store.list_touchpoints", scanTouchpoint, query+` ORDER BY number DESC`, args...)
}

// escapeLike makes s match itself in a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UpdateTouchpoint saves a touchpoint's fields; its number and serials do not change.
func (db *DB) UpdateTouchpoint(ctx context.Context, t touchpoint.Touchpoint) error {
	res, err := db.write.ExecContext(ctx, `UPDATE touchpoints SET name = $2, channel = $3, destination_url = $4, campaign_id = $5, location = $6,
		owner = $7, status = $8, updated_at = $9 WHERE id = $1`,
		t.ID, t.Name, t.Channel, t.DestinationURL, nullString(t.CampaignID), t.Location, t.Owner, t.Status, t.UpdatedAt)
	if err != nil {
		return db.wrap("store.update_touchpoint", err)
	}
	return oneRow(res, "store.update_touchpoint", "Touchpoint")
}

// ReserveSerials raises a touchpoint's last serial by n and returns the first new one. Two nodes issuing at
// once get ranges that do not overlap.
func (db *DB) ReserveSerials(ctx context.Context, touchpointID string, n int64) (int64, error) {
	var last int64
	err := db.write.QueryRowContext(ctx, `UPDATE touchpoints SET last_serial = last_serial + $2 WHERE id = $1 RETURNING last_serial`, touchpointID, n).Scan(&last)
	if err == sql.ErrNoRows {
		return 0, notFound("store.reserve_serials", "Touchpoint")
	}
	return last - n + 1, db.wrap("store.reserve_serials", err)
}

// TouchStats returns the touch counts of every touched touchpoint.
func (db *DB) TouchStats(ctx context.Context) ([]touchpoint.TouchStats, error) {
	return queryAll(ctx, db, "store.touch_stats", func(row interface{ Scan(...any) error }) (touchpoint.TouchStats, error) {
		var s touchpoint.TouchStats
		var last sql.NullTime
		err := row.Scan(&s.TouchpointID, &s.Touches, &s.BotTouches, &last)
		s.LastTouchAt = nullTime(last)
		return s, err
	}, `SELECT touchpoint_id, touches, bot_touches, last_touch_at FROM touch_stats`)
}

// Revocations.

// CreateRevocation stores a revocation.
func (db *DB) CreateRevocation(ctx context.Context, r touchpoint.Revocation) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO token_revocations (id, touchpoint_id, kind, token, serial_from, serial_to, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.ID, r.TouchpointID, r.Kind, r.Token, r.SerialFrom, r.SerialTo, r.Reason, r.CreatedAt)
	return db.wrap("store.create_revocation", err)
}

// Revocations lists a touchpoint's revocations, oldest first.
func (db *DB) Revocations(ctx context.Context, touchpointID string) ([]touchpoint.Revocation, error) {
	return queryAll(ctx, db, "store.revocations", func(row interface{ Scan(...any) error }) (touchpoint.Revocation, error) {
		var r touchpoint.Revocation
		err := row.Scan(&r.ID, &r.TouchpointID, &r.Kind, &r.Token, &r.SerialFrom, &r.SerialTo, &r.Reason, &r.CreatedAt)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	}, `SELECT id, touchpoint_id, kind, token, serial_from, serial_to, reason, created_at FROM token_revocations WHERE touchpoint_id = $1 ORDER BY id`, touchpointID)
}

// Signing keys.

// SigningKeys lists every signing key, retired ones too, oldest first.
func (db *DB) SigningKeys(ctx context.Context) ([]touchpoint.StoredKey, error) {
	return queryAll(ctx, db, "store.signing_keys", func(row interface{ Scan(...any) error }) (touchpoint.StoredKey, error) {
		var k touchpoint.StoredKey
		var retired sql.NullTime
		err := row.Scan(&k.ID, &k.Sealed, &k.CreatedAt, &retired)
		k.CreatedAt, k.RetiredAt = k.CreatedAt.UTC(), nullTime(retired)
		return k, err
	}, `SELECT id, sealed, created_at, retired_at FROM signing_keys ORDER BY id`)
}

// CreateSigningKey stores a sealed key and returns its id.
func (db *DB) CreateSigningKey(ctx context.Context, sealed []byte, at time.Time) (uint32, error) {
	var id uint32
	err := db.write.QueryRowContext(ctx, `INSERT INTO signing_keys (sealed, created_at) VALUES ($1, $2) RETURNING id`, sealed, at).Scan(&id)
	return id, db.wrap("store.create_signing_key", err)
}

// RetireSigningKey retires a key for good.
func (db *DB) RetireSigningKey(ctx context.Context, id uint32, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE signing_keys SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL`, id, at)
	if err != nil {
		return db.wrap("store.retire_signing_key", err)
	}
	return oneRow(res, "store.retire_signing_key", "Signing key")
}

// queryAll runs a query on the read pool and scans every row.
func queryAll[T any](ctx context.Context, db *DB, op string, scan func(interface{ Scan(...any) error }) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, db.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, db.wrap(op, err)
		}
		out = append(out, v)
	}
	return out, db.wrap(op, rows.Err())
}

// ReadTouches returns up to limit touch events in (after, upto], in log order, as far as counting them needs:
// the token is read out of the payload in the database, so that the payloads stay there.
func (db *DB) ReadTouches(ctx context.Context, after, upto int64, limit int) ([]touchpoint.TouchRecord, error) {
	return queryAll(ctx, db, "store.read_touches", func(row interface{ Scan(...any) error }) (touchpoint.TouchRecord, error) {
		var r touchpoint.TouchRecord
		err := row.Scan(&r.Seq, &r.Token, &r.Bot, &r.At)
		r.At = r.At.UTC()
		return r, err
	}, `SELECT seq, `+db.dialect.touchToken+`, bot, timestamp FROM events WHERE name = '`+collect.TouchEventName+`' AND seq > $1 AND seq <= $2 AND type = 'track' ORDER BY seq LIMIT $3`,
		after, upto, limit) // the name as a literal: so the planners see that the partial index events_touches applies
}

// AddTouchCounts adds a pass of the touch counter to the totals and the hours and records how far each has
// read, in one transaction: a counter that stops between the two never counts an event twice, and of two
// nodes' counters that read the same touches, the second finds the offsets moved (they are locked until the
// first commits) and adds nothing. The counts are derived from the log and commit with their offsets, so the
// commit need not wait for the disk (derivedTx); and a pass of a backlog adds to thousands of rows (a
// per-item code's touches each to its own), in statements of many rows, kept prepared: one statement a row,
// parsed each time, and a sync at each commit held the state's one writer for 40% of the first minutes of a
// catch-up on the 20-million-event demo world, while the profile processor waited for it.
func (db *DB) AddTouchCounts(ctx context.Context, c touchpoint.TouchCounts) error {
	const op = "store.add_touch_counts"
	offsets := []struct {
		name       string
		from, upto int64
	}{{touchpoint.StatsConsumer, c.StatsFrom, c.StatsThrough}, {touchpoint.HoursConsumer, c.HoursFrom, c.HoursThrough}}
	now := db.clock.Now()
	return db.derivedStmtTx(ctx, op, func(tx *sql.Tx, exec execFunc) error {
		for _, o := range offsets {
			if err := exec(`INSERT INTO consumer_offsets (name, position, updated_at) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING`, o.name, now); err != nil {
				return err
			}
			var pos int64
			if err := tx.QueryRowContext(ctx, `SELECT position FROM consumer_offsets WHERE name = $1`+db.dialect.forUpdate, o.name).Scan(&pos); err != nil {
				return db.wrap(op, err)
			}
			if pos != o.from {
				return hearth.Errorf(hearth.Conflict, op, "The touch counter's offset %s moved from %d to %d: another counter added these touches.", o.name, o.from, pos)
			}
		}
		// One row per touchpoint and per touchpoint and hour: PostgreSQL refuses an upsert that meets the same
		// row twice.
		rows := make([][]any, 0, max(len(c.Stats), len(c.Hours)))
		for _, d := range c.Stats {
			rows = append(rows, []any{d.TouchpointID, d.Touches, d.BotTouches, nullable(d.LastTouchAt)})
		}
		if err := db.insertRows(exec, `INSERT INTO touch_stats AS s (touchpoint_id, touches, bot_touches, last_touch_at) VALUES `, rows,
			` ON CONFLICT (touchpoint_id) DO UPDATE SET touches = s.touches + excluded.touches, bot_touches = s.bot_touches + excluded.bot_touches,
				last_touch_at = CASE WHEN s.last_touch_at IS NULL OR excluded.last_touch_at > s.last_touch_at THEN excluded.last_touch_at ELSE s.last_touch_at END`); err != nil {
			return err
		}
		rows = rows[:0]
		for _, h := range c.Hours {
			rows = append(rows, []any{h.TouchpointID, h.Hour.UTC(), h.Touches, h.BotTouches})
		}
		if err := db.insertRows(exec, `INSERT INTO touch_hours AS h (touchpoint_id, hour, touches, bot_touches) VALUES `, rows,
			` ON CONFLICT (touchpoint_id, hour) DO UPDATE SET touches = h.touches + excluded.touches, bot_touches = h.bot_touches + excluded.bot_touches`); err != nil {
			return err
		}
		for _, o := range offsets {
			if err := exec(`UPDATE consumer_offsets SET position = $1, updated_at = $2 WHERE name = $3`, o.upto, now, o.name); err != nil {
				return err
			}
		}
		return nil
	})
}

// CampaignTouchHours returns the touches per hour in [from, to) of the touchpoints in a campaign now, summed
// (TouchpointID empty), the hours that have any, in order.
func (db *DB) CampaignTouchHours(ctx context.Context, campaignID string, from, to time.Time) ([]touchpoint.TouchHour, error) {
	return queryAll(ctx, db, "store.campaign_touch_hours", scanSummedHour, `SELECT h.hour, sum(h.touches), sum(h.bot_touches) FROM touch_hours h JOIN touchpoints t ON t.id = h.touchpoint_id
		WHERE t.campaign_id = $1 AND h.hour >= $2 AND h.hour < $3 GROUP BY h.hour ORDER BY h.hour`,
		campaignID, from.UTC(), to.UTC())
}

// AllTouchHours returns the touches per hour in [from, to) of every touchpoint, summed (TouchpointID empty),
// the hours that have any, in order.
func (db *DB) AllTouchHours(ctx context.Context, from, to time.Time) ([]touchpoint.TouchHour, error) {
	return queryAll(ctx, db, "store.all_touch_hours", scanSummedHour, `SELECT hour, sum(touches), sum(bot_touches) FROM touch_hours WHERE hour >= $1 AND hour < $2 GROUP BY hour ORDER BY hour`,
		from.UTC(), to.UTC())
}

// scanSummedHour reads an hour and its touches summed over several touchpoints.
func scanSummedHour(row interface{ Scan(...any) error }) (touchpoint.TouchHour, error) {
	var h touchpoint.TouchHour
	err := row.Scan(&h.Hour, &h.Touches, &h.BotTouches)
	h.Hour = h.Hour.UTC()
	return h, err
}

// TouchHours returns a touchpoint's touches per hour in [from, to), the hours that have any, in order.
func (db *DB) TouchHours(ctx context.Context, touchpointID string, from, to time.Time) ([]touchpoint.TouchHour, error) {
	return queryAll(ctx, db, "store.touch_hours", func(row interface{ Scan(...any) error }) (touchpoint.TouchHour, error) {
		h := touchpoint.TouchHour{TouchpointID: touchpointID}
		err := row.Scan(&h.Hour, &h.Touches, &h.BotTouches)
		h.Hour = h.Hour.UTC()
		return h, err
	}, `SELECT hour, touches, bot_touches FROM touch_hours WHERE touchpoint_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`,
		touchpointID, from.UTC(), to.UTC())
}
