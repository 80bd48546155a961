package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/httpapi"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// fakeOffsets is an event log whose head and offsets a test sets.
type fakeOffsets struct {
	mu      sync.Mutex
	head    int64
	offsets map[string]int64
}

func (f *fakeOffsets) LogHead(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head, nil
}

func (f *fakeOffsets) ConsumerOffset(_ context.Context, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offsets[name], nil
}

func (f *fakeOffsets) SetAsideEvents(context.Context, string, int) (int64, []collect.SetAsideEvent, error) {
	return 0, nil, nil
}

// set moves the head and the consumers: people to profiles, the rest to others.
func (f *fakeOffsets) set(head, profiles, others int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.head = head
	f.offsets = map[string]int64{profile.Consumer: profiles, segment.Consumer: others, touchpoint.StatsConsumer: others, touchpoint.HoursConsumer: others}
}

func partNamed(t *testing.T, p httpapi.Processing, name string) httpapi.ProcessingPart {
	t.Helper()
	for _, part := range p.Parts {
		if part.Name == name {
			return part
		}
	}
	t.Fatalf("no part %q in %+v", name, p)
	return httpapi.ProcessingPart{}
}

// A backlog is told as catching up, with its pace, progress and time left, until it is read; a consumer that
// reads nothing for half a minute is stalled; live traffic's small lag is up to date.
func TestProcessing(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	log := &fakeOffsets{}
	p := newProcessing(log, clock)
	step := func(head, profiles, others int64) httpapi.Processing {
		t.Helper()
		clock.Advance(processingEvery)
		log.set(head, profiles, others)
		got, err := p.Processing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// A start on a backlog of 1,000,000 events: no pace measured yet, so catching up without a time left.
	got := step(1_000_000, 0, 1_000_000)
	people := partNamed(t, got, "people")
	if people.State != httpapi.CatchingUp || people.Behind != 1_000_000 || people.ETASeconds != nil || *people.Progress != 0 {
		t.Fatalf("first sample: people = %+v, want catching up, 1,000,000 behind, no time left, progress 0", people)
	}
	if s := partNamed(t, got, "segments"); s.State != httpapi.UpToDate || s.Progress != nil {
		t.Errorf("segments = %+v, want up to date", s)
	}
	// The processor reads 20,000 events a second while 1,000 a second arrive.
	var head, read int64 = 1_000_000, 0
	for range 5 {
		head += 2_000
		read += 40_000
		got = step(head, read, head)
	}
	people = partNamed(t, got, "people")
	if people.Rate != 20_000 || people.Incoming != 1_000 {
		t.Errorf("rates = %v read, %v arriving a second, want 20,000 and 1,000", people.Rate, people.Incoming)
	}
	wantETA := (head - read + 18_999) / 19_000
	if people.State != httpapi.CatchingUp || people.ETASeconds == nil || *people.ETASeconds != wantETA {
		t.Errorf("people = %+v (eta %v), want catching up, %d s left", people, people.ETASeconds, wantETA)
	}
	if want := 1 - float64(head-read)/1_000_000; *people.Progress != want {
		t.Errorf("progress = %v, want %v", *people.Progress, want)
	}
	// Once it is within a few seconds of work of the head, it is up to date, with no progress to tell.
	got = step(head+2_000, head-20_000, head+2_000)
	if people = partNamed(t, got, "people"); people.State != httpapi.UpToDate || people.Progress != nil || people.ETASeconds != nil {
		t.Errorf("close behind: people = %+v, want up to date", people)
	}
	head += 2_000
	// A processor that reads nothing while events wait is stalled once a whole window shows it.
	for i := 0; ; i++ {
		got = step(head+5_000, head, head+5_000)
		people = partNamed(t, got, "people")
		if people.State == httpapi.Stalled {
			if time.Duration(i)*processingEvery < processingWindow-2*processingEvery {
				t.Fatalf("stalled after %d samples, before a window of them", i+1)
			}
			break
		}
		if i > 20 {
			t.Fatalf("never stalled: %+v", people)
		}
	}
	if people.Behind != 5_000 || people.ETASeconds != nil {
		t.Errorf("stalled: %+v, want 5,000 behind and no time left", people)
	}
	// A new backlog's progress starts again from its own size.
	got = step(head+5_000, head+5_000, head+5_000)
	if people = partNamed(t, got, "people"); people.State != httpapi.UpToDate {
		t.Fatalf("caught up: %+v", people)
	}
	got = step(head+105_000, head+5_000, head+105_000)
	if people = partNamed(t, got, "people"); people.State != httpapi.CatchingUp || *people.Progress != 0 {
		t.Errorf("new backlog: %+v, want catching up from 0", people)
	}
	// The touch counts are as far behind as the slower of their two counters.
	log.mu.Lock()
	log.offsets[touchpoint.HoursConsumer] = 0
	log.mu.Unlock()
	got, _ = p.Processing(ctx)
	if tc := partNamed(t, got, "touch_counts"); tc.Behind != head+105_000 {
		t.Errorf("touch counts behind %d, want %d (the hours' counter's)", tc.Behind, head+105_000)
	}
}

// browserUserAgent is a desktop browser's: a Go client's would make the events a bot's.
const browserUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// sendBacklog posts n events through /v1/batch, 1,000 a request from 4 clients at once: page views of n/4
// visitors, each a few times.
func sendBacklog(t *testing.T, base, writeKey, prefix string, n int) {
	t.Helper()
	const perRequest, clients = 1000, 4
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			for r := c; r*perRequest < n; r += clients {
				var body bytes.Buffer
				body.WriteString(`{"batch":[`)
				for i := r * perRequest; i < min(n, (r+1)*perRequest); i++ {
					if i > r*perRequest {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"type":"page","anonymousId":"%s-v%d","name":"Home","messageId":"%s-%d","properties":{"path":"/"}}`, prefix, i%(n/4+1), prefix, i)
				}
				body.WriteString(`]}`)
				req, _ := http.NewRequest("POST", base+"/v1/batch", &body)
				req.SetBasicAuth(writeKey, "")
				req.Header.Set("User-Agent", browserUserAgent) // people, not a bot
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("POST /v1/batch: %s", resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A backlog of events shows in GET /api/v1/system/processing as the people catching up, with their progress,
// until the processor and the segment engine have read it; then everything is up to date.
func TestProcessingBacklog(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			bg := context.Background()
			src, err := s.app.sources.Create(bg, "Website", collect.KindWebsite)
			if err != nil {
				t.Fatal(err)
			}
			key, _, err := s.app.auth.CreateAPIKey(bg, "dashboards", hearth.RoleAnalyst)
			if err != nil {
				t.Fatal(err)
			}
			status := func() httpapi.Processing {
				t.Helper()
				var p httpapi.Processing
				if code := s.call(t, key, "GET", "/api/v1/system/processing", nil, &p); code != http.StatusOK {
					t.Fatalf("GET /api/v1/system/processing: %d", code)
				}
				return p
			}
			if p := status(); len(p.Parts) != 3 || partNamed(t, p, "people").State != httpapi.UpToDate {
				t.Fatalf("an empty store: %+v, want its three parts up to date", p)
			}

			// While the backlog arrives and after, the people are seen catching up with it.
			const backlog = 30_000
			var seen struct {
				sync.Mutex
				catchingUp   bool
				behind       int64
				withProgress bool
			}
			done := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					var p httpapi.Processing
					s.call(t, key, "GET", "/api/v1/system/processing", nil, &p)
					for _, part := range p.Parts {
						if part.Name == "people" && part.State == httpapi.CatchingUp {
							seen.Lock()
							seen.catchingUp, seen.behind = true, max(seen.behind, part.Behind)
							seen.withProgress = seen.withProgress || (part.Progress != nil && *part.Progress >= 0 && *part.Progress <= 1)
							seen.Unlock()
						}
					}
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			sendBacklog(t, s.base, src.WriteKey, "b", backlog)
			var p httpapi.Processing
			for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
				p = status()
				if all := p.Parts; all[0].Behind+all[1].Behind+all[2].Behind == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 3 minutes: %+v", p)
				}
			}
			close(done)
			<-watched
			seen.Lock()
			defer seen.Unlock()
			if !seen.catchingUp || seen.behind < catchUpEvents || !seen.withProgress {
				t.Errorf("while %d events were read: catching up seen %v, at most %d behind, with progress %v; want catching up by at least %d, with its progress",
					backlog, seen.catchingUp, seen.behind, seen.withProgress, catchUpEvents)
			}
			if p.Head < backlog {
				t.Errorf("head = %d, want at least %d", p.Head, backlog)
			}
			for _, part := range p.Parts {
				if part.State != httpapi.UpToDate || part.Progress != nil || part.ETASeconds != nil {
					t.Errorf("%s, having read everything: %+v, want up to date, without progress or time left", part.Name, part)
				}
			}
		})
	}
}

// The events a part set aside are counted in its status, for every role, and listed with their reasons for
// admins only.
func TestSetAsideShown(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s := startApp(t, e2eConfig(t, engine))
			bg := context.Background()
			admin, _, err := s.app.auth.CreateAPIKey(bg, "ops", hearth.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			analyst, _, err := s.app.auth.CreateAPIKey(bg, "dashboards", hearth.RoleAnalyst)
			if err != nil {
				t.Fatal(err)
			}
			head := caughtUpHead(t, s)
			if err := s.app.db.SetEventAside(bg, profile.Consumer, head, head+1, "profile: store events 7 to 7: a fault"); err != nil {
				t.Fatal(err)
			}
			var p httpapi.Processing
			if code := s.call(t, analyst, "GET", "/api/v1/system/processing", nil, &p); code != http.StatusOK {
				t.Fatalf("GET /api/v1/system/processing: %d", code)
			}
			if people, segments := partNamed(t, p, "people"), partNamed(t, p, "segments"); people.SetAside != 1 || segments.SetAside != 0 {
				t.Errorf("set aside: people %d, segments %d; want 1 and 0", people.SetAside, segments.SetAside)
			}
			if code := s.call(t, analyst, "GET", "/api/v1/system/set-aside", nil, nil); code != http.StatusForbidden {
				t.Errorf("an analyst listing what was set aside: %d, want 403", code)
			}
			var list struct{ Items []httpapi.SetAsideEvent }
			if code := s.call(t, admin, "GET", "/api/v1/system/set-aside", nil, &list); code != http.StatusOK {
				t.Fatalf("GET /api/v1/system/set-aside: %d", code)
			}
			if len(list.Items) != 1 {
				t.Fatalf("set aside: %+v", list.Items)
			}
			if e := list.Items[0]; e.Part != "people" || e.Consumer != profile.Consumer || e.Seq != head+1 || e.Reason != "profile: store events 7 to 7: a fault" || e.SetAsideAt.IsZero() {
				t.Errorf("set aside: %+v", e)
			}
		})
	}
}

// caughtUpHead waits for the profile processor to have read the whole log, and returns the log's head: "up to
// date" on screen allows a few events still to read.
func caughtUpHead(t *testing.T, s *started) int64 {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		head, err := s.app.db.LogHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if read, err := s.app.db.ConsumerOffset(ctx, profile.Consumer); err == nil && read >= head {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("the processor has not read the log to its head %d in a minute", head)
		}
	}
}
