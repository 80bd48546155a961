package segment

import (
	"context"
	"fmt"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// Kind is what decides a segment's members.
type Kind string

const (
	RuleKind Kind = "rule" // the profiles its rule matches
	ListKind Kind = "list" // the profiles that hold an identifier of its list
)

// Segment is a group of people kept current.
type Segment struct {
	ID          string
	Name        string
	Description string
	Kind        Kind
	Rule        *Rule // nil for a list segment
	ListItems   int   // of a list segment
	Size        int64 // members now
	// Version counts the changes of the rule or list; EvaluatedVersion is the one the members were last fully
	// evaluated for: while it is behind, the segment is being evaluated.
	Version          int64
	EvaluatedVersion int64
	EvaluatedAt      time.Time
	// EvaluatedOffset is the profile processor's offset in the log when it was: the members were evaluated
	// with the profiles of the events up to it, at least.
	EvaluatedOffset int64
	// WindowsChecked is when people whose events, traits or touches left a time window were last looked for.
	WindowsChecked time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CreatedBy      string
}

// Evaluating reports whether the members are still being evaluated for the segment's rule or list.
func (s Segment) Evaluating() bool { return s.EvaluatedVersion < s.Version }

// rule is what decides the members.
func (s Segment) rule() Rule {
	if s.Kind == ListKind || s.Rule == nil {
		return listRule(s.ID)
	}
	return *s.Rule
}

// Set is a set of profiles, by number (profile.ProfileID of the number is the profile's id).
type Set = roaring64.Bitmap

// NewSet returns an empty set.
func NewSet() *Set { return roaring64.New() }

// ProfileNumber is the number of a profile id: the seq of the event that made it.
func ProfileNumber(id string) (uint64, error) {
	if len(id) != 17 || id[0] != 'p' {
		return 0, fmt.Errorf("segment: %q is not a profile id", id)
	}
	var n uint64
	for i := 1; i < len(id); i++ {
		c := id[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, fmt.Errorf("segment: %q is not a profile id", id)
		}
		n = n<<4 | uint64(c)
	}
	return n, nil
}

// ProfileIDs are the ids of a set's profiles, in order.
func ProfileIDs(s *Set) []string {
	ids := make([]string, 0, s.GetCardinality())
	for n := range roaring64.Values(s) {
		ids = append(ids, profile.ProfileID(int64(n)))
	}
	return ids
}

// EventQuery asks for the profiles that performed a track event between Min and Max times (Max 0: no upper
// bound; Min at least 1) in [From, To) (zero: open), counting the events that pass every filter.
type EventQuery struct {
	Name     string
	Where    []Compare
	Min, Max int
	From, To time.Time
}

// Reader answers, of one consistent view of the profiles, which profiles a condition holds for. Each
// method looks among within only, or among all profiles when within is nil; it may return profiles outside
// within, which the caller drops.
type Reader interface {
	// Profiles returns the profiles that exist.
	Profiles(ctx context.Context, within *Set) (*Set, error)
	// Traits returns the profiles with a trait that compares as c says; today (YYYY-MM-DD, UTC) is the day
	// that within_last_days counts back from.
	Traits(ctx context.Context, c Compare, today string, within *Set) (*Set, error)
	Events(ctx context.Context, q EventQuery, within *Set) (*Set, error)
	// Touched returns the profiles with a touch as t names, the last one at or after since (zero: any).
	Touched(ctx context.Context, t Touched, since time.Time, within *Set) (*Set, error)
	// ConvertedAfter returns the profiles whose conversion (the first time they met the conversion rule)
	// came at or after their first touch as t names.
	ConvertedAfter(ctx context.Context, t Touched, within *Set) (*Set, error)
	// Steps returns the profiles that meet one of these combinations of lifecycle steps.
	Steps(ctx context.Context, steps []profile.Steps, within *Set) (*Set, error)
	// Reachable returns the profiles with an identifier of the channel (email, sms, wechat or any) whose
	// consent trait is not false.
	Reachable(ctx context.Context, channel string, within *Set) (*Set, error)
	Members(ctx context.Context, segment string, within *Set) (*Set, error)
	// Listed returns the profiles that hold an identifier of a list segment's list.
	Listed(ctx context.Context, segment string, within *Set) (*Set, error)
	// Facts returns what needs names of each of the profiles that exist, by number.
	Facts(ctx context.Context, profiles *Set, needs Needs) (map[uint64]*Facts, error)
}

// Delta is who entered and who left a segment.
type Delta struct {
	Segment string
	Entered []string
	Left    []string
}

// Step is what one pass of the engine changes, written in one transaction.
type Step struct {
	// The segments consumer's offset in the event log moves From to Upto; the store refuses the step (a
	// Conflict) if it is not at From, because another engine wrote meanwhile.
	From, Upto int64
	// Unmerges up to this id have been looked at.
	Unmerges int64
	// Gone are the profiles merged away: their memberships and their history of entering and leaving end
	// with them, as their stage history does; the profile that absorbed them is evaluated in the same step.
	Gone      []string
	Deltas    []Delta
	Checked   map[string]time.Time // segments whose time windows were checked, to when
	Evaluated map[string]Evaluated // segments now fully evaluated
	At        time.Time
}

// Evaluated is what a full evaluation of a segment was of: a version of its rule, with the profiles of the
// events up to an offset at least.
type Evaluated struct {
	Version int64
	Offset  int64
}

// Store is what the engine needs of the store.
type Store interface {
	// View calls fn with a Reader of one consistent view of the profiles.
	View(ctx context.Context, fn func(Reader) error) error
	Segments(ctx context.Context) ([]Segment, error)
	ConsumerOffset(ctx context.Context, name string) (int64, error)
	// Unmerges returns the id of the last unmerge carried out, and the profiles that those after afterID
	// split.
	Unmerges(ctx context.Context, afterID int64) (int64, *Set, error)
	// Changed returns the profiles that the events in (after, upto] are attributed to now, and the profiles
	// those events merged away.
	Changed(ctx context.Context, after, upto int64) (*Set, []string, error)
	// EventsLeaving returns the profiles with a track event of the name at a time in [from, to).
	EventsLeaving(ctx context.Context, name string, from, to time.Time) (*Set, error)
	// TouchesLeaving returns the profiles whose last touch as t names is at a time in [from, to).
	TouchesLeaving(ctx context.Context, t Touched, from, to time.Time) (*Set, error)
	// TraitDays returns the profiles with a trait of the name whose date is a day in [from, to) (YYYY-MM-DD).
	TraitDays(ctx context.Context, name, from, to string) (*Set, error)
	ApplyStep(ctx context.Context, s Step) error
}

// Consumer is the name of the engine's offset in the event log; UnmergesConsumer holds the id of the last
// unmerge it looked at.
const (
	Consumer         = "segments"
	UnmergesConsumer = "segments.unmerges"
)

// Admin is what the API needs to keep segments: the engine's store, and the writes of segments.
type Admin interface {
	Store
	Segment(ctx context.Context, id string) (Segment, error)
	CreateSegment(ctx context.Context, s Segment) error
	// UpdateSegment writes a segment's name, description and rule; a new rule (changed true) asks for a full
	// evaluation.
	UpdateSegment(ctx context.Context, s Segment, changed bool) error
	DeleteSegment(ctx context.Context, id string) error
	// ReplaceList replaces a list segment's identifiers and asks for a full evaluation.
	ReplaceList(ctx context.Context, id string, items []identity.Identifier, at time.Time) error
}
