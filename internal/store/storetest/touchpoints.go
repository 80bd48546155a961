package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

func testCampaigns(t *testing.T, db *store.DB, clock *Clock) {
	now := clock.Now()
	ends := now.AddDate(0, 1, 0)
	c := touchpoint.Campaign{ID: hearth.NewID(), Name: "Singles' Day", Goal: "Members", EndsAt: &ends, Status: touchpoint.StatusActive,
		UTMSource: "poster", UTMCampaign: "1111", CreatedAt: now, UpdatedAt: now}
	must(t, db.CreateCampaign(ctx, c))
	got, err := db.Campaign(ctx, c.ID)
	must(t, err)
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("campaign (-want +got):\n%s", diff)
	}
	c.Status, c.EndsAt, c.UpdatedAt = touchpoint.StatusPaused, nil, now.Add(time.Minute)
	must(t, db.UpdateCampaign(ctx, c))
	list, err := db.ListCampaigns(ctx)
	must(t, err)
	if len(list) != 1 || list[0].Status != touchpoint.StatusPaused || list[0].EndsAt != nil {
		t.Errorf("campaigns after update: %+v", list)
	}
	_, err = db.Campaign(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)
	wantKind(t, db.UpdateCampaign(ctx, touchpoint.Campaign{ID: hearth.NewID()}), hearth.NotFound)
}

func newTouchpoint(clock *Clock, name string, channel touchpoint.Channel, campaign string) touchpoint.Touchpoint {
	now := clock.Now()
	return touchpoint.Touchpoint{ID: hearth.NewID(), Name: name, Channel: channel, DestinationURL: "https://shop.example/" + name,
		CampaignID: campaign, Location: "Shanghai Jing'an", Owner: "Li Lei", Status: touchpoint.StatusActive, CreatedAt: now, UpdatedAt: now}
}

func testTouchpoints(t *testing.T, db *store.DB, clock *Clock) {
	now := clock.Now()
	c := touchpoint.Campaign{ID: hearth.NewID(), Name: "Spring", Status: touchpoint.StatusActive, CreatedAt: now, UpdatedAt: now}
	must(t, db.CreateCampaign(ctx, c))
	poster := newTouchpoint(clock, "poster", touchpoint.ChannelPoster, c.ID)
	card := newTouchpoint(clock, "card_100%", touchpoint.ChannelCard, "")
	var err error
	poster.Number, err = db.CreateTouchpoint(ctx, poster)
	must(t, err)
	card.Number, err = db.CreateTouchpoint(ctx, card)
	must(t, err)
	if poster.Number < 1 || card.Number <= poster.Number {
		t.Fatalf("numbers %d then %d: want increasing from 1", poster.Number, card.Number)
	}
	got, err := db.TouchpointByNumber(ctx, card.Number)
	must(t, err)
	if diff := cmp.Diff(card, got); diff != "" {
		t.Errorf("touchpoint by number (-want +got):\n%s", diff)
	}
	_, err = db.TouchpointByNumber(ctx, card.Number+100)
	wantKind(t, err, hearth.NotFound)

	for _, tc := range []struct {
		name   string
		filter touchpoint.TouchpointFilter
		want   []string
	}{
		{"all, newest first", touchpoint.TouchpointFilter{}, []string{card.ID, poster.ID}},
		{"campaign", touchpoint.TouchpointFilter{CampaignID: c.ID}, []string{poster.ID}},
		{"channel", touchpoint.TouchpointFilter{Channel: touchpoint.ChannelCard}, []string{card.ID}},
		{"query in name, any case", touchpoint.TouchpointFilter{Query: "POST"}, []string{poster.ID}},
		{"query in location", touchpoint.TouchpointFilter{Query: "jing'an"}, []string{card.ID, poster.ID}},
		{"percent is literal", touchpoint.TouchpointFilter{Query: "100%"}, []string{card.ID}},
		{"underscore is literal", touchpoint.TouchpointFilter{Query: "d_1"}, []string{card.ID}},
		{"nothing", touchpoint.TouchpointFilter{Query: "%x_"}, nil},
	} {
		list, err := db.ListTouchpoints(ctx, tc.filter)
		must(t, err)
		var ids []string
		for _, tp := range list {
			ids = append(ids, tp.ID)
		}
		if diff := cmp.Diff(tc.want, ids); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}

	poster.Status, poster.CampaignID, poster.UpdatedAt = touchpoint.StatusPaused, "", now.Add(time.Hour)
	must(t, db.UpdateTouchpoint(ctx, poster))
	got, err = db.Touchpoint(ctx, poster.ID)
	must(t, err)
	if diff := cmp.Diff(poster, got); diff != "" {
		t.Errorf("updated touchpoint (-want +got):\n%s", diff)
	}
	bad := newTouchpoint(clock, "bad", touchpoint.ChannelAd, hearth.NewID())
	if _, err := db.CreateTouchpoint(ctx, bad); err == nil {
		t.Error("a touchpoint of a campaign that does not exist was stored")
	}
}

