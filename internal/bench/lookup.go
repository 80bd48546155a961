package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth/internal/demo"
)

// LookupOptions describe a load of 360° profile reads: each operation looks a profile up by one of its
// identifiers, then reads its latest timeline events.
type LookupOptions struct {
	URL         string // the server, such as http://127.0.0.1:8080
	APIKey      string // an API key that may read profiles
	Targets     []Target
	Events      int // timeline events read per lookup; default 50
	Duration    time.Duration
	Concurrency int
	Rate        float64 // operations per second to offer; 0 sends as fast as the server answers
	Seed        uint64  // picks the targets in the same order
	// People is how many people the targets were drawn from, for the report.
	People int
}

// Target is an identifier to look a profile up by, normalised as the API expects it.
type Target struct {
	Type  string
	Value string
}

// LookupReport is what a lookup run measured. Its latencies are of the pair, lookup then events.
type LookupReport struct {
	Options LookupOptions
	load
	server
	// The halves of the operation, for telling which one is slow.
	LookupP50, LookupP99 time.Duration
	EventsP50, EventsP99 time.Duration
}

func (r LookupReport) String() string {
	var b strings.Builder
	offered := "as fast as answered"
	if r.Options.Rate > 0 {
		offered = fmt.Sprintf("%.0f operations/s offered", r.Options.Rate)
	}
	fmt.Fprintf(&b, "load:      profile lookup + its latest %d events, %d in flight, %s, %s; %d identifiers (%s) of %d people\n",
		r.Options.Events, r.Options.Concurrency, offered, r.Options.Duration, len(r.Options.Targets), strings.Join(targetTypes(r.Options.Targets), ", "), r.Options.People)
	fmt.Fprintf(&b, "lookups:   %d in %.1fs = %.0f operations/s, each a lookup then its events\n", r.Accepted, r.Elapsed.Seconds(), float64(r.Accepted)/r.Elapsed.Seconds())
	r.load.write(&b)
	if r.Accepted > 0 {
		fmt.Fprintf(&b, "halves:    lookup p50 %s  p99 %s; events p50 %s  p99 %s\n", ms(r.LookupP50), ms(r.LookupP99), ms(r.EventsP50), ms(r.EventsP99))
	}
	r.server.write(&b)
	return b.String()
}

func targetTypes(ts []Target) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range ts {
		if !seen[t.Type] {
			seen[t.Type] = true
			out = append(out, t.Type)
		}
	}
	slices.Sort(out)
	return out
}

// Lookup runs the load and reports.
func Lookup(ctx context.Context, opts LookupOptions, progress io.Writer) (LookupReport, error) {
	if opts.Events <= 0 {
		opts.Events = 50
	}
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.APIKey == "" || len(opts.Targets) == 0 {
		return LookupReport{}, errors.New("bench: need an API key, identifiers to look up, a duration, and at least 1 in flight")
	}
	client := newClient(opts.Concurrency)
	report := LookupReport{Options: opts}
	var (
		mu             sync.Mutex
		rng            = mrand.New(mrand.NewPCG(opts.Seed, 0x6c6f6f6b7570))
		lookups, evs   []time.Duration
		eventsPath     = "/events?limit=" + strconv.Itoa(opts.Events)
		lookupEndpoint = opts.URL + "/api/v1/profiles/lookup?"
	)
	stop := sampleServer(ctx, client, opts.URL, &report.server)
	report.load = drive(ctx, opts.Concurrency, opts.Duration, opts.Rate, "lookups", progress, func(ctx context.Context) (int, string) {
		mu.Lock()
		t := opts.Targets[rng.IntN(len(opts.Targets))]
		mu.Unlock()
		t0 := time.Now()
		var p struct {
			ID string `json:"id"`
		}
		if failure := get(ctx, client, lookupEndpoint+url.Values{"type": {t.Type}, "value": {t.Value}}.Encode(), opts.APIKey, "lookup", &p); failure != "" {
			return 0, failure
		}
		if p.ID == "" {
			return 0, "lookup-bad-response"
		}
		t1 := time.Now()
		if failure := get(ctx, client, opts.URL+"/api/v1/profiles/"+url.PathEscape(p.ID)+eventsPath, opts.APIKey, "events", nil); failure != "" {
			return 0, failure
		}
		t2 := time.Now()
		mu.Lock()
		lookups, evs = append(lookups, t1.Sub(t0)), append(evs, t2.Sub(t1))
		mu.Unlock()
		return 1, ""
	})
	stop()
	slices.Sort(lookups)
	slices.Sort(evs)
	report.LookupP50, report.LookupP99 = quantile(lookups, .5), quantile(lookups, .99)
	report.EventsP50, report.EventsP99 = quantile(evs, .5), quantile(evs, .99)
	return report, nil
}

