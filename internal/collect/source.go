// Package collect is the public ingestion surface: where events come from (sources and their write keys) and,
// later, the Segment-compatible tracking API.
package collect

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hearth-cdp/hearth"
)

// SourceKind says what sends a source's events.
type SourceKind string

const (
	KindWebsite SourceKind = "website"
	KindApp     SourceKind = "app"
	KindServer  SourceKind = "server"
	KindWeChat  SourceKind = "wechat"
	KindOffline SourceKind = "offline"
)

// KindTouch is the kind of the built-in source that Hearth records touches under (touch links, QR scans,
// offline touches). Nobody creates a source of this kind.
const KindTouch SourceKind = "touch"

// TouchSourceID is the id of the built-in touch source.
const TouchSourceID = "touch"

// SourceKinds lists the kinds in the order the console shows them.
var SourceKinds = []SourceKind{KindWebsite, KindApp, KindServer, KindWeChat, KindOffline}

// Valid reports whether k is a known kind.
func (k SourceKind) Valid() bool {
	for _, v := range SourceKinds {
		if k == v {
			return true
		}
	}
	return false
}

// Source is where events come from: a website, an app, a server, a WeChat account, offline records. Its write
// key authenticates its events on the ingestion API.
type Source struct {
	ID       string
	Name     string
	Kind     SourceKind
	WriteKey string
	Enabled  bool
	// RateLimit is how many events a second the source may send to each node; 0: the server's default
	// (IngestOptions.SourceRate).
	RateLimit float64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Throttled counts the events its rate limit refused (answered 429), the latest at LastThrottledAt.
	Throttled       int64
	LastThrottledAt *time.Time
}

// SourceStore is what sources need from storage.
type SourceStore interface {
	CreateSource(ctx context.Context, s Source) error
	Source(ctx context.Context, id string) (Source, error)
	SourceByWriteKey(ctx context.Context, writeKey string) (Source, error)
	ListSources(ctx context.Context) ([]Source, error)
	// UpdateSource saves what a source's fields say, but not its throttled count.
	UpdateSource(ctx context.Context, s Source) error
	// AddThrottled adds to sources' counts of events their rate limits refused, as of at.
	AddThrottled(ctx context.Context, events map[string]int64, at time.Time) error
}

// Sources manages sources.
type Sources struct {
	store SourceStore
	clock hearth.Clock

	// keys caches write key lookups briefly: a single-event SDK sends thousands of requests a second, each
	// of which would otherwise read the database. A change on this node clears it at once; other nodes see
	// it within keyCacheTTL.
	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	src   Source
	found bool
	until time.Time
}

const (
	keyCacheTTL  = time.Second
	keyCacheSize = 10000
	// maxWriteKeyLen bounds what is looked up: Hearth's keys have 32 characters.
	maxWriteKeyLen = 256
)

// NewSources returns the source service.
func NewSources(store SourceStore, clock hearth.Clock) *Sources {
	return &Sources{store: store, clock: clock, keys: map[string]cachedKey{}}
}

// newWriteKey returns a fresh write key: 24 random bytes, URL-safe, so it can sit in a page's HTML.
func newWriteKey() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func checkSourceName(op, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return "", hearth.Errorf(hearth.Invalid, op, "The name must have 1 to 100 characters.")
	}
	return name, nil
}

func conflictName(op string, err error) error {
	if hearth.KindOf(err) == hearth.Conflict {
		return &hearth.Error{Kind: hearth.Conflict, Op: op, Msg: "A source with this name already exists.", Err: err}
	}
	return err
}

