package segment

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/identity"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// Service keeps the segments that marketers define: it checks them, stores them, and wakes the engine.
type Service struct {
	store  Admin
	clock  hearth.Clock
	engine *Engine
	rules  func(context.Context) (identity.Rules, error) // the identity rules that read a list's values
	counts leafCache
}

// NewService makes a Service. rules returns the identity rules in force, to read a list's email addresses
// and phone numbers as the profile processor reads them.
func NewService(store Admin, clock hearth.Clock, engine *Engine, rules func(context.Context) (identity.Rules, error)) *Service {
	return &Service{store: store, clock: clock, engine: engine, rules: rules}
}

// EvaluationFailure returns the failure of a segment's full evaluation, if it failed again and again on this
// node.
func (s *Service) EvaluationFailure(id string) (EvaluationFailure, bool) {
	if s.engine == nil {
		return EvaluationFailure{}, false
	}
	return s.engine.Failure(id)
}

// Input is what a marketer sets of a segment. Nil members of an update stay as they are.
type Input struct {
	Name        *string
	Description *string
	Kind        Kind
	Rule        *Rule
}

// Limits of a segment.
const (
	maxNameRunes        = 200
	maxDescriptionRunes = 2000
	maxListItems        = 1_000_000
	maxListLines        = 1_000_000
	maxRejectedReported = 1000
)

