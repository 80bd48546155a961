package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/nyaruka/phonenumbers"
)

// The 360° view of profiles: a lookup by any identifier, a profile whole, people search, and the timeline.
// Identifier values are personal data: they come in query strings, which the access log never records.

// ProfileReader reads the profiles the profile processor stores; *store.DB is one.
type ProfileReader interface {
	Profile(ctx context.Context, id string) (profile.Profile, error)
	ProfileByIdentifier(ctx context.Context, t identity.Type, value string) (profile.Profile, error)
	// ProfileEvents returns up to limit events of a profile's timeline before a seq (0: the newest), newest first.
	ProfileEvents(ctx context.Context, id string, before int64, limit int) ([]collect.Event, error)
	ProfileSummary(ctx context.Context, id string) (store.ProfileSummary, error)
	// ProfileSummaries returns profiles as a list shows them, in the order of ids, leaving out ids of no profile.
	ProfileSummaries(ctx context.Context, ids []string) ([]store.ProfileSummary, error)
	// ProfileMergedInto returns the profile that a profile merged away lives in now.
	ProfileMergedInto(ctx context.Context, id string) (string, error)
	SearchProfiles(ctx context.Context, q store.ProfileQuery) (store.ProfilePage, error)
	// ProfileSteps counts the profiles by the lifecycle steps they meet, for each combination met.
	ProfileSteps(ctx context.Context) (map[profile.Steps]int64, error)
}

type identityJSON struct {
	Type     identity.Type `json:"type"`
	Value    string        `json:"value"`
	FirstSeq int64         `json:"first_seq"`
	FirstAt  *time.Time    `json:"first_at"` // that event's time; null once retention removed it
}

type traitJSON struct {
	Value    json.RawMessage `json:"value"`
	SourceID string          `json:"source_id"`
	Source   string          `json:"source"` // the source's name
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
}

type profileTouchJSON struct {
	TouchpointID string    `json:"touchpoint_id"`
	Touchpoint   string    `json:"touchpoint"` // its name when last touched
	Channel      string    `json:"channel"`
	CampaignID   *string   `json:"campaign_id"`
	Campaign     *string   `json:"campaign"` // the campaign's name, if it still exists
	Count        int       `json:"count"`
	FirstSeq     int64     `json:"first_seq"`
	FirstAt      time.Time `json:"first_at"`
	LastSeq      int64     `json:"last_seq"`
	LastAt       time.Time `json:"last_at"`
}

// touchMomentJSON is one touch: a profile's first or last.
type touchMomentJSON struct {
	TouchpointID string    `json:"touchpoint_id"`
	Touchpoint   string    `json:"touchpoint"`
	Channel      string    `json:"channel"`
	CampaignID   *string   `json:"campaign_id"`
	Campaign     *string   `json:"campaign"`
	Seq          int64     `json:"seq"`
	At           time.Time `json:"at"`
}

type stageChangeJSON struct {
	Seq  int64         `json:"seq"`
	From profile.Stage `json:"from"`
	To   profile.Stage `json:"to"`
	At   time.Time     `json:"at"`
}

// stepsJSON says which lifecycle rules the person meets, each on its own: a later step does not need an
// earlier one (a purchase without a reachable channel).
type stepsJSON struct {
	Identified bool `json:"identified"`
	Connected  bool `json:"connected"`
	Activated  bool `json:"activated"`
	Converted  bool `json:"converted"`
}

type mergeJSON struct {
	Seq  int64     `json:"seq"`
	Into string    `json:"into"`
	From string    `json:"from"`
	Via  viaJSON   `json:"via"`
	At   time.Time `json:"at"`
}

type viaJSON struct {
	Type  identity.Type `json:"type"`
	Value string        `json:"value"`
}

