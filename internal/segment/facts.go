package segment

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth/internal/profile"
)

// Facts are what rules read of one profile. The engine reads them for the people a step re-evaluates, a
// few queries for all of them, and decides every segment's rule for each in memory: per person, that costs
// far less than a query per condition of every segment.
type Facts struct {
	Steps     profile.Steps              // the lifecycle steps met
	Traits    map[string]json.RawMessage // the traits rules name
	Reachable map[string]bool            // email, sms, wechat: an identifier of the channel
	Touches   []TouchFact
	Events    []EventFact // the track events of the names rules name
	Members   map[string]bool
	Listed    map[string]bool // list segments that hold one of the profile's identifiers
}

// TouchFact is a profile's touches of a touchpoint.
type TouchFact struct {
	TouchpointID, CampaignID, Channel string
	Last                              time.Time
}

// EventFact is a track event; Properties are read only for events that a rule filters by property.
type EventFact struct {
	Name       string
	At         time.Time
	Properties map[string]json.RawMessage
}

// Needs are what facts the rules of a step read.
type Needs struct {
	Traits     []string // names, with the consent traits when a rule asks for reachability
	Events     []string // names
	Properties []string // event names whose properties are filtered on
	Touches    bool
	Reachable  bool
	Lists      bool
	Members    bool
}

func (n *Needs) add(r Rule) {
	addName := func(list *[]string, name string) {
		if !slices.Contains(*list, name) {
			*list = append(*list, name)
		}
	}
	r.walk(func(x Rule) {
		switch {
		case x.Trait != nil:
			addName(&n.Traits, x.Trait.Name)
		case x.Event != nil:
			addName(&n.Events, x.Event.Name)
			if len(x.Event.Where) > 0 {
				addName(&n.Properties, x.Event.Name)
			}
		case x.Touched != nil:
			n.Touches = true
		case x.Reachable != nil:
			n.Reachable = true
			for _, t := range []string{profile.EmailSubscribed, profile.SMSSubscribed, profile.WeChatSubscribed} {
				addName(&n.Traits, t)
			}
		case x.list != "":
			n.Lists = true
		}
	})
	n.Members = true // the current members, to tell who entered and who left
}

// holds decides a rule for one profile's facts, as the queries of evaluation do for many.
func holds(r Rule, f *Facts, now time.Time) bool {
	switch {
	case r.And != nil:
		for _, c := range r.And {
			if !holds(c, f, now) {
				return false
			}
		}
		return true
	case r.Or != nil:
		for _, c := range r.Or {
			if holds(c, f, now) {
				return true
			}
		}
		return false
	case r.Not != nil:
		return !holds(*r.Not, f, now)
	case r.Trait != nil:
		v, ok := f.Traits[r.Trait.Name]
		return ok && comparesJSON(v, *r.Trait, now)
	case r.Event != nil:
		return eventHolds(r.Event, f, now)
	case r.Touched != nil:
		t := r.Touched
		for _, tc := range f.Touches {
			if (t.TouchpointID == "" || tc.TouchpointID == t.TouchpointID) && (t.CampaignID == "" || tc.CampaignID == t.CampaignID) &&
				(t.Channel == "" || tc.Channel == t.Channel) && (t.WithinLastDays == 0 || !tc.Last.Before(now.AddDate(0, 0, -t.WithinLastDays))) {
				return true
			}
		}
		return false
	case r.Stage != nil:
		return r.Stage.holds(f.Steps)
	case r.Reachable != nil:
		if r.Reachable.Channel == "any" {
			return f.Reachable["email"] || f.Reachable["sms"] || f.Reachable["wechat"]
		}
		return f.Reachable[r.Reachable.Channel]
	case r.Segment != nil:
		return f.Members[r.Segment.ID]
	case r.list != "":
		return f.Listed[r.list]
	}
	return false
}

func eventHolds(e *Event, f *Facts, now time.Time) bool {
	var from, to time.Time
	switch {
	case e.WithinLastDays > 0:
		from = now.AddDate(0, 0, -e.WithinLastDays)
	case e.Between != nil:
		from, to = dayStart(e.Between.From), dayStart(e.Between.To).AddDate(0, 0, 1)
	}
	n := 0
	for _, ev := range f.Events {
		if ev.Name != e.Name || !from.IsZero() && ev.At.Before(from) || !to.IsZero() && !ev.At.Before(to) {
			continue
		}
		ok := true
		for _, w := range e.Where {
			v, has := ev.Properties[w.Property]
			if ok = has && comparesJSON(v, w, now); !ok {
				break
			}
		}
		if ok {
			n++
		}
	}
	if e.Count == nil {
		return n >= 1
	}
	switch e.Count.Op {
	case "at_least":
		return n >= e.Count.Value
	case "at_most":
		return n <= e.Count.Value
	}
	return n == e.Count.Value
}

// comparesJSON compares a JSON value as the store's queries do: text with text, numbers with numbers, a
// date as the first ten characters of text that start with one.
func comparesJSON(raw json.RawMessage, c Compare, now time.Time) bool {
	raw = bytes.TrimSpace(raw)
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	s, isText := v.(string)
	f, isNum := v.(float64)
	day := func() (string, bool) {
		if !isText || len(s) < 10 || !dayPattern.MatchString(s[:10]) {
			return "", false
		}
		return s[:10], true
	}
	switch c.Op {
	case Equals:
		return v == c.Value
	case Contains:
		return isText && strings.Contains(asciiLower(s), asciiLower(c.Value.(string)))
	case In:
		return (isText || isNum) && slices.Contains(c.Values, v)
	case Greater:
		return isNum && f > c.Value.(float64)
	case GreaterOrEqual:
		return isNum && f >= c.Value.(float64)
	case Less:
		return isNum && f < c.Value.(float64)
	case LessOrEqual:
		return isNum && f <= c.Value.(float64)
	case Exists:
		return v != nil
	case Before:
		d, ok := day()
		return ok && d < c.Value.(string)
	case After:
		d, ok := day()
		return ok && d > c.Value.(string)
	case WithinLastDays:
		d, ok := day()
		today := now.UTC().Format(time.DateOnly)
		return ok && d >= now.UTC().AddDate(0, 0, -c.Days).Format(time.DateOnly) && d <= today
	}
	return false
}

// asciiLower lower-cases Latin letters only, as SQLite's lower() does.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
