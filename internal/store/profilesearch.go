package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// ProfileSummary is a profile as a list of people shows it.
type ProfileSummary struct {
	ID        string
	Name      string // the display name, "" when the traits give none
	Stage     profile.Stage
	FirstSeen time.Time
	LastSeen  time.Time
	// Email and Phone are an identifier of each to show: the one a search matched, else the profile's first.
	Email string
	Phone string
	// Other is the identifier to show of a profile with neither: its user id, else its WeChat unionid, else
	// its openid (a WeChat follower often has nothing else); zero when it has none of them either.
	Other identity.Identifier
}

// ProfileQuery is a search of profiles by prefixes, already folded and normalised as the columns they are
// compared with: NameKey as profiles.name_key, Email and Phones as identifier values. The matches of each are
// listed in turn (names, then emails, then phones), each in the order of its index, every profile once.
// Without any prefix, the most recently active profiles are listed, by their latest event in the log. With a
// Step, only the profiles that have reached that lifecycle step are listed.
type ProfileQuery struct {
	NameKey string
	Email   string
	Phones  []string      // E.164 prefixes, such as +86138
	Step    profile.Stage // identified, connected, activated or converted; "" for anyone
	Limit   int
	Cursor  string // a page's Next, to read the page after it
}

// ProfilePage is a page of profiles and the cursor of the next one ("" on the last). A page of recent
// activity for a step may hold fewer than its limit, even none, and a Next: the search looks so far back in
// the log for one page (maxRecentScan), and goes on from there with the next.
type ProfilePage struct {
	Items []ProfileSummary
	Next  string
}

// The phases of a search, in the order they are listed, and how a cursor names them.
const (
	phaseName   = 'n'
	phaseEmail  = 'e'
	phasePhone  = 'p'
	phaseRecent = 'r'
)

// searchCursor is where a page ended: the phase, and the last row's key in it (name_key and id for names,
// the value for identifiers, the seq for recent activity).
type searchCursor struct {
	phase byte
	key   string
	id    string
}

func (c searchCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(string(c.phase) + c.key + "\x00" + c.id))
}

func decodeSearchCursor(s string) (searchCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	key, id, ok := strings.Cut(string(b[min(1, len(b)):]), "\x00")
	if err != nil || len(b) == 0 || !ok || !utf8.ValidString(key) || !utf8.ValidString(id) {
		return searchCursor{}, hearth.Errorf(hearth.Invalid, "store.search_profiles", "The cursor is not one a search of profiles gave.")
	}
	return searchCursor{phase: b[0], key: key, id: id}, nil
}

// maxSearchLimit bounds a page of a search.
const maxSearchLimit = 200

// profileRow is a profiles row as a search reads it, and the identifier value that found it.
type profileRow struct {
	ProfileSummary
	nameKey string
	steps   int                   // the lifecycle steps met (profile.Steps.Bits)
	found   string                // the identifier value that matched
	ids     []identity.Identifier // the profile's emails, phones and identifiers to show (contactIdentities), by first seq
}

// summaryColumns are read FROM profiles p with seenJoin.
const summaryColumns = `p.id, p.name, p.name_key, p.steps, p.first_seen, p.last_seen, seen.at`

// scanSummary reads summaryColumns, and with found the matched identifier value after them.
func scanSummary(row interface{ Scan(...any) error }, found bool) (profileRow, error) {
	var r profileRow
	var later sql.NullTime
	dst := []any{&r.ID, &r.Name, &r.nameKey, &r.steps, &r.FirstSeen, &r.LastSeen, &later}
	if found {
		dst = append(dst, &r.found)
	}
	err := row.Scan(dst...)
	r.Stage = profile.StepsOfBits(r.steps).Stage()
	r.FirstSeen, r.LastSeen = r.FirstSeen.UTC(), laterSeen(r.LastSeen, later)
	return r, err
}