type profileJSON struct {
	ID string `json:"id"`
	// AbsorbedID is the id asked for when it is of a profile that this one absorbed in a merge; else null.
	AbsorbedID *string       `json:"absorbed_id"`
	Name       string        `json:"name"`
	Stage      profile.Stage `json:"stage"`
	Steps      stepsJSON     `json:"steps"`
	// When each step was met, null where it is not (or its event is gone): identified and connected at the
	// first event that brought an identifier meeting the rule, activated and converted at the first
	// activation and conversion events.
	IdentifiedAt *time.Time           `json:"identified_at"`
	ConnectedAt  *time.Time           `json:"connected_at"`
	ActivatedAt  *time.Time           `json:"activated_at"`
	ConvertedAt  *time.Time           `json:"converted_at"`
	FirstSeen    time.Time            `json:"first_seen"`
	LastSeen     time.Time            `json:"last_seen"`
	Identities   []identityJSON       `json:"identities"`
	Traits       map[string]traitJSON `json:"traits"`
	Touches      []profileTouchJSON   `json:"touches"`
	FirstTouch   *touchMomentJSON     `json:"first_touch"`
	LastTouch    *touchMomentJSON     `json:"last_touch"`
	Stages       []stageChangeJSON    `json:"stages"`
	Merges       []mergeJSON          `json:"merges"`
}

type profileSummaryJSON struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Stage     profile.Stage `json:"stage"`
	FirstSeen time.Time     `json:"first_seen"`
	LastSeen  time.Time     `json:"last_seen"`
	Email     *string       `json:"email"` // the email that matched the search, else the profile's first
	Phone     *string       `json:"phone"`
	// Identifier is what to show of a person with neither: a user id or WeChat id; null when none.
	Identifier *summaryIDJSON `json:"identifier"`
}

type summaryIDJSON struct {
	Type  identity.Type `json:"type"`
	Value string        `json:"value"`
}

func toProfileSummary(p store.ProfileSummary) profileSummaryJSON {
	out := profileSummaryJSON{ID: p.ID, Name: p.Name, Stage: p.Stage, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen, Email: orNull(p.Email), Phone: orNull(p.Phone)}
	if p.Other.Value != "" {
		out.Identifier = &summaryIDJSON{Type: p.Other.Type, Value: p.Other.Value}
	}
	return out
}

// timelineEventJSON is an event as the debugger shows it, with its source and, for a touch, what was touched.
type timelineEventJSON struct {
	eventJSON
	SourceID   string             `json:"source_id"`
	Source     string             `json:"source"`      // its name
	SourceKind collect.SourceKind `json:"source_kind"` // website, app, server, wechat, offline or touch
	Touch      *timelineTouchJSON `json:"touch"`
}

type timelineTouchJSON struct {
	TouchpointID string  `json:"touchpoint_id"`
	Touchpoint   string  `json:"touchpoint"`
	Channel      string  `json:"channel"`
	CampaignID   *string `json:"campaign_id"`
	Campaign     *string `json:"campaign"`
	Via          string  `json:"via"`
	Serial       int64   `json:"serial,omitempty"`
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lookupProfile finds the profile that holds an identifier, given as people write it: the value is
// normalised by the identity rules first.
func (s *Server) lookupProfile(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	const op = "httpapi.lookup_profile"
	q := r.URL.Query()
	rules, err := s.identityRules(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t := identity.Type(q.Get("type"))
	if rules.Priority(t) < 0 {
		types := make([]string, 0, len(rules.Types()))
		for _, t := range rules.Types() {
			types = append(types, string(t))
		}
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "The parameter type must be an identifier type: %s.", strings.Join(types, ", ")))
		return
	}
	id, ok := rules.Normalize(t, q.Get("value"))
	if !ok {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, op, "The parameter value is not a valid %s identifier.", t))
		return
	}
	p, err := s.Profiles.ProfileByIdentifier(r.Context(), id.Type, id.Value)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerProfile(w, r, p, "")
}

