package touchpoint

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
)

// Options configure the touchpoint service.
type Options struct {
	// PublicURL is where Hearth is reached from outside, e.g. https://go.brand.example: touch links start with
	// it.
	PublicURL string
	// CacheFor is how long a resolved touchpoint, its campaign and its revocations are reused before they are
	// read again; changes made on another node take at most this long to show. Default 1 s.
	CacheFor time.Duration
	// CodeBatchRetention is how long a code batch's ZIP is kept after it is made (ExpireCodeBatches); 0 keeps
	// them forever. The batch itself stays, and can be drawn again.
	CodeBatchRetention time.Duration
}

// Service manages campaigns, touchpoints, the signing keys and revocations, and resolves tokens.
type Service struct {
	store  Store
	keys   *Keyring
	master MasterKey
	clock  hearth.Clock
	opts   Options

	mu       sync.Mutex
	resolved map[int64]resolvedEntry // by touchpoint number
	reloaded time.Time               // when the keys were last read again for an unknown key id
}

// resolvedEntry is what resolving a token needs of its touchpoint, as read at loadedAt.
type resolvedEntry struct {
	touchpoint  Touchpoint
	campaign    *Campaign
	revocations []Revocation
	err         error // NotFound: no such touchpoint
	loadedAt    time.Time
}

// keyPurpose binds sealed signing keys to their use.
const keyPurpose = "hearth/signing-key"

// NewService builds the service. Call LoadKeys before issuing or resolving tokens.
func NewService(store Store, master MasterKey, clock hearth.Clock, opts Options) *Service {
	if opts.CacheFor == 0 {
		opts.CacheFor = time.Second
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	return &Service{store: store, keys: NewKeyring(nil), master: master, clock: clock, opts: opts, resolved: map[int64]resolvedEntry{}}
}

// Keyring is the service's keyring, for verifying tokens.
func (s *Service) Keyring() *Keyring { return s.keys }

// LoadKeys reads the signing keys into the keyring, making the first one when there is none.
func (s *Service) LoadKeys(ctx context.Context) error {
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var keys []KeySecret
	for _, k := range stored {
		if k.RetiredAt != nil {
			continue
		}
		secret, err := s.master.Open(k.Sealed, keyPurpose)
		if err != nil {
			return fmt.Errorf("touchpoint: signing key %d: %w", k.ID, err)
		}
		keys = append(keys, KeySecret{ID: k.ID, Secret: secret})
	}
	if len(keys) == 0 {
		_, err := s.RotateKey(ctx)
		return err
	}
	s.keys.Replace(keys)
	return nil
}

// RotateKey makes a new signing key; tokens of the older keys keep verifying until those are retired.
func (s *Service) RotateKey(ctx context.Context) (uint32, error) {
	secret := make([]byte, 32)
	rand.Read(secret)
	id, err := s.store.CreateSigningKey(ctx, s.master.Seal(secret, keyPurpose), s.clock.Now())
	if err != nil {
		return 0, err
	}
	return id, s.LoadKeys(ctx)
}

// RetireKey retires a signing key: its tokens are refused from now on. The key that signs cannot be retired;
// rotate first.
func (s *Service) RetireKey(ctx context.Context, id uint32) error {
	if id == s.keys.SignerID() {
		return hearth.Errorf(hearth.Conflict, "touchpoint.retire_key", "Key %d signs new tokens: rotate to a new key before retiring it.", id)
	}
	if err := s.store.RetireSigningKey(ctx, id, s.clock.Now()); err != nil {
		return err
	}
	return s.LoadKeys(ctx)
}

// SigningKeys lists the keys, with which one signs.
func (s *Service) SigningKeys(ctx context.Context) ([]StoredKey, uint32, error) {
	keys, err := s.store.SigningKeys(ctx)
	return keys, s.keys.SignerID(), err
}

// Campaigns.

func (s *Service) validateCampaign(c Campaign) error {
	const op = "touchpoint.campaign"
	var errs []error
	errs = append(errs, validateText(op, "name", c.Name, true, 200), validateText(op, "goal", c.Goal, false, 2000),
		validateURL(op, "fallback_url", c.FallbackURL, false))
	for _, u := range []struct{ name, v string }{{"utm_source", c.UTMSource}, {"utm_medium", c.UTMMedium}, {"utm_campaign", c.UTMCampaign}} {
		errs = append(errs, validateText(op, u.name, u.v, false, 200))
	}
	switch c.Status {
	case StatusActive, StatusPaused, StatusEnded:
	default:
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "status must be active, paused or ended"))
	}
	if c.StartsAt != nil && c.EndsAt != nil && !c.EndsAt.After(*c.StartsAt) {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "ends_at must be after starts_at"))
	}
	return joinInvalid(op, errs)
}