// SearchProfiles lists a page of the profiles a query matches. Every read is a range scan of an index:
// profiles_name_key for names, the primary key of identities for emails and phones, and the primary key of
// event_profiles (with event_profiles_profile to skip all but each profile's latest event) for recent activity.
func (db *DB) SearchProfiles(ctx context.Context, q ProfileQuery) (ProfilePage, error) {
	const op = "store.search_profiles"
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, maxSearchLimit)
	var phases []byte
	if q.NameKey != "" {
		phases = append(phases, phaseName)
	}
	if q.Email != "" {
		phases = append(phases, phaseEmail)
	}
	if len(q.Phones) > 0 {
		phases = append(phases, phasePhone)
	}
	if len(phases) == 0 {
		phases = append(phases, phaseRecent)
	}
	at := searchCursor{phase: phases[0]}
	if q.Cursor != "" {
		var err error
		if at, err = decodeSearchCursor(q.Cursor); err != nil {
			return ProfilePage{}, err
		}
		if !slices.Contains(phases, at.phase) {
			return ProfilePage{}, hearth.Errorf(hearth.Invalid, op, "The cursor is of another search; start again without it.")
		}
	}
	s := search{db: db, q: q}
	// One row more than the page, to know whether there is a next page.
	var out []profileRow
	var ends []searchCursor // where each row of out ends the page
	for _, ph := range phases[slices.Index(phases, at.phase):] {
		if ph != at.phase {
			at = searchCursor{phase: ph}
		}
		s.chunk = limit + 1 - len(out) + 4
		err := s.scan(ctx, at, func(r profileRow, end searchCursor) bool {
			out = append(out, r)
			ends = append(ends, end)
			return len(out) <= limit
		})
		if err != nil {
			return ProfilePage{}, db.wrap(op, err)
		}
		if len(out) > limit {
			break
		}
	}
	page := ProfilePage{Items: make([]ProfileSummary, 0, min(len(out), limit))}
	if len(out) > limit {
		out = out[:limit]
		page.Next = ends[limit-1].encode()
	} else if s.stopped != nil {
		page.Next = s.stopped.encode()
	}
	for _, r := range out {
		page.Items = append(page.Items, r.ProfileSummary)
	}
	return page, nil
}

// search runs the phases of one query.
type search struct {
	db *DB
	q  ProfileQuery
	// chunk is how many rows to read at a time from an index range: what the page still needs and one more,
	// and a few for rows of profiles that are skipped, being listed in an earlier phase or at an earlier
	// identifier in this one.
	chunk int
	// stopped is where a scan of recent activity for a step stopped, having looked as far back as one page may.
	stopped *searchCursor
}

// wanted reports whether a profile has reached the step the query asks for, if it asks.
func (s *search) wanted(r profileRow) bool {
	return s.q.Step == "" || r.steps&profile.StepBit(s.q.Step) != 0
}

// scan reads the phase of at from its position on and calls take with each profile to list, in order, until
// take returns false or the phase has no more.
func (s *search) scan(ctx context.Context, at searchCursor, take func(profileRow, searchCursor) bool) error {
	switch at.phase {
	case phaseName:
		return s.scanNames(ctx, at, take)
	case phaseEmail:
		return s.scanIdentifiers(ctx, at, identity.Email, []string{s.q.Email}, take)
	case phasePhone:
		return s.scanIdentifiers(ctx, at, identity.Phone, s.q.Phones, take)
	}
	return s.scanRecent(ctx, at, take)
}

// nameSearchSQL reads profiles by name_key in a prefix range, after a position (name_key, id). Its first term
// is the condition of the partial index profiles_name_key, which SQLite uses only when a query states it.
const nameSearchSQL = `SELECT ` + summaryColumns + ` FROM profiles p` + seenJoin + `
	WHERE p.name_key <> '' AND p.name_key >= $1 AND p.name_key < $2 AND (p.name_key > $3 OR p.id > $4)
	ORDER BY p.name_key, p.id LIMIT $5`

func (s *search) scanNames(ctx context.Context, at searchCursor, take func(profileRow, searchCursor) bool) error {
	prefix := s.q.NameKey
	lower := max(prefix, at.key)
	upper, bounded := prefixEnd(prefix)
	if !bounded {
		return nil
	}
	for {
		rows, err := s.rows(ctx, false, nameSearchSQL, lower, upper, at.key, at.id, s.chunk)
		if err != nil {
			return err
		}
		if err := s.withIdentities(ctx, rows); err != nil {
			return err
		}
		for _, r := range rows {
			at = searchCursor{phase: phaseName, key: r.nameKey, id: r.ID}
			if strings.HasPrefix(r.nameKey, prefix) && s.wanted(r) && !take(r, at) {
				return nil
			}
		}
		if len(rows) < s.chunk {
			return nil
		}
		lower = at.key
	}
}

// identifierSearchSQL reads identifiers of a type in a range of values, with their profiles, in the order of
// the primary key of identities. The first bound is > or >=, as the page starts after a value or at a prefix.
func identifierSearchSQL(after bool) string {
	op := ">="
	if after {
		op = ">"
	}
	return `SELECT ` + summaryColumns + `, i.value FROM identities i JOIN profiles p ON p.id = i.profile_id` + seenJoin + `
	WHERE i.type = $1 AND i.value ` + op + ` $2 AND i.value < $3 ORDER BY i.value LIMIT $4`
}