// Serial ranges reserved at once never overlap.
func testReserveSerials(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "pack", touchpoint.ChannelPack, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	const workers, each = 8, 250
	firsts := make(chan int64, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			first, err := db.ReserveSerials(ctx, tp.ID, each)
			if err != nil {
				t.Error(err)
			}
			firsts <- first
		})
	}
	wg.Wait()
	close(firsts)
	seen := map[int64]bool{}
	for f := range firsts {
		if f < 1 || (f-1)%each != 0 || seen[f] {
			t.Errorf("range starting at %d overlaps another or is misaligned", f)
		}
		seen[f] = true
	}
	got, err := db.Touchpoint(ctx, tp.ID)
	must(t, err)
	if got.LastSerial != workers*each {
		t.Errorf("last serial %d, want %d", got.LastSerial, workers*each)
	}
	_, err = db.ReserveSerials(ctx, hearth.NewID(), 1)
	wantKind(t, err, hearth.NotFound)
}

func testRevocations(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "card", touchpoint.ChannelCard, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	rs := []touchpoint.Revocation{
		{ID: hearth.NewID(), TouchpointID: tp.ID, Kind: touchpoint.RevokeSerials, SerialFrom: 10, SerialTo: 20, Reason: "box lost", CreatedAt: clock.Now()},
		{ID: hearth.NewID(), TouchpointID: tp.ID, Kind: touchpoint.RevokeToken, Token: "EAIBLh3q7_LerIc", CreatedAt: clock.Now()},
	}
	for _, r := range rs {
		must(t, db.CreateRevocation(ctx, r))
	}
	got, err := db.Revocations(ctx, tp.ID)
	must(t, err)
	if diff := cmp.Diff(rs, got); diff != "" {
		t.Errorf("revocations (-want +got):\n%s", diff)
	}
}