// CreateCampaign stores a new campaign, active unless it says otherwise.
func (s *Service) CreateCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	if c.Status == "" {
		c.Status = StatusActive
	}
	if err := s.validateCampaign(c); err != nil {
		return Campaign{}, err
	}
	now := s.clock.Now()
	c.ID, c.CreatedAt, c.UpdatedAt = hearth.NewID(), now, now
	return c, s.store.CreateCampaign(ctx, c)
}

// Campaign returns a campaign.
func (s *Service) Campaign(ctx context.Context, id string) (Campaign, error) {
	return s.store.Campaign(ctx, id)
}

// Campaigns lists the campaigns, newest first.
func (s *Service) Campaigns(ctx context.Context) ([]Campaign, error) {
	return s.store.ListCampaigns(ctx)
}

// UpdateCampaign saves a changed campaign.
func (s *Service) UpdateCampaign(ctx context.Context, c Campaign) (Campaign, error) {
	if err := s.validateCampaign(c); err != nil {
		return Campaign{}, err
	}
	c.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateCampaign(ctx, c); err != nil {
		return Campaign{}, err
	}
	s.forgetAll()
	return c, nil
}

// Touchpoints.

func (s *Service) validateTouchpoint(ctx context.Context, t Touchpoint) error {
	const op = "touchpoint.touchpoint"
	errs := []error{validateText(op, "name", t.Name, true, 200), validateURL(op, "destination_url", t.DestinationURL, true),
		validateText(op, "location", t.Location, false, 200), validateText(op, "owner", t.Owner, false, 200)}
	if !t.Channel.Valid() {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "channel must be one of %s", channelList()))
	}
	if t.Status != StatusActive && t.Status != StatusPaused && t.Status != StatusRevoked {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "status must be active or paused"))
	}
	if t.CampaignID != "" {
		if _, err := s.store.Campaign(ctx, t.CampaignID); hearth.KindOf(err) == hearth.NotFound {
			errs = append(errs, hearth.Errorf(hearth.Invalid, op, "campaign_id names no campaign"))
		} else if err != nil {
			return err
		}
	}
	return joinInvalid(op, errs)
}