// scanIdentifiers lists the profiles with identifiers of a type that start with one of prefixes, by value. A
// profile is listed at its smallest matching value, and not at all when an earlier phase listed it.
func (s *search) scanIdentifiers(ctx context.Context, at searchCursor, t identity.Type, prefixes []string, take func(profileRow, searchCursor) bool) error {
	ranges := prefixRanges(prefixes)
	phase := byte(phaseEmail)
	if t == identity.Phone {
		phase = phasePhone
	}
	for _, rg := range ranges {
		if at.key != "" && rg.end <= at.key {
			continue // listed on earlier pages
		}
		lower, after := rg.start, false
		if at.key >= rg.start {
			lower, after = at.key, true
		}
		for {
			rows, err := s.rows(ctx, true, identifierSearchSQL(after), string(t), lower, rg.end, s.chunk)
			if err != nil {
				return err
			}
			if err := s.withIdentities(ctx, rows); err != nil {
				return err
			}
			for _, r := range rows {
				at = searchCursor{phase: phase, key: r.found}
				if !strings.HasPrefix(r.found, rg.prefix) || s.listedBefore(r, t) || !s.wanted(r) {
					continue
				}
				if t == identity.Email {
					r.Email = r.found
				} else {
					r.Phone = r.found
				}
				if !take(r, at) {
					return nil
				}
			}
			if len(rows) < s.chunk {
				break
			}
			lower, after = at.key, true
		}
	}
	return nil
}

// listedBefore reports whether the search lists the profile of an identifier row elsewhere: under its name,
// under an email (for a phone), or at a smaller identifier of the same phase.
func (s *search) listedBefore(r profileRow, t identity.Type) bool {
	if s.q.NameKey != "" && strings.HasPrefix(r.nameKey, s.q.NameKey) {
		return true
	}
	for _, id := range r.ids {
		switch {
		case id.Type == identity.Email && s.q.Email != "" && strings.HasPrefix(id.Value, s.q.Email):
			if t == identity.Phone || id.Value < r.found {
				return true
			}
		case id.Type == identity.Phone && t == identity.Phone && id.Value < r.found:
			for _, p := range s.q.Phones {
				if strings.HasPrefix(id.Value, p) {
					return true
				}
			}
		}
	}
	return false
}

// recentSQL reads the latest events of the log that are each their profile's latest, newest first, down to a
// floor: the primary key of event_profiles backwards, with a look into event_profiles_profile for each, and
// with a step, a look at the profile's row.
func recentSQL(step bool) string {
	q := `SELECT ep.seq, ep.profile_id FROM event_profiles ep WHERE ep.seq < $1 AND ep.seq >= $3`
	if step {
		q += ` AND EXISTS (SELECT 1 FROM profiles p WHERE p.id = ep.profile_id AND (p.steps & $4) <> 0)`
	}
	return q + ` AND NOT EXISTS (SELECT 1 FROM event_profiles x WHERE x.profile_id = ep.profile_id AND x.seq > ep.seq)
	ORDER BY ep.seq DESC LIMIT $2`
}

// A page of recent activity for a step looks back at most maxRecentScan events of the log, in windows of
// recentWindow: a step few people reached answers in a bounded time, a page that may be short (even empty)
// with where to go on from.
const (
	maxRecentScan = 200_000
	recentWindow  = 20_000
)