// getProfile answers a profile whole. The id of a profile merged into another answers the one it lives in
// now, saying so, so that links to old ids keep working.
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id := r.PathValue("id")
	p, err := s.Profiles.Profile(r.Context(), id)
	absorbed := ""
	if hearth.KindOf(err) == hearth.NotFound {
		if into, err2 := s.Profiles.ProfileMergedInto(r.Context(), id); err2 == nil {
			absorbed = id
			p, err = s.Profiles.Profile(r.Context(), into)
		} else if hearth.KindOf(err2) != hearth.NotFound {
			err = err2
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.answerProfile(w, r, p, absorbed)
}

func (s *Server) answerProfile(w http.ResponseWriter, r *http.Request, p profile.Profile, absorbed string) {
	names := s.newNames()
	out := profileJSON{ID: p.ID, AbsorbedID: orNull(absorbed), Name: p.Name, Stage: p.Stage, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen,
		Identities: make([]identityJSON, 0, len(p.Identities)), Traits: make(map[string]traitJSON, len(p.Traits)),
		Touches: make([]profileTouchJSON, 0, len(p.Touches)), Stages: make([]stageChangeJSON, 0, len(p.Stages)), Merges: make([]mergeJSON, 0, len(p.Merges))}
	if out.Stage == "" {
		out.Stage = profile.Anonymous
	}
	steps := p.Steps()
	out.Steps = stepsJSON{Identified: steps.Identified, Connected: steps.Connected, Activated: steps.Activated, Converted: steps.Converted}
	at := p.StepTimes()
	out.IdentifiedAt, out.ConnectedAt = timeOrNull(at.Identified), timeOrNull(at.Connected)
	out.ActivatedAt, out.ConvertedAt = timeOrNull(at.Activated), timeOrNull(at.Converted)
	for _, id := range p.Identities {
		out.Identities = append(out.Identities, identityJSON{Type: id.Identifier.Type, Value: id.Identifier.Value, FirstSeq: id.FirstSeq, FirstAt: timeOrNull(id.FirstAt)})
	}
	for _, t := range p.Traits {
		src, err := names.source(r.Context(), t.SourceID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Traits[t.Name] = traitJSON{Value: t.Value, SourceID: t.SourceID, Source: src.Name, Seq: t.Seq, At: t.At}
	}
	var first, last *profile.Touch
	for i, t := range p.Touches {
		campaign, err := names.campaign(r.Context(), t.CampaignID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.Touches = append(out.Touches, profileTouchJSON{TouchpointID: t.TouchpointID, Touchpoint: t.Touchpoint, Channel: t.Channel,
			CampaignID: orNull(t.CampaignID), Campaign: campaign, Count: t.Count, FirstSeq: t.FirstSeq, FirstAt: t.First, LastSeq: t.LastSeq, LastAt: t.Last})
		if first == nil || t.First.Before(first.First) || t.First.Equal(first.First) && t.FirstSeq < first.FirstSeq {
			first = &p.Touches[i]
		}
		if last == nil || t.Last.After(last.Last) || t.Last.Equal(last.Last) && t.LastSeq > last.LastSeq {
			last = &p.Touches[i]
		}
	}
	moment := func(t *profile.Touch, seq int64, at time.Time) *touchMomentJSON {
		campaign, _ := names.campaign(r.Context(), t.CampaignID) // read above
		return &touchMomentJSON{TouchpointID: t.TouchpointID, Touchpoint: t.Touchpoint, Channel: t.Channel, CampaignID: orNull(t.CampaignID),
			Campaign: campaign, Seq: seq, At: at}
	}
	if first != nil {
		out.FirstTouch, out.LastTouch = moment(first, first.FirstSeq, first.First), moment(last, last.LastSeq, last.Last)
	}
	for _, c := range p.Stages {
		out.Stages = append(out.Stages, stageChangeJSON{Seq: c.Seq, From: c.From, To: c.To, At: c.At})
	}
	for _, m := range p.Merges {
		out.Merges = append(out.Merges, mergeJSON{Seq: m.Seq, Into: m.Into, From: m.From, Via: viaJSON{Type: m.Via.Type, Value: m.Via.Value}, At: m.At})
	}
	writeJSON(w, http.StatusOK, out)
}

// maxProfileQuery bounds the text of a search.
const maxProfileQuery = 200

// searchProfiles lists the profiles whose name, email or phone starts with q, or without q the most recently
// active, a page at a time; with step, only those who reached that lifecycle step.
func (s *Server) searchProfiles(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	q := r.URL.Query()
	text := q.Get("q")
	if utf8.RuneCountInString(text) > maxProfileQuery {
		s.fail(w, r, hearth.Errorf(hearth.Invalid, "httpapi.search_profiles", "The parameter q must be at most %d characters.", maxProfileQuery))
		return
	}
	limit, err := queryInt(r, "limit", 20, 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rules, err := s.identityRules(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	search := profileQuery(text, rules)
	search.Limit, search.Cursor = int(max(limit, 1)), q.Get("cursor")
	if step := profile.Stage(q.Get("step")); step != "" {
		if step == profile.Anonymous || !slices.Contains(profile.Stages, step) {
			s.fail(w, r, hearth.Errorf(hearth.Invalid, "httpapi.search_profiles", "The parameter step must be identified, connected, activated or converted."))
			return
		}
		search.Step = step
	}
	var page store.ProfilePage
	// Words that can be no name, email or phone (an @ and a space) find no one; an empty query lists everyone.
	if strings.TrimSpace(text) == "" || search.NameKey != "" || search.Email != "" || len(search.Phones) > 0 {
		if page, err = s.Profiles.SearchProfiles(r.Context(), search); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Items []profileSummaryJSON `json:"items"`
		Next  *string              `json:"next"`
	}{listOf(page.Items, toProfileSummary).Items, orNull(page.Next)})
}

// profileStages serves how many profiles stand at each lifecycle stage (the furthest step they meet), and how
// many meet each step on its own, in the lifecycle's order.
func (s *Server) profileStages(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	counts, err := s.Profiles.ProfileSteps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type stageJSON struct {
		Stage    profile.Stage `json:"stage"`
		Profiles int64         `json:"profiles"`
	}
	out := struct {
		Stages []stageJSON     `json:"stages"`
		Steps  []stepCountJSON `json:"steps"`
		Total  int64           `json:"total"`
	}{}
	for _, st := range profile.Stages {
		stage := stageJSON{Stage: st}
		step := stepCountJSON{Step: st}
		for steps, n := range counts {
			if steps.Stage() == st {
				stage.Profiles += n
			}
			if steps.Bits()&profile.StepBit(st) != 0 {
				step.Profiles += n
			}
		}
		out.Stages = append(out.Stages, stage)
		if st != profile.Anonymous {
			out.Steps = append(out.Steps, step)
		}
		out.Total += stage.Profiles
	}
	writeJSON(w, http.StatusOK, out)
}

// stepCountJSON is how many profiles have reached a lifecycle step.
type stepCountJSON struct {
	Step     profile.Stage `json:"step"`
	Profiles int64         `json:"profiles"`
}

// profileEvents serves a profile's timeline, newest first, a page before a seq at a time.
func (s *Server) profileEvents(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	id, err := s.liveProfileID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	before, err := queryInt(r, "before", 0, math.MaxInt64)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := queryInt(r, "limit", 50, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit = max(limit, 1)
	evs, err := s.Profiles.ProfileEvents(r.Context(), id, before, int(limit)+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var next *int64
	if len(evs) > int(limit) {
		evs = evs[:limit]
		next = &evs[limit-1].Seq
	}
	names := s.newNames()
	items := make([]timelineEventJSON, 0, len(evs))
	for _, e := range evs {
		src, err := names.source(r.Context(), e.SourceID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		item := timelineEventJSON{eventJSON: toEvent(e), SourceID: e.SourceID, Source: src.Name, SourceKind: src.Kind}
		if item.Touch, err = touchOf(r.Context(), e, names); err != nil {
			s.fail(w, r, err)
			return
		}
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, struct {
		Items []timelineEventJSON `json:"items"`
		Next  *int64              `json:"next"`
	}{items, next})
}

// liveProfileID returns id if it is a profile's, else the profile a profile of that id was merged into.
func (s *Server) liveProfileID(ctx context.Context, id string) (string, error) {
	_, err := s.Profiles.ProfileSummary(ctx, id)
	if hearth.KindOf(err) != hearth.NotFound {
		return id, err
	}
	into, err2 := s.Profiles.ProfileMergedInto(ctx, id)
	if err2 != nil {
		if hearth.KindOf(err2) == hearth.NotFound {
			return "", err
		}
		return "", err2
	}
	return into, nil
}

// touchOf reads what a touch event touched from its properties; nil for other events.
func touchOf(ctx context.Context, e collect.Event, names *names) (*timelineTouchJSON, error) {
	if e.Type != "track" || e.Name != collect.TouchEventName {
		return nil, nil
	}
	var p struct {
		Properties struct {
			TouchpointID string          `json:"touchpoint_id"`
			Touchpoint   string          `json:"touchpoint"`
			Channel      string          `json:"channel"`
			CampaignID   string          `json:"campaign_id"`
			Via          string          `json:"via"`
			Serial       json.RawMessage `json:"serial"`
		} `json:"properties"`
	}
	if json.Unmarshal(e.Payload, &p) != nil || p.Properties.TouchpointID == "" {
		return nil, nil // a Touch a source sent itself, not one Hearth recorded
	}
	pp := p.Properties
	campaign, err := names.campaign(ctx, pp.CampaignID)
	if err != nil {
		return nil, err
	}
	serial, _ := strconv.ParseInt(string(pp.Serial), 10, 64)
	return &timelineTouchJSON{TouchpointID: pp.TouchpointID, Touchpoint: pp.Touchpoint, Channel: pp.Channel, CampaignID: orNull(pp.CampaignID),
		Campaign: campaign, Via: pp.Via, Serial: serial}, nil
}

// names looks up the sources and the names of the campaigns one answer mentions, each once.
type names struct {
	s         *Server
	sources   map[string]collect.Source
	campaigns map[string]*string
}

func (s *Server) newNames() *names {
	return &names{s: s, sources: map[string]collect.Source{}, campaigns: map[string]*string{}}
}

// source returns a source; the zero Source for one that does not exist.
func (n *names) source(ctx context.Context, id string) (collect.Source, error) {
	if src, ok := n.sources[id]; ok || id == "" {
		return src, nil
	}
	src, err := n.s.Sources.Get(ctx, id)
	if err != nil && hearth.KindOf(err) != hearth.NotFound {
		return src, err
	}
	n.sources[id] = src
	return src, nil
}

// campaign returns a campaign's name; nil for none, or a campaign that no longer exists.
func (n *names) campaign(ctx context.Context, id string) (*string, error) {
	if name, ok := n.campaigns[id]; ok || id == "" {
		return name, nil
	}
	c, err := n.s.Touchpoints.Campaign(ctx, id)
	if err != nil && hearth.KindOf(err) != hearth.NotFound {
		return nil, err
	}
	n.campaigns[id] = orNull(c.Name)
	return n.campaigns[id], nil
}

// identityRules are the identity rules in force, which normalise what people search for as the processor
// normalised what events carried.
func (s *Server) identityRules(ctx context.Context) (identity.Rules, error) {
	if s.ProfileConfigs == nil {
		return identity.DefaultRules(), nil
	}
	c, err := s.ProfileConfigs.Get(ctx)
	return c.Identity, err
}

// profileQuery reads what people type into the people search: a phone number (digits, perhaps with + or
// 00 and a country code, spaces, dashes and brackets), the start of an email address (with an @), or else
// the start of a name and of an email address.
func profileQuery(text string, rules identity.Rules) store.ProfileQuery {
	text = strings.TrimSpace(text)
	if text == "" {
		return store.ProfileQuery{}
	}
	ascii := strings.TrimSpace(narrow(text))
	if prefixes := phonePrefixes(ascii, rules.Settings().PhoneRegion); prefixes != nil {
		return store.ProfileQuery{Phones: prefixes}
	}
	var q store.ProfileQuery
	if !strings.Contains(ascii, "@") {
		q.NameKey = profile.NameKey(text)
	}
	if !strings.ContainsAny(ascii, " \t") {
		q.Email = strings.ToLower(ascii)
	}
	return q
}

// narrow makes full-width ASCII characters (as Chinese input methods type them: ＠, １３８) and the ideographic
// space their ASCII twins.
func narrow(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		case r == '\u3000':
			return ' '
		}
		return r
	}, s)
}

// phonePrefixes returns the E.164 prefixes that a phone number being typed may start, or nil if text is not
// one. Without + or 00 the digits are read as a national number of the region (its trunk prefix, such as 0,
// dropped) and, when they start with the region's country code, as an international one as well: in China
// 138001 finds +86138001…, and 86138001 finds it too.
func phonePrefixes(text, region string) []string {
	var digits strings.Builder
	for i, r := range text {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return nil
		}
	}
	d := digits.String()
	if d == "" {
		return nil
	}
	if strings.HasPrefix(text, "+") {
		return []string{"+" + d}
	}
	if rest, ok := strings.CutPrefix(d, "00"); ok {
		if rest == "" {
			return nil
		}
		return []string{"+" + rest}
	}
	if region == "" {
		region = identity.DefaultPhoneRegion
	}
	cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
	national := d
	if trunk := phonenumbers.GetNddPrefixForRegion(region, true); trunk != "" {
		if rest, ok := strings.CutPrefix(d, trunk); ok && rest != "" {
			national = rest
		}
	}
	out := []string{"+" + cc + national}
	if strings.HasPrefix(d, cc) && !slices.Contains(out, "+"+d) {
		out = append(out, "+"+d)
	}
	return out
}