// get reads an API resource with the API key, decoding it into out when out is not nil, and returns what
// failed, named after what: "lookup-404", "events-network".
func get(ctx context.Context, client *http.Client, url, apiKey, what string, out any) string {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return what + "-request"
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := client.Do(req)
	if err != nil {
		return what + "-network"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return what + "-" + strconv.Itoa(resp.StatusCode)
	}
	if out == nil {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return what + "-network"
		}
		return ""
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return what + "-bad-response"
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is reused
	return ""
}

// LookupTypes are the identifier types a truth file gives, in the order ReadTargets reads them.
var LookupTypes = []string{"user_id", "email", "phone", "wechat_unionid", "wechat_openid", "device_id", "anonymous_id"}

// ReadTargets reads the people of a truth file written by hearth demo and returns at most max of their
// identifiers of the given types (a uniform sample, the same for the same seed), and how many people the
// file holds. It streams the file, so a million people's take little memory. A shared device's anonymous
// id is left out: it stays with one of the people who used it.
func ReadTargets(r io.Reader, types []string, max int, seed uint64) ([]Target, int, error) {
	if max < 1 {
		return nil, 0, errors.New("bench: need at least 1 identifier to look up")
	}
	want := map[string]bool{}
	for _, t := range types {
		if !slices.Contains(LookupTypes, t) {
			return nil, 0, fmt.Errorf("bench: %q is not a type the truth file gives (%s)", t, strings.Join(LookupTypes, ", "))
		}
		want[t] = true
	}
	rng := mrand.New(mrand.NewPCG(seed, 0x7472757468))
	var sample []Target
	seen := 0
	add := func(t, v string) {
		if v == "" || !want[t] {
			return
		}
		// Reservoir sampling: each identifier read so far is in the sample with the same chance.
		if len(sample) < max {
			sample = append(sample, Target{t, v})
		} else if j := rng.IntN(seen + 1); j < max {
			sample[j] = Target{t, v}
		}
		seen++
	}
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, 0, fmt.Errorf("bench: not a truth file: %w", errOr(err, "not a JSON object"))
	}
	people := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, fmt.Errorf("bench: truth file: %w", err)
		}
		if tok != "people" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, fmt.Errorf("bench: truth file: %w", err)
			}
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, 0, fmt.Errorf("bench: truth file: people: %w", errOr(err, "not an array"))
		}
		for dec.More() {
			var p demo.Truth
			if err := dec.Decode(&p); err != nil {
				return nil, 0, fmt.Errorf("bench: truth file: person %d: %w", people+1, err)
			}
			people++
			add("user_id", p.UserID)
			for _, e := range p.Emails {
				add("email", e)
			}
			for _, ph := range p.Phones {
				add("phone", ph)
			}
			add("wechat_unionid", p.WeChatUnionID)
			add("wechat_openid", p.WeChatOpenID)
			for _, d := range p.DeviceIDs {
				add("device_id", d)
			}
			for _, a := range p.AnonymousIDs {
				if !slices.Contains(p.Shared, a) {
					add("anonymous_id", a)
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, 0, fmt.Errorf("bench: truth file: %w", err)
		}
	}
	if len(sample) == 0 {
		return nil, people, fmt.Errorf("bench: the truth file's %d people have no identifier of the types %s", people, strings.Join(types, ", "))
	}
	return sample, people, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}
