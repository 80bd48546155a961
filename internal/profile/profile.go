package profile

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/hearth-cdp/hearth/internal/identity"
)

// Profile is a person as the processor found them in the event log: the identifiers resolution gave them,
// the traits mapping gave them, their lifecycle stage and the touchpoints they touched.
type Profile struct {
	ID        string
	FirstSeq  int64 // the event that made the profile
	FirstSeen time.Time
	LastSeen  time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	Stage     Stage
	Name      string // from the traits: name, or first and last names
	// The rest is read with the profile whole.
	ActivatedAt, ConvertedAt time.Time     // the first activation and conversion events; zero before them
	Identities               []Identity    // by first seq
	Merges                   []Merge       // its merge history, by seq
	Traits                   []Trait       // by name
	Touches                  []Touch       // per touchpoint, by first touch
	Stages                   []StageChange // by seq
}

// Stage is where a profile stands in the lifecycle identify → connect → activate → convert.
type Stage string

// The stages, in order. A profile holds the furthest stage whose rule it meets (docs/identity.md).
const (
	Anonymous  Stage = "anonymous"  // only anonymous identifiers
	Identified Stage = "identified" // an identifier beyond an anonymous id
	Connected  Stage = "connected"  // a reachable channel (email, phone or WeChat openid) not opted out
	Activated  Stage = "activated"  // an engagement event, as configured
	Converted  Stage = "converted"  // a conversion event, as configured
)

// Stages lists the stages in order.
var Stages = []Stage{Anonymous, Identified, Connected, Activated, Converted}

// Steps says which of the lifecycle's rules a profile meets, each on its own. Its stage is the furthest met,
// but a step does not need the ones before it: a person who buys without giving a reachable channel is
// converted and not connected.
type Steps struct {
	Identified, Connected, Activated, Converted bool
}

// Bits are the steps as the store keeps them, a bit each: identified 1, connected 2, activated 4, converted 8.
func (s Steps) Bits() int {
	b := 0
	for i, met := range []bool{s.Identified, s.Connected, s.Activated, s.Converted} {
		if met {
			b |= 1 << i
		}
	}
	return b
}

// StepsOfBits reads steps as Bits writes them.
func StepsOfBits(b int) Steps {
	return Steps{Identified: b&1 != 0, Connected: b&2 != 0, Activated: b&4 != 0, Converted: b&8 != 0}
}

// StepBit is the bit of a stage's step in Bits (0 for anonymous, which is no step).
func StepBit(s Stage) int {
	if i := slices.Index(Stages, s); i > 0 {
		return 1 << (i - 1)
	}
	return 0
}

// Stage is the furthest step met.
func (s Steps) Stage() Stage {
	switch {
	case s.Converted:
		return Converted
	case s.Activated:
		return Activated
	case s.Connected:
		return Connected
	case s.Identified:
		return Identified
	}
	return Anonymous
}

// Steps are the lifecycle's rules that a profile read whole meets.
func (p Profile) Steps() Steps {
	counts := make(map[identity.Type]int, len(p.Identities))
	for _, id := range p.Identities {
		counts[id.Identifier.Type]++
	}
	return stepsOf(counts, p.traitMap(), p.ActivatedAt, p.ConvertedAt)
}

// StepTimes are when a profile met each lifecycle step, zero where it has not or the time is not known.
type StepTimes struct {
	Identified, Connected, Activated, Converted time.Time
}

// StepTimes says when a profile read whole met each step it meets: activation and conversion at their first
// events; identification at the first event that brought an identifier beyond a device's, connection at the
// first that brought a channel the person has not opted out of. Read from the identifiers themselves, a
// step met through a merge keeps the time the absorbed profile met it.
func (p Profile) StepTimes() StepTimes {
	traits := p.traitMap()
	st := StepTimes{Activated: p.ActivatedAt, Converted: p.ConvertedAt}
	earliest := func(at *time.Time, t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(*at)) {
			*at = t
		}
	}
	for _, id := range p.Identities {
		if identifies(id.Identifier.Type) {
			earliest(&st.Identified, id.FirstAt)
		}
		if reaches(id.Identifier.Type, traits) {
			earliest(&st.Connected, id.FirstAt)
		}
	}
	return st
}

func (p Profile) traitMap() map[string]Trait {
	traits := make(map[string]Trait, len(p.Traits))
	for _, t := range p.Traits {
		traits[t.Name] = t
	}
	return traits
}

// StageChange is a profile's move from one stage to another, on its timeline.
type StageChange struct {
	Seq  int64 // the event that moved it
	From Stage
	To   Stage
	At   time.Time // the event's time
}

// Trait is a profile attribute with its provenance: the source and the event that set its value, and when.
type Trait struct {
	Name     string
	Value    json.RawMessage // a JSON value: string, number, boolean, or (rarely) an object or array
	SourceID string
	Seq      int64
	At       time.Time // the event's time
}

// Touch sums up a profile's touches of one touchpoint.
type Touch struct {
	TouchpointID string
	Touchpoint   string // its name when touched
	Channel      string
	CampaignID   string
	Count        int
	FirstSeq     int64
	First        time.Time
	LastSeq      int64
	Last         time.Time
}

// Identity is an identifier a profile holds.
type Identity struct {
	Identifier identity.Identifier
	Profile    string
	FirstSeq   int64     // the event that brought it in
	FirstAt    time.Time // that event's time, when a profile is read whole (zero when it is gone from the log)
}

// Merge records a profile merged into another by an event.
type Merge struct {
	Seq  int64 // the event that linked them
	Into string
	From string // the profile absorbed; it no longer exists
	Via  identity.Identifier
	At   time.Time // the event's time
}

// LeftOut records an identifier an event carried that resolution kept out of the graph.
type LeftOut struct {
	Seq        int64
	Identifier identity.Identifier
	Reason     string // "limit:<type>" or "separated"
}

// Attribution puts an event on a profile's timeline.
type Attribution struct {
	Seq     int64
	Profile string
	Name    string    // a track event's name, for segment conditions; "" for other types
	At      time.Time // the event's time
}