// Create makes a new, enabled source.
func (s *Sources) Create(ctx context.Context, name string, kind SourceKind) (Source, error) {
	const op = "collect.create_source"
	name, err := checkSourceName(op, name)
	if err != nil {
		return Source{}, err
	}
	if !kind.Valid() {
		return Source{}, hearth.Errorf(hearth.Invalid, op, "The kind must be one of website, app, server, wechat or offline.")
	}
	now := s.clock.Now()
	src := Source{ID: hearth.NewID(), Name: name, Kind: kind, WriteKey: newWriteKey(), Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateSource(ctx, src); err != nil {
		return Source{}, conflictName(op, err)
	}
	return src, nil
}

// EnsureTouchSource makes the built-in source that touches are recorded under, unless it exists.
func (s *Sources) EnsureTouchSource(ctx context.Context) (Source, error) {
	src, err := s.store.Source(ctx, TouchSourceID)
	if hearth.KindOf(err) != hearth.NotFound {
		return src, err
	}
	now := s.clock.Now()
	src = Source{ID: TouchSourceID, Name: "Touch links and codes", Kind: KindTouch, WriteKey: newWriteKey(), Enabled: true, CreatedAt: now, UpdatedAt: now}
	err = s.store.CreateSource(ctx, src)
	if hearth.KindOf(err) == hearth.Conflict { // another node made it first, or a source has the name
		if existing, err := s.store.Source(ctx, TouchSourceID); hearth.KindOf(err) != hearth.NotFound {
			return existing, err
		}
		src.Name += " (built in)"
		err = s.store.CreateSource(ctx, src)
	}
	return src, err
}

// Get returns a source.
func (s *Sources) Get(ctx context.Context, id string) (Source, error) { return s.store.Source(ctx, id) }

// List lists sources, newest first.
func (s *Sources) List(ctx context.Context) ([]Source, error) { return s.store.ListSources(ctx) }

// Rename gives a source a new name.
func (s *Sources) Rename(ctx context.Context, id, name string) (Source, error) {
	return s.Edit(ctx, id, SourceEdit{Name: &name})
}

// SetEnabled enables or disables a source. A disabled source's write key is refused.
func (s *Sources) SetEnabled(ctx context.Context, id string, enabled bool) (Source, error) {
	return s.update(ctx, "collect.enable_source", id, func(src *Source) { src.Enabled = enabled })
}

// MaxRateLimit bounds a source's own rate limit, in events per second.
const MaxRateLimit = 1_000_000

// SourceEdit is a change of a source's settings; nil fields stay as they are.
type SourceEdit struct {
	Name *string
	// RateLimit is how many events a second the source may send to each node; 0 gives it the server's default.
	RateLimit *float64
}

// Edit changes a source's settings, all or none.
func (s *Sources) Edit(ctx context.Context, id string, e SourceEdit) (Source, error) {
	const op = "collect.edit_source"
	var name string
	if e.Name != nil {
		var err error
		if name, err = checkSourceName(op, *e.Name); err != nil {
			return Source{}, err
		}
	}
	// Written so that NaN, which no comparison holds for, is refused too.
	if r := e.RateLimit; r != nil && !(*r >= 0 && *r <= MaxRateLimit) {
		return Source{}, hearth.Errorf(hearth.Invalid, op, "The rate_limit must be a number of events per second from 0 (the server's default) to %d.", MaxRateLimit)
	}
	return s.update(ctx, op, id, func(src *Source) {
		if e.Name != nil {
			src.Name = name
		}
		if e.RateLimit != nil {
			src.RateLimit = *e.RateLimit
		}
	})
}

// AddThrottled counts events that sources' rate limits refused.
func (s *Sources) AddThrottled(ctx context.Context, events map[string]int64) error {
	return s.store.AddThrottled(ctx, events, s.clock.Now())
}

// RegenerateWriteKey gives a source a new write key; the old one stops working.
func (s *Sources) RegenerateWriteKey(ctx context.Context, id string) (Source, error) {
	return s.update(ctx, "collect.regenerate_write_key", id, func(src *Source) { src.WriteKey = newWriteKey() })
}

func (s *Sources) update(ctx context.Context, op, id string, change func(*Source)) (Source, error) {
	src, err := s.store.Source(ctx, id)
	if err != nil {
		return Source{}, err
	}
	change(&src)
	src.UpdatedAt = s.clock.Now()
	if err := s.store.UpdateSource(ctx, src); err != nil {
		return Source{}, conflictName(op, err)
	}
	s.mu.Lock()
	clear(s.keys)
	s.mu.Unlock()
	return src, nil
}

// Authenticate returns the enabled source whose write key is given. A key disabled or replaced stops working
// within a second.
func (s *Sources) Authenticate(ctx context.Context, writeKey string) (Source, error) {
	const op = "collect.authenticate"
	if len(writeKey) > maxWriteKeyLen || !utf8.ValidString(writeKey) || strings.IndexByte(writeKey, 0) >= 0 {
		// Not one that Hearth makes; and the store need not be asked (PostgreSQL refuses such text).
		return Source{}, hearth.Errorf(hearth.Unauthenticated, op, "The write key is missing, wrong or disabled.")
	}
	now := s.clock.Now()
	s.mu.Lock()
	c, ok := s.keys[writeKey]
	s.mu.Unlock()
	if !ok || now.After(c.until) {
		src, err := s.store.SourceByWriteKey(ctx, writeKey)
		if err != nil && hearth.KindOf(err) != hearth.NotFound {
			return Source{}, err
		}
		c = cachedKey{src: src, found: err == nil, until: now.Add(keyCacheTTL)}
		s.mu.Lock()
		if len(s.keys) >= keyCacheSize { // wrong keys must not grow it without bound
			clear(s.keys)
		}
		s.keys[writeKey] = c
		s.mu.Unlock()
	}
	// The built-in touch source records what Hearth itself sees; nobody sends events as it.
	if !c.found || !c.src.Enabled || c.src.Kind == KindTouch {
		return Source{}, hearth.Errorf(hearth.Unauthenticated, op, "The write key is missing, wrong or disabled.")
	}
	return c.src, nil
}