func channelList() string {
	names := make([]string, len(Channels))
	for i, c := range Channels {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// CreateTouchpoint stores a new touchpoint, active unless it says otherwise.
func (s *Service) CreateTouchpoint(ctx context.Context, t Touchpoint) (Touchpoint, error) {
	if t.Status == "" {
		t.Status = StatusActive
	}
	if err := s.validateTouchpoint(ctx, t); err != nil {
		return Touchpoint{}, err
	}
	now := s.clock.Now()
	t.ID, t.CreatedAt, t.UpdatedAt, t.LastSerial = hearth.NewID(), now, now, 0
	n, err := s.store.CreateTouchpoint(ctx, t)
	if err != nil {
		return Touchpoint{}, err
	}
	t.Number = n
	return t, nil
}

// Touchpoint returns a touchpoint.
func (s *Service) Touchpoint(ctx context.Context, id string) (Touchpoint, error) {
	return s.store.Touchpoint(ctx, id)
}

// Touchpoints lists touchpoints, newest first.
func (s *Service) Touchpoints(ctx context.Context, f TouchpointFilter) ([]Touchpoint, error) {
	return s.store.ListTouchpoints(ctx, f)
}

// TouchStats returns the touch counts of every touched touchpoint, by id.
func (s *Service) TouchStats(ctx context.Context) (map[string]TouchStats, error) {
	list, err := s.store.TouchStats(ctx)
	m := make(map[string]TouchStats, len(list))
	for _, st := range list {
		m[st.TouchpointID] = st
	}
	return m, err
}

// MaxTouchHoursRange is the longest span TouchHours answers at once: 400 days of hours.
const MaxTouchHoursRange = 400 * 24 * time.Hour

// TouchHours returns a touchpoint's touches per hour from from to to (hours that have any, in order): what its
// chart of touches over time draws.
func (s *Service) TouchHours(ctx context.Context, id string, from, to time.Time) ([]TouchHour, error) {
	if err := checkHoursRange("touchpoint.touch_hours", from, to); err != nil {
		return nil, err
	}
	if _, err := s.store.Touchpoint(ctx, id); err != nil {
		return nil, err
	}
	return s.store.TouchHours(ctx, id, from.UTC(), to.UTC())
}

// CampaignTouchHours is TouchHours summed over the touchpoints in a campaign now (a touchpoint moved to it
// brings the touches it had before along).
func (s *Service) CampaignTouchHours(ctx context.Context, id string, from, to time.Time) ([]TouchHour, error) {
	if err := checkHoursRange("touchpoint.campaign_touch_hours", from, to); err != nil {
		return nil, err
	}
	if _, err := s.store.Campaign(ctx, id); err != nil {
		return nil, err
	}
	return s.store.CampaignTouchHours(ctx, id, from.UTC(), to.UTC())
}

// AllTouchHours is TouchHours summed over every touchpoint: the touches of the whole brand.
func (s *Service) AllTouchHours(ctx context.Context, from, to time.Time) ([]TouchHour, error) {
	if err := checkHoursRange("touchpoint.all_touch_hours", from, to); err != nil {
		return nil, err
	}
	return s.store.AllTouchHours(ctx, from.UTC(), to.UTC())
}

func checkHoursRange(op string, from, to time.Time) error {
	if !from.Before(to) {
		return hearth.Errorf(hearth.Invalid, op, "from must be before to")
	}
	if to.Sub(from) > MaxTouchHoursRange {
		return hearth.Errorf(hearth.Invalid, op, "from and to must be at most 400 days apart")
	}
	return nil
}

// CampaignTotals are a campaign's touchpoints and their touches by people.
type CampaignTotals struct {
	Touchpoints int
	Touches     int64
}

// CampaignTotals sums the touchpoints and touches of campaigns, by campaign id: of one campaign, or of all
// when campaignID is "".
func (s *Service) CampaignTotals(ctx context.Context, campaignID string) (map[string]CampaignTotals, error) {
	tps, err := s.store.ListTouchpoints(ctx, TouchpointFilter{CampaignID: campaignID})
	if err != nil {
		return nil, err
	}
	stats, err := s.TouchStats(ctx)
	if err != nil {
		return nil, err
	}
	sums := map[string]CampaignTotals{}
	for _, tp := range tps {
		if tp.CampaignID == "" {
			continue
		}
		t := sums[tp.CampaignID]
		t.Touchpoints++
		t.Touches += stats[tp.ID].Touches
		sums[tp.CampaignID] = t
	}
	return sums, nil
}

// UpdateTouchpoint saves a changed touchpoint (its name, destination, labels, campaign or status). A revoked
// touchpoint stays revoked.
func (s *Service) UpdateTouchpoint(ctx context.Context, t Touchpoint) (Touchpoint, error) {
	if err := s.validateTouchpoint(ctx, t); err != nil {
		return Touchpoint{}, err
	}
	old, err := s.store.Touchpoint(ctx, t.ID)
	if err != nil {
		return Touchpoint{}, err
	}
	if (old.Status == StatusRevoked) != (t.Status == StatusRevoked) {
		return Touchpoint{}, hearth.Errorf(hearth.Conflict, "touchpoint.update", "A touchpoint is revoked only by revoking it, and stays revoked: make a new touchpoint instead.")
	}
	t.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateTouchpoint(ctx, t); err != nil {
		return Touchpoint{}, err
	}
	s.forget(t.Number)
	return t, nil
}

// SetTouchpointStatus pauses or resumes a touchpoint.
func (s *Service) SetTouchpointStatus(ctx context.Context, id string, status Status) (Touchpoint, error) {
	t, err := s.store.Touchpoint(ctx, id)
	if err != nil {
		return Touchpoint{}, err
	}
	t.Status = status
	return s.UpdateTouchpoint(ctx, t)
}

// Tokens and links.

// Token signs a token for a touchpoint: serial 0 for the touchpoint's own, a zero expiry for none.
func (s *Service) Token(t Touchpoint, serial int64, expires time.Time) (string, error) {
	return s.keys.Sign(Token{Number: t.Number, Serial: serial, Expires: expires.UTC().Truncate(time.Minute)})
}

// IssueToken signs a token of a touchpoint for a serial it has issued (0 for its own) and an optional expiry
// in the future (zero for none), checking both.
func (s *Service) IssueToken(t Touchpoint, serial int64, expires time.Time) (string, error) {
	const op = "touchpoint.issue_token"
	if serial < 0 || serial > t.LastSerial {
		if t.LastSerial == 0 {
			return "", hearth.Errorf(hearth.Invalid, op, "serial must be 0: this touchpoint has issued no serial numbers yet.")
		}
		return "", hearth.Errorf(hearth.Invalid, op, "serial must be one this touchpoint has issued (1 to %d), or 0 for none.", t.LastSerial)
	}
	if !expires.IsZero() && !expires.After(s.clock.Now()) {
		return "", hearth.Errorf(hearth.Invalid, op, "expires_at must be in the future.")
	}
	return s.Token(t, serial, expires)
}

// Link is the touch link of a token.
func (s *Service) Link(token string) string { return s.opts.PublicURL + "/t/" + token }

// MaxSerialBatch is the most codes one request issues.
const MaxSerialBatch = 100_000

// IssueSerials issues n new serial numbers of a touchpoint, each with its token and link.
func (s *Service) IssueSerials(ctx context.Context, touchpointID string, n int64, expires time.Time) ([]Code, error) {
	const op = "touchpoint.issue_serials"
	if n < 1 || n > MaxSerialBatch {
		return nil, hearth.Errorf(hearth.Invalid, op, "count must be between 1 and %d", MaxSerialBatch)
	}
	t, err := s.store.Touchpoint(ctx, touchpointID)
	if err != nil {
		return nil, err
	}
	first, err := s.store.ReserveSerials(ctx, touchpointID, n)
	if err != nil {
		return nil, err
	}
	t.LastSerial = first + n - 1
	s.forget(t.Number)
	codes := make([]Code, n)
	for i := range codes {
		serial := first + int64(i)
		tok, err := s.Token(t, serial, expires)
		if err != nil {
			return nil, err
		}
		codes[i] = Code{Serial: serial, Token: tok, URL: s.Link(tok)}
	}
	return codes, nil
}

// Revoke refuses a token, a range of serials or a whole touchpoint from now on.
func (s *Service) Revoke(ctx context.Context, r Revocation) (Revocation, error) {
	const op = "touchpoint.revoke"
	t, err := s.store.Touchpoint(ctx, r.TouchpointID)
	if err != nil {
		return Revocation{}, err
	}
	switch r.Kind {
	case RevokeToken:
		tok, err := s.keys.Verify(r.Token)
		if err != nil || tok.Number != t.Number {
			return Revocation{}, hearth.Errorf(hearth.Invalid, op, "token is not a valid token of this touchpoint")
		}
		r.SerialFrom, r.SerialTo = 0, 0
	case RevokeSerials:
		if r.SerialFrom < 1 || r.SerialTo < r.SerialFrom {
			return Revocation{}, hearth.Errorf(hearth.Invalid, op, "serial_from and serial_to must be a range of serial numbers, from 1")
		}
		r.Token = ""
	case RevokeTouchpoint:
		r.Token, r.SerialFrom, r.SerialTo = "", 0, 0
	default:
		return Revocation{}, hearth.Errorf(hearth.Invalid, op, "kind must be token, serials or touchpoint")
	}
	if err := validateText(op, "reason", r.Reason, false, 500); err != nil {
		return Revocation{}, err
	}
	r.ID, r.CreatedAt = hearth.NewID(), s.clock.Now()
	if err := s.store.CreateRevocation(ctx, r); err != nil {
		return Revocation{}, err
	}
	if r.Kind == RevokeTouchpoint && t.Status != StatusRevoked {
		t.Status, t.UpdatedAt = StatusRevoked, r.CreatedAt
		if err := s.store.UpdateTouchpoint(ctx, t); err != nil {
			return Revocation{}, err
		}
	}
	s.forget(t.Number)
	return r, nil
}

// Revocations lists a touchpoint's revocations.
func (s *Service) Revocations(ctx context.Context, touchpointID string) ([]Revocation, error) {
	return s.store.Revocations(ctx, touchpointID)
}

// joinInvalid reports every problem at once, as one Invalid error.
func joinInvalid(op string, errs []error) error {
	var msgs []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		if hearth.KindOf(err) != hearth.Invalid {
			return err
		}
		msgs = append(msgs, hearth.MessageOf(err))
	}
	if len(msgs) == 0 {
		return nil
	}
	return hearth.Errorf(hearth.Invalid, op, "%s.", capitalize(strings.Join(msgs, "; ")))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var errNoTouchpoint = errors.New("touchpoint: no such touchpoint")

// withParams adds the token and the campaign's UTM parameters to a destination, keeping any the marketer
// put in it.
func withParams(destination, token string, c *Campaign) string {
	u, err := url.Parse(destination)
	if err != nil { // validated when saved; a URL that no longer parses is left alone
		return destination
	}
	q := u.Query()
	q.Set("ht", token)
	if c != nil {
		for _, p := range []struct{ name, v string }{{"utm_source", c.UTMSource}, {"utm_medium", c.UTMMedium}, {"utm_campaign", c.UTMCampaign}} {
			if p.v != "" && q.Get(p.name) == "" {
				q.Set(p.name, p.v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