// The touch counter's passes add up, per touchpoint and per hour, and record how far each count has read.
func testTouchCounts(t *testing.T, db *store.DB, clock *Clock) {
	h := clock.Now().UTC().Truncate(time.Hour)
	last := h.Add(90 * time.Minute)
	must(t, db.AddTouchCounts(ctx, touchpoint.TouchCounts{
		Stats: []touchpoint.TouchStats{{TouchpointID: "tp_a", Touches: 3, BotTouches: 1, LastTouchAt: &last}},
		Hours: []touchpoint.TouchHour{
			{TouchpointID: "tp_a", Hour: h, Touches: 2, BotTouches: 1},
			{TouchpointID: "tp_a", Hour: h.Add(time.Hour), Touches: 1},
			{TouchpointID: "tp_b", Hour: h, Touches: 7},
		},
		StatsFrom: 0, StatsThrough: 40, HoursFrom: 0, HoursThrough: 40,
	}))
	// A pass that only fills in hours (the counter catching up on hours the totals had counted).
	must(t, db.AddTouchCounts(ctx, touchpoint.TouchCounts{
		Hours:     []touchpoint.TouchHour{{TouchpointID: "tp_a", Hour: h, Touches: 4}, {TouchpointID: "tp_a", Hour: h.Add(-48 * time.Hour), BotTouches: 2}},
		StatsFrom: 40, StatsThrough: 40, HoursFrom: 40, HoursThrough: 55,
	}))
	// Another node's pass over touches already counted: refused whole.
	err := db.AddTouchCounts(ctx, touchpoint.TouchCounts{
		Stats:     []touchpoint.TouchStats{{TouchpointID: "tp_a", Touches: 3}},
		Hours:     []touchpoint.TouchHour{{TouchpointID: "tp_a", Hour: h, Touches: 3}},
		StatsFrom: 0, StatsThrough: 40, HoursFrom: 0, HoursThrough: 40,
	})
	if hearth.KindOf(err) != hearth.Conflict {
		t.Errorf("a pass from offsets that moved: %v, want a conflict", err)
	}
	got, err := db.TouchHours(ctx, "tp_a", h.Add(-24*time.Hour), h.Add(2*time.Hour))
	must(t, err)
	want := []touchpoint.TouchHour{
		{TouchpointID: "tp_a", Hour: h, Touches: 6, BotTouches: 1},
		{TouchpointID: "tp_a", Hour: h.Add(time.Hour), Touches: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hours of tp_a from a day before (-want +got):\n%s", diff)
	}
	if got, err := db.TouchHours(ctx, "tp_a", h.Add(time.Hour), h.Add(2*time.Hour)); err != nil || len(got) != 1 || got[0].Touches != 1 {
		t.Errorf("the hour after: %+v, %v", got, err)
	}
	stats, err := db.TouchStats(ctx)
	must(t, err)
	if len(stats) != 1 || stats[0].Touches != 3 || stats[0].BotTouches != 1 || !stats[0].LastTouchAt.Equal(last) {
		t.Errorf("totals %+v", stats)
	}
	for name, want := range map[string]int64{touchpoint.StatsConsumer: 40, touchpoint.HoursConsumer: 55} {
		if got, err := db.ConsumerOffset(ctx, name); err != nil || got != want {
			t.Errorf("offset of %s: %d, %v; want %d", name, got, err, want)
		}
	}
	// A pass over a backlog adds to many rows at once (a per-item code's touches each to its own touchpoint),
	// more than one statement holds, and the next pass adds to the same rows.
	var many touchpoint.TouchCounts
	for i := range 150 {
		many.Stats = append(many.Stats, touchpoint.TouchStats{TouchpointID: fmt.Sprintf("tp_item_%03d", i), Touches: int64(i), BotTouches: 1})
		many.Hours = append(many.Hours, touchpoint.TouchHour{TouchpointID: "tp_many", Hour: h.Add(time.Duration(i) * time.Hour), Touches: int64(i) + 1})
	}
	for pass := range int64(2) {
		many.StatsFrom, many.StatsThrough, many.HoursFrom, many.HoursThrough = 40+10*pass, 50+10*pass, 55+10*pass, 65+10*pass
		must(t, db.AddTouchCounts(ctx, many))
	}
	stats, err = db.TouchStats(ctx)
	must(t, err)
	items := 0
	for _, st := range stats {
		var i int64
		if _, err := fmt.Sscanf(st.TouchpointID, "tp_item_%d", &i); err != nil {
			continue
		}
		items++
		if st.Touches != 2*i || st.BotTouches != 2 {
			t.Errorf("totals of %s after two passes: %+v, want %d people and 2 bots", st.TouchpointID, st, 2*i)
		}
	}
	if items != 150 {
		t.Errorf("%d touchpoints of the two passes have totals, want 150", items)
	}
	hours, err := db.TouchHours(ctx, "tp_many", h, h.Add(150*time.Hour))
	must(t, err)
	if len(hours) != 150 {
		t.Fatalf("%d hours of tp_many, want 150", len(hours))
	}
	for i, hr := range hours {
		if !hr.Hour.Equal(h.Add(time.Duration(i)*time.Hour)) || hr.Touches != 2*(int64(i)+1) {
			t.Errorf("hour %d of tp_many: %+v, want %d touches at %v", i, hr, 2*(i+1), h.Add(time.Duration(i)*time.Hour))
		}
	}
}

// A campaign's touches by the hour are those of the touchpoints in it, summed; the brand's, those of all.
func testCampaignTouchHours(t *testing.T, db *store.DB, clock *Clock) {
	now := clock.Now()
	c := touchpoint.Campaign{ID: hearth.NewID(), Name: "Spring", Status: touchpoint.StatusActive, CreatedAt: now, UpdatedAt: now}
	must(t, db.CreateCampaign(ctx, c))
	poster, card, other := newTouchpoint(clock, "poster", touchpoint.ChannelPoster, c.ID), newTouchpoint(clock, "card", touchpoint.ChannelCard, c.ID),
		newTouchpoint(clock, "other", touchpoint.ChannelAd, "")
	for _, tp := range []touchpoint.Touchpoint{poster, card, other} {
		_, err := db.CreateTouchpoint(ctx, tp)
		must(t, err)
	}
	h := now.UTC().Truncate(time.Hour)
	must(t, db.AddTouchCounts(ctx, touchpoint.TouchCounts{Hours: []touchpoint.TouchHour{
		{TouchpointID: poster.ID, Hour: h, Touches: 2, BotTouches: 1},
		{TouchpointID: card.ID, Hour: h, Touches: 3},
		{TouchpointID: card.ID, Hour: h.Add(time.Hour), Touches: 1},
		{TouchpointID: other.ID, Hour: h, Touches: 50},
	}, HoursThrough: 10}))
	got, err := db.CampaignTouchHours(ctx, c.ID, h.Add(-time.Hour), h.Add(3*time.Hour))
	must(t, err)
	want := []touchpoint.TouchHour{{Hour: h, Touches: 5, BotTouches: 1}, {Hour: h.Add(time.Hour), Touches: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the campaign's hours (-want +got):\n%s", diff)
	}
	all, err := db.AllTouchHours(ctx, h, h.Add(time.Hour)) // the window ends before the card's second hour
	must(t, err)
	if diff := cmp.Diff([]touchpoint.TouchHour{{Hour: h, Touches: 55, BotTouches: 1}}, all); diff != "" {
		t.Errorf("every touchpoint's hours (-want +got):\n%s", diff)
	}
}

func testSigningKeys(t *testing.T, db *store.DB, clock *Clock) {
	first, err := db.CreateSigningKey(ctx, []byte{1, 2, 3}, clock.Now())
	must(t, err)
	second, err := db.CreateSigningKey(ctx, []byte{4, 5, 6}, clock.Now())
	must(t, err)
	if first == 0 || second <= first {
		t.Fatalf("key ids %d then %d", first, second)
	}
	must(t, db.RetireSigningKey(ctx, first, clock.Now()))
	wantKind(t, db.RetireSigningKey(ctx, first, clock.Now()), hearth.NotFound)
	keys, err := db.SigningKeys(ctx)
	must(t, err)
	at := clock.Now()
	want := []touchpoint.StoredKey{{ID: first, Sealed: []byte{1, 2, 3}, CreatedAt: at, RetiredAt: &at}, {ID: second, Sealed: []byte{4, 5, 6}, CreatedAt: at}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}