func (s *Service) checkText(in Input, creating bool) error {
	if in.Name != nil || creating {
		if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
			return hearth.Errorf(hearth.Invalid, "segment.check", "A segment needs a name.")
		}
		if utf8.RuneCountInString(*in.Name) > maxNameRunes {
			return hearth.Errorf(hearth.Invalid, "segment.check", "A segment's name has at most %d characters.", maxNameRunes)
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > maxDescriptionRunes {
		return hearth.Errorf(hearth.Invalid, "segment.check", "A segment's description has at most %d characters.", maxDescriptionRunes)
	}
	return nil
}

// checkReferences refuses a rule for segment id that uses a segment that does not exist, or that would make
// segments use each other in a circle.
func (s *Service) checkReferences(ctx context.Context, id string, rule Rule) error {
	refs := rule.References()
	if len(refs) == 0 {
		return nil
	}
	segs, err := s.store.Segments(ctx)
	if err != nil {
		return err
	}
	byID := map[string]bool{}
	for i, seg := range segs {
		byID[seg.ID] = true
		if seg.ID == id {
			segs[i].Rule, segs[i].Kind = &rule, RuleKind
		}
	}
	if !byID[id] {
		segs = append(segs, Segment{ID: id, Kind: RuleKind, Rule: &rule})
	}
	_, cycle := dependencyOrder(segs)
	var bad error
	rule.walkPaths("rule", func(n Rule, path string) {
		if n.Segment == nil || bad != nil {
			return
		}
		at, ref := path+".segment.id", n.Segment.ID
		switch {
		case ref == id:
			bad = invalid(at, "uses segment %s, which is this segment", ref)
		case !byID[ref]:
			bad = invalid(at, "uses segment %s, which does not exist", ref)
		case cycle != nil && usesSegment(segs, ref, id):
			bad = invalid(at, "uses segment %s, which uses this one: segments cannot use each other in a circle", ref)
		}
	})
	return bad
}

// usesSegment reports whether segment from uses segment to, directly or through others.
func usesSegment(segs []Segment, from, to string) bool {
	byID := map[string]Segment{}
	for _, s := range segs {
		byID[s.ID] = s
	}
	seen := map[string]bool{}
	var uses func(id string) bool
	uses = func(id string) bool {
		if seen[id] {
			return false
		}
		seen[id] = true
		for _, ref := range byID[id].rule().References() {
			if ref == to || uses(ref) {
				return true
			}
		}
		return false
	}
	return uses(from)
}

// Create stores a new segment; a rule segment's members are evaluated in the background (Wait).
func (s *Service) Create(ctx context.Context, in Input, by string) (Segment, error) {
	if err := s.checkText(in, true); err != nil {
		return Segment{}, err
	}
	now := s.clock.Now().UTC()
	seg := Segment{ID: "seg_" + strings.ReplaceAll(hearth.NewID(), "-", "")[:20], Name: strings.TrimSpace(*in.Name), Kind: in.Kind,
		Version: 1, CreatedAt: now, UpdatedAt: now, CreatedBy: by}
	if in.Description != nil {
		seg.Description = *in.Description
	}
	switch in.Kind {
	case RuleKind, "":
		seg.Kind = RuleKind
		if in.Rule == nil {
			return Segment{}, invalid("rule", "is missing")
		}
		if err := s.checkReferences(ctx, seg.ID, *in.Rule); err != nil {
			return Segment{}, err
		}
		seg.Rule = in.Rule
	case ListKind:
		if in.Rule != nil {
			return Segment{}, hearth.Errorf(hearth.Invalid, "segment.create", "A list segment has no rule: its members come from its list.")
		}
	default:
		return Segment{}, hearth.Errorf(hearth.Invalid, "segment.create", "A segment's kind is rule or list.")
	}
	if err := s.store.CreateSegment(ctx, seg); err != nil {
		return Segment{}, err
	}
	s.engine.Wake()
	return seg, nil
}

// Update changes a segment's name, description or rule; a new rule is evaluated in the background.
func (s *Service) Update(ctx context.Context, id string, in Input) (Segment, error) {
	seg, err := s.store.Segment(ctx, id)
	if err != nil {
		return seg, err
	}
	if err := s.checkText(in, false); err != nil {
		return seg, err
	}
	if in.Name != nil {
		seg.Name = strings.TrimSpace(*in.Name)
	}
	if in.Description != nil {
		seg.Description = *in.Description
	}
	changed := false
	if in.Rule != nil {
		if seg.Kind == ListKind {
			return seg, hearth.Errorf(hearth.Invalid, "segment.update", "A list segment has no rule: its members come from its list.")
		}
		if err := s.checkReferences(ctx, id, *in.Rule); err != nil {
			return seg, err
		}
		changed = !sameRule(*seg.Rule, *in.Rule)
		seg.Rule = in.Rule
	}
	seg.UpdatedAt = s.clock.Now().UTC()
	if err := s.store.UpdateSegment(ctx, seg, changed); err != nil {
		return seg, err
	}
	if changed {
		s.engine.Wake()
	}
	return s.store.Segment(ctx, id)
}

func sameRule(a, b Rule) bool {
	x, err1 := marshalRule(a)
	y, err2 := marshalRule(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// Delete removes a segment, its members and its history; a segment that another one's rule uses stays.
func (s *Service) Delete(ctx context.Context, id string) error {
	if _, err := s.store.Segment(ctx, id); err != nil {
		return err
	}
	segs, err := s.store.Segments(ctx)
	if err != nil {
		return err
	}
	for _, other := range segs {
		if other.ID != id && slices.Contains(other.rule().References(), id) {
			return hearth.Errorf(hearth.Conflict, "segment.delete", "Segment %q uses this segment: change its rule first.", other.Name)
		}
	}
	return s.store.DeleteSegment(ctx, id)
}

// Get returns a segment.
func (s *Service) Get(ctx context.Context, id string) (Segment, error) {
	return s.store.Segment(ctx, id)
}

// List returns every segment, by name.
func (s *Service) List(ctx context.Context) ([]Segment, error) {
	segs, err := s.store.Segments(ctx)
	slices.SortFunc(segs, func(a, b Segment) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return segs, err
}

// Count returns how many people a rule matches now, and a few of them, as a marketer edits it: conditions
// unchanged in the last minute are not queried again.
func (s *Service) Count(ctx context.Context, rule Rule) (Counted, error) {
	f, err := s.count(ctx, rule, false)
	return f.Counted, err
}

// Funnel counts a rule as Count does, but from the store as it is now, and how many of the people it matches
// have reached each lifecycle step, all from one snapshot: the people a campaign or a touchpoint reached, and
// how far they went.
func (s *Service) Funnel(ctx context.Context, rule Rule) (Funnel, error) {
	return s.count(ctx, rule, true)
}

func (s *Service) count(ctx context.Context, rule Rule, steps bool) (Funnel, error) {
	if err := s.checkReferences(ctx, "", rule); err != nil {
		return Funnel{}, err
	}
	// A live count is of the minute: its windows start on the minute, so that the conditions a marketer did
	// not change are answered from the cache. A funnel is read when a page opens, and reads the store now.
	now, read := s.clock.Now().Truncate(time.Minute), s.clock.Now()
	reader := func(r Reader) Reader { return cachingReader{Reader: r, cache: &s.counts, now: read} }
	if steps {
		now, reader = read, func(r Reader) Reader { return r }
	} else {
		prefetch(ctx, s.store, rule, reader, now)
	}
	var f Funnel
	err := s.store.View(ctx, func(r Reader) error {
		v := newEvaluation(ctx, reader(r), now)
		m, err := v.match(rule, nil)
		if err != nil {
			return err
		}
		f.Size = int64(m.GetCardinality())
		if !steps {
			f.Sample = sample(nil, m)
			return nil
		}
		var known, converted *Set
		for i, step := range Stages[1:] {
			reached, err := v.match(Rule{Stage: &StageIs{Op: "reached", Value: step}}, m)
			if err != nil {
				return err
			}
			f.Steps[i] = int64(reached.GetCardinality())
			switch step {
			case profile.Identified:
				known = reached
			case profile.Converted:
				converted = reached
			}
		}
		// The people a funnel shows are identified ones first, someone a marketer can recognise, then anonymous ones.
		f.Sample = sample(sample(nil, known), roaring64.AndNot(m, known))
		if rule.Touched != nil && !converted.IsEmpty() {
			after, err := r.ConvertedAfter(ctx, *rule.Touched, converted)
			if err != nil {
				return err
			}
			f.ConvertedAfterTouch = int64(after.GetCardinality())
		}
		return nil
	})
	return f, err
}

// sample adds the newest profiles of s to ids, up to countSample in all.
func sample(ids []string, s *Set) []string {
	for it := s.ReverseIterator(); it.HasNext() && len(ids) < countSample; {
		ids = append(ids, profile.ProfileID(int64(it.Next())))
	}
	return ids
}

// Counted is a rule's size now, with a few of the people it matches: the newest profiles, whose numbers are
// the highest (a profile's number is the seq of the event that made it).
type Counted struct {
	Size   int64
	Sample []string // profile ids, newest first
}

// Funnel is a count with how many of its people have reached each step: identified, connected, activated
// and converted, in that order. A step does not need the ones before it, so the figures need not fall. Its
// sample holds identified people first.
type Funnel struct {
	Counted
	Steps [4]int64
	// ConvertedAfterTouch, for a touched rule alone: how many of its people converted at or after their first
	// touch of what it names, whatever its window (the converted step counts those who converted before too).
	ConvertedAfterTouch int64
}

// countSample is how many people a count shows of those it matched.
const countSample = 5

// Wait returns the segment once its members are evaluated, or as it is when ctx ends first.
func (s *Service) Wait(ctx context.Context, id string) (Segment, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		seg, err := s.store.Segment(ctx, id)
		if err != nil || !seg.Evaluating() {
			return seg, err
		}
		select {
		case <-ctx.Done():
			return s.store.Segment(context.WithoutCancel(ctx), id)
		case <-t.C:
		}
	}
}

// Rejected is a line of a list that was not read, and why.
type Rejected struct {
	Line   int
	Reason string
}

// ListResult is what reading a list gave.
type ListResult struct {
	Items        int
	Rejected     []Rejected // the first 1,000
	MoreRejected int        // the rest
}

// ReplaceList reads a CSV list of email addresses and phone numbers and makes it the list of a list segment:
// one value per line, or columns under a header that names an email or a phone column.
func (s *Service) ReplaceList(ctx context.Context, id string, data []byte) (ListResult, error) {
	seg, err := s.store.Segment(ctx, id)
	if err != nil {
		return ListResult{}, err
	}
	if seg.Kind != ListKind {
		return ListResult{}, hearth.Errorf(hearth.Invalid, "segment.list", "Only a list segment has a list: this one has a rule.")
	}
	rules, err := s.rules(ctx)
	if err != nil {
		return ListResult{}, err
	}
	items, res, err := readList(data, rules)
	if err != nil {
		return res, err
	}
	if err := s.store.ReplaceList(ctx, id, items, s.clock.Now().UTC()); err != nil {
		return res, err
	}
	s.engine.Wake()
	return res, nil
}

// Header names of the columns a list reads.
var (
	emailHeaders = []string{"email", "e-mail", "email address", "mail", "邮箱", "电子邮件", "邮件"}
	phoneHeaders = []string{"phone", "mobile", "phone number", "mobile phone", "cell", "tel", "telephone", "手机", "手机号", "电话", "手机号码", "电话号码"}
)

// readList reads a list's identifiers, each once.
func readList(data []byte, rules identity.Rules) ([]identity.Identifier, ListResult, error) {
	var res ListResult
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // Excel writes a byte-order mark
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	seen := map[identity.Identifier]bool{}
	var items []identity.Identifier
	reject := func(line int, format string, args ...any) {
		if len(res.Rejected) < maxRejectedReported {
			res.Rejected = append(res.Rejected, Rejected{Line: line, Reason: fmt.Sprintf(format, args...)})
		} else {
			res.MoreRejected++
		}
	}
	columns := map[int]identity.Type{} // from a header; none: each line is one value of either type
	for lineNo := 1; ; lineNo++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				reject(pe.StartLine, "not valid CSV: %v", pe.Err)
				continue
			}
			return nil, res, hearth.Errorf(hearth.Invalid, "segment.list", "The list cannot be read as CSV: %v.", err)
		}
		line, _ := r.FieldPos(0) // only after a record was read: FieldPos panics after an error
		if lineNo > maxListLines {
			return nil, res, hearth.Errorf(hearth.Invalid, "segment.list", "A list has at most %d lines.", maxListLines)
		}
		if lineNo == 1 {
			for i, h := range rec {
				h = strings.ToLower(strings.TrimSpace(h))
				switch {
				case slices.Contains(emailHeaders, h):
					columns[i] = identity.Email
				case slices.Contains(phoneHeaders, h):
					columns[i] = identity.Phone
				}
			}
			if len(columns) > 0 {
				continue
			}
		}
		found, bad := 0, ""
		for i, v := range rec {
			v = strings.TrimSpace(v)
			t, named := columns[i]
			if v == "" || len(columns) > 0 && !named {
				continue
			}
			var id identity.Identifier
			ok := false
			switch {
			case named:
				id, ok = rules.Normalize(t, v)
			case strings.Contains(v, "@"):
				id, ok = rules.Normalize(identity.Email, v)
			default:
				id, ok = rules.Normalize(identity.Phone, v)
			}
			if !ok {
				bad = fmt.Sprintf("column %d is not an email address or a phone number", i+1)
				if named {
					bad = fmt.Sprintf("column %d is not a valid %s", i+1, map[identity.Type]string{identity.Email: "email address", identity.Phone: "phone number"}[t])
				}
				continue
			}
			found++
			if !seen[id] {
				if len(items) >= maxListItems {
					return nil, res, hearth.Errorf(hearth.Invalid, "segment.list", "A list has at most %d email addresses and phone numbers.", maxListItems)
				}
				seen[id] = true
				items = append(items, id)
			}
		}
		switch {
		case bad != "":
			reject(line, "%s", bad)
		case found == 0:
			reject(line, "no email address or phone number")
		}
	}
	res.Items = len(items)
	return items, res, nil
}