// scanRecent lists profiles by their latest event in the log, the most recent first.
func (s *search) scanRecent(ctx context.Context, at searchCursor, take func(profileRow, searchCursor) bool) error {
	before := int64(math.MaxInt64)
	if at.key != "" {
		n, err := strconv.ParseInt(at.key, 10, 64)
		if err != nil {
			return hearth.Errorf(hearth.Invalid, "store.search_profiles", "The cursor is not one a search of profiles gave.")
		}
		before = n
	}
	step := s.q.Step != ""
	args := func(floor int64) []any {
		a := []any{before, s.chunk, floor}
		if step {
			a = append(a, profile.StepBit(s.q.Step))
		}
		return a
	}
	// The window read is the seqs from floor up to top; low is the log's first with a profile.
	var scanned, top, floor, low int64
	if step {
		var high int64
		// Each its own subquery, so that each reads one end of the primary key rather than the table.
		if err := s.db.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT MIN(seq) FROM event_profiles), 0),
			COALESCE((SELECT MAX(seq) FROM event_profiles), 0)`).Scan(&low, &high); err != nil {
			return err
		}
		before = min(before, high+1)
		top, floor = before, max(before-recentWindow, low)
	}
	for {
		type latest struct {
			seq     int64
			profile string
		}
		var seqs []latest
		err := s.db.scanRows(ctx, recentSQL(step), args(floor), func(row *sql.Rows) error {
			var l latest
			err := row.Scan(&l.seq, &l.profile)
			seqs = append(seqs, l)
			return err
		})
		if err != nil {
			return err
		}
		ids := make([]string, len(seqs))
		for i, l := range seqs {
			ids[i] = l.profile
		}
		rows, err := s.db.profileRows(ctx, ids)
		if err != nil {
			return err
		}
		for _, l := range seqs {
			before = l.seq
			r, ok := rows[l.profile]
			if !ok || !s.wanted(r) {
				continue // merged into another since, or no longer at the step
			}
			if !take(r, searchCursor{phase: phaseRecent, key: strconv.FormatInt(l.seq, 10)}) {
				return nil
			}
		}
		if len(seqs) == s.chunk {
			continue // more in this window
		}
		// The window is read: the next one down, unless this was the log's start or the page has looked
		// as far back as it may.
		if floor <= low {
			return nil
		}
		scanned += top - floor
		before = floor
		if scanned >= maxRecentScan {
			s.stopped = &searchCursor{phase: phaseRecent, key: strconv.FormatInt(before, 10)}
			return nil
		}
		top, floor = before, max(before-recentWindow, low)
	}
}

// rows runs a search query whose rows are summaryColumns, with found the matched identifier value after them.
func (s *search) rows(ctx context.Context, found bool, query string, args ...any) ([]profileRow, error) {
	var out []profileRow
	err := s.db.scanRows(ctx, query, args, func(row *sql.Rows) error {
		r, err := scanSummary(row, found)
		out = append(out, r)
		return err
	})
	return out, err
}

// withIdentities reads the emails and phones of rows' profiles, and picks each one's first to show.
func (s *search) withIdentities(ctx context.Context, rows []profileRow) error {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	held, err := s.db.contactIdentities(ctx, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].ids = held[rows[i].ID]
		rows[i].Email, rows[i].Phone = firstOf(rows[i].ids, identity.Email), firstOf(rows[i].ids, identity.Phone)
		if rows[i].Email == "" && rows[i].Phone == "" {
			for _, t := range []identity.Type{identity.UserID, identity.WeChatUnionID, identity.WeChatOpenID} {
				if v := firstOf(rows[i].ids, t); v != "" {
					rows[i].Other = identity.Identifier{Type: t, Value: v}
					break
				}
			}
		}
	}
	return nil
}

// contactIdentities returns the emails, phones, user ids and WeChat ids of profiles, each profile's by first
// seq: what a list shows of a person.
func (db *DB) contactIdentities(ctx context.Context, profiles []string) (map[string][]identity.Identifier, error) {
	out := map[string][]identity.Identifier{}
	for len(profiles) > 0 {
		n := min(knownChunk, len(profiles))
		args := make([]any, n)
		for i, p := range profiles[:n] {
			args[i] = p
		}
		profiles = profiles[n:]
		err := db.scanRows(ctx, db.contactIdentitiesSQL(n), args, func(row *sql.Rows) error {
			var p string
			var id identity.Identifier
			err := row.Scan(&p, &id.Type, &id.Value)
			out[p] = append(out[p], id)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// contactIdentitiesSQL reads the identifiers of n profiles that a list shows. Its type is compared as an expression,
// which no index serves: without statistics, SQLite would otherwise read every email and phone in the order
// of the primary key, for the ORDER BY, where the profiles' index finds a few rows (a page of people among
// 2.3 million profiles: 320 ms against 6 ms).
func (db *DB) contactIdentitiesSQL(n int) string {
	return `SELECT profile_id, type, value FROM identities WHERE profile_id IN (` + db.placeholders(1, n) + `)
		AND (type || '') IN ('email', 'phone', 'user_id', 'wechat_unionid', 'wechat_openid') ORDER BY profile_id, first_seq, type, value`
}

func firstOf(ids []identity.Identifier, t identity.Type) string {
	for _, id := range ids {
		if id.Type == t {
			return id.Value
		}
	}
	return ""
}

// profileRows reads profiles by id, with their emails and phones.
func (db *DB) profileRows(ctx context.Context, ids []string) (map[string]profileRow, error) {
	out := map[string]profileRow{}
	var list []profileRow
	for rest := ids; len(rest) > 0; {
		n := min(knownChunk, len(rest))
		args := make([]any, n)
		for i, p := range rest[:n] {
			args[i] = p
		}
		rest = rest[n:]
		err := db.scanRows(ctx, `SELECT `+summaryColumns+` FROM profiles p`+seenJoin+` WHERE p.id IN (`+db.placeholders(1, n)+`)`, args, func(row *sql.Rows) error {
			r, err := scanSummary(row, false)
			list = append(list, r)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	s := search{db: db}
	if err := s.withIdentities(ctx, list); err != nil {
		return nil, err
	}
	for _, r := range list {
		out[r.ID] = r
	}
	return out, nil
}

// ProfileSummaries returns profiles as a list shows them, in the order of ids; an id of no profile (merged away
// since) is left out.
func (db *DB) ProfileSummaries(ctx context.Context, ids []string) ([]ProfileSummary, error) {
	rows, err := db.profileRows(ctx, ids)
	if err != nil {
		return nil, db.wrap("store.profile_summaries", err)
	}
	out := make([]ProfileSummary, 0, len(ids))
	for _, id := range ids {
		if r, ok := rows[id]; ok {
			out = append(out, r.ProfileSummary)
		}
	}
	return out, nil
}

// ProfileSummary returns one profile as a list shows it.
func (db *DB) ProfileSummary(ctx context.Context, id string) (ProfileSummary, error) {
	const op = "store.profile_summary"
	rows, err := db.profileRows(ctx, []string{id})
	if err != nil {
		return ProfileSummary{}, db.wrap(op, err)
	}
	r, ok := rows[id]
	if !ok {
		return ProfileSummary{}, notFound(op, "Profile")
	}
	return r.ProfileSummary, nil
}

// maxMergeChain bounds how many merges ProfileMergedInto follows from one profile to the one it lives in.
const maxMergeChain = 64

// ProfileMergedInto returns the profile that a profile merged away now lives in, following the merges from
// it (into a profile that was merged in turn, and so on); NotFound when id was never merged into a profile
// that exists. Without an index on merges (from_profile) each step reads the whole merges table: a rare
// read, for links to profiles that no longer exist.
func (db *DB) ProfileMergedInto(ctx context.Context, id string) (string, error) {
	const op = "store.profile_merged_into"
	for range maxMergeChain {
		var into string
		var live bool
		err := db.read.QueryRowContext(ctx, `SELECT into_profile, EXISTS (SELECT 1 FROM profiles WHERE id = into_profile)
			FROM merges WHERE from_profile = $1 ORDER BY seq DESC LIMIT 1`, id).Scan(&into, &live)
		if err == sql.ErrNoRows {
			break
		}
		if err != nil {
			return "", db.wrap(op, err)
		}
		if live {
			return into, nil
		}
		id = into
	}
	return "", notFound(op, "Profile")
}

// prefixRange is the range of strings that start with a prefix: [start, end) in byte order.
type prefixRange struct {
	prefix, start, end string
}

// prefixRanges returns the ranges of prefixes in order, without those inside another's.
func prefixRanges(prefixes []string) []prefixRange {
	ps := slices.Clone(prefixes)
	slices.Sort(ps)
	var out []prefixRange
	for _, p := range ps {
		if p == "" || len(out) > 0 && strings.HasPrefix(p, out[len(out)-1].prefix) {
			continue
		}
		if end, ok := prefixEnd(p); ok {
			out = append(out, prefixRange{prefix: p, start: p, end: end})
		}
	}
	return out
}

// prefixEnd returns the least string greater than every string that starts with prefix, in byte order (which
// is code point order): prefix with its last character made the next one. False when there is none.
func prefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, n := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-n]
		switch {
		case r == utf8.RuneError && n <= 1, r == utf8.MaxRune:
			continue // no next character: the end is the next one after the shorter prefix
		case r == 0xD7FF:
			r = 0xE000 // past the surrogates, which UTF-8 cannot hold
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}

// ProfileSteps counts the profiles by the lifecycle steps they meet, for each combination of steps met: a scan
// of the index on steps, about a third of a second for 2.3 million profiles once its pages are in memory.
func (db *DB) ProfileSteps(ctx context.Context) (map[profile.Steps]int64, error) {
	const op = "store.profile_steps"
	counts := map[profile.Steps]int64{}
	err := db.scanRows(ctx, `SELECT steps, COUNT(*) FROM profiles GROUP BY steps`, nil, func(row *sql.Rows) error {
		var steps int
		var n int64
		err := row.Scan(&steps, &n)
		counts[profile.StepsOfBits(steps)] += n
		return err
	})
	if err != nil {
		return nil, db.wrap(op, err)
	}
	return counts, nil
}
