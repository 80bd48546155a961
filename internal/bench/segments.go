package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// SegmentsOptions describe a run of the segment benchmarks on a store with people in it (hearth demo).
type SegmentsOptions struct {
	URL      string // the server
	APIKey   string // an admin or marketer API key
	WriteKey string // a source's write key, for the ingestion load and the probes
	// Rule is the rule evaluated in full and counted; empty: a city trait, orders in the last 90 days, and
	// a touch of the most touched touchpoint.
	Rule   json.RawMessage
	Counts int // live counts to time
	// The latency run: ingestion at Rate events/s for Duration, with Probes probe events a second, each
	// from a new person whose event puts them in a probe segment.
	Rate     float64
	Duration time.Duration
	Probes   float64
}

// SegmentsReport is what a run measured.
type SegmentsReport struct {
	Options    SegmentsOptions
	Rule       string
	Profiles   int64         // how many there are, for the report
	Size       int64         // of the rule
	Evaluation time.Duration // create to evaluated, as the client saw it
	Counts     []time.Duration
	// Probe latency: from the probe's acknowledgement to the membership's recorded time.
	Latencies []time.Duration
	Missing   int // probes not in the segment at the end
	Ingest    IngestReport
}

func (r SegmentsReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule:        %s\n", r.Rule)
	fmt.Fprintf(&b, "evaluation:  %d of %d profiles, created and evaluated in %s\n", r.Size, r.Profiles, ms(r.Evaluation))
	if len(r.Counts) > 0 {
		c := slices.Sorted(slices.Values(r.Counts))
		fmt.Fprintf(&b, "live count:  %d counts: p50 %s  p90 %s  max %s\n", len(c), ms(quantile(c, 0.5)), ms(quantile(c, 0.9)), ms(c[len(c)-1]))
	}
	if len(r.Latencies) > 0 || r.Missing > 0 {
		l := slices.Sorted(slices.Values(r.Latencies))
		fmt.Fprintf(&b, "membership:  %d probes during %.0f events/s offered: event to membership p50 %s  p99 %s  max %s; %d missing\n",
			len(l), r.Options.Rate, ms(quantile(l, 0.5)), ms(quantile(l, 0.99)), ms(last(l)), r.Missing)
		fmt.Fprintf(&b, "ingestion:   %d events accepted, %.0f events/s; request p50 %s  p99 %s\n",
			r.Ingest.Accepted, r.Ingest.EventsPerSecond(), ms(r.Ingest.P50), ms(r.Ingest.P99))
	}
	return b.String()
}

func last(s []time.Duration) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// admin calls the admin API and decodes the answer into out.
func admin(ctx context.Context, base, key, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("bench: %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

type segmentJSON struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	Status string `json:"status"`
}

// createSegment creates a segment and waits until it is evaluated.
func createSegment(ctx context.Context, o SegmentsOptions, name string, rule json.RawMessage) (segmentJSON, time.Duration, error) {
	start := time.Now()
	var s segmentJSON
	if err := admin(ctx, o.URL, o.APIKey, "POST", "/api/v1/segments", map[string]any{"name": name, "rule": rule}, &s); err != nil {
		return s, 0, err
	}
	for s.Status != "ready" {
		time.Sleep(20 * time.Millisecond)
		if err := admin(ctx, o.URL, o.APIKey, "GET", "/api/v1/segments/"+s.ID, nil, &s); err != nil {
			return s, 0, err
		}
	}
	return s, time.Since(start), nil
}

// Segments measures, on a running server: a full evaluation of a rule, live counts of it, and the time from
// an event to the membership it brings while ingestion runs.
func Segments(ctx context.Context, o SegmentsOptions, progress io.Writer) (SegmentsReport, error) {
	r := SegmentsReport{Options: o}
	if o.APIKey == "" {
		return r, errors.New("bench: need an API key")
	}
	rule := o.Rule
	if len(rule) == 0 {
		type touchpoint struct {
			ID    string `json:"id"`
			Stats struct {
				Touches int64 `json:"touches"`
			} `json:"stats"`
		}
		var tps struct {
			Items []touchpoint `json:"items"`
		}
		if err := admin(ctx, o.URL, o.APIKey, "GET", "/api/v1/touchpoints", nil, &tps); err != nil {
			return r, err
		}
		if len(tps.Items) == 0 {
			return r, errors.New("bench: the store has no touchpoint: fill it with hearth demo first")
		}
		top := slices.MaxFunc(tps.Items, func(a, b touchpoint) int { return int(a.Stats.Touches - b.Stats.Touches) })
		rule = json.RawMessage(fmt.Sprintf(`{"and": [{"trait": {"name": "city", "op": "equals", "value": "上海"}}, `+
			`{"event": {"name": "Order Completed", "count": {"op": "at_least", "value": 1}, "within_last_days": 90}}, `+
			`{"touched": {"touchpoint_id": %q}}]}`, top.ID))
	}
	r.Rule = string(rule)
	var everyone struct {
		Size int64 `json:"size"`
	}
	if err := admin(ctx, o.URL, o.APIKey, "POST", "/api/v1/segments/count", map[string]any{"rule": json.RawMessage(`{"stage": {"op": "at_least", "value": "anonymous"}}`)}, &everyone); err != nil {
		return r, err
	}
	r.Profiles = everyone.Size
	fmt.Fprintf(progress, "bench segments: %d profiles; evaluating %s\n", r.Profiles, rule)
	// The run's segments are deleted at its end: the engine keeps every segment current, so segments left by
	// earlier runs would slow the next one's memberships.
	var created []string
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, id := range created {
			if err := admin(cleanup, o.URL, o.APIKey, "DELETE", "/api/v1/segments/"+id, nil, nil); err != nil {
				fmt.Fprintf(progress, "bench segments: %v\n", err)
			}
		}
	}()
	seg, took, err := createSegment(ctx, o, benchSegmentName("full"), rule)
	if seg.ID != "" {
		created = append(created, seg.ID)
	}
	if err != nil {
		return r, err
	}
	r.Size, r.Evaluation = seg.Size, took
	for range o.Counts {
		start := time.Now()
		if err := admin(ctx, o.URL, o.APIKey, "POST", "/api/v1/segments/count", map[string]any{"rule": rule}, nil); err != nil {
			return r, err
		}
		r.Counts = append(r.Counts, time.Since(start))
	}
	if o.Duration <= 0 || o.WriteKey == "" {
		return r, nil
	}
	probe := "Segment Probe " + time.Now().UTC().Format("150405.000")
	pseg, _, err := createSegment(ctx, o, benchSegmentName("probe"), json.RawMessage(fmt.Sprintf(`{"event": {"name": %q}}`, probe)))
	if pseg.ID != "" {
		created = append(created, pseg.ID)
	}
	if err != nil {
		return r, err
	}
	fmt.Fprintf(progress, "bench segments: %.0f events/s for %s with %.0f probes/s\n", o.Rate, o.Duration, o.Probes)
	var mu sync.Mutex
	acked := map[string]time.Time{} // probe anonymous id to its acknowledgement
	probeCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / max(o.Probes, 0.1)))
		defer t.Stop()
		client := newClient(4)
		for i := 0; ; i++ {
			select {
			case <-probeCtx.Done():
				return
			case <-t.C:
			}
			anon := fmt.Sprintf("probe-%d-%d", time.Now().UnixNano(), i)
			body, _ := json.Marshal(map[string]any{"type": "track", "event": probe, "anonymousId": anon})
			if accepted, _ := send(probeCtx, client, o.URL+"/v1/track", o.WriteKey, body); accepted == 1 {
				mu.Lock()
				acked[anon] = time.Now()
				mu.Unlock()
			}
		}
	}()
	ing, err := Ingest(ctx, IngestOptions{URL: o.URL, WriteKey: o.WriteKey, Duration: o.Duration, Concurrency: 16, Batch: 100, Rate: o.Rate}, io.Discard)
	stop()
	wg.Wait()
	if err != nil {
		return r, err
	}
	r.Ingest = ing
	// Let the last probes through, then read each one's membership time from its person's history.
	deadline := time.Now().Add(30 * time.Second)
	for anon, at := range acked {
		for {
			joined, err := probeJoined(ctx, o, anon, pseg.ID)
			if err != nil {
				return r, err
			}
			if !joined.IsZero() {
				r.Latencies = append(r.Latencies, max(0, joined.Sub(at)))
				break
			}
			if time.Now().After(deadline) {
				r.Missing++
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return r, nil
}

// probeJoined returns when the person with an anonymous id entered a segment, or zero.
func probeJoined(ctx context.Context, o SegmentsOptions, anon, segmentID string) (time.Time, error) {
	var p struct {
		ID string `json:"id"`
	}
	err := admin(ctx, o.URL, o.APIKey, "GET", "/api/v1/profiles/lookup?type=anonymous_id&value="+url.QueryEscape(anon), nil, &p)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	var segs struct {
		Changes []struct {
			SegmentID string    `json:"segment_id"`
			Entered   bool      `json:"entered"`
			At        time.Time `json:"at"`
		} `json:"changes"`
	}
	if err := admin(ctx, o.URL, o.APIKey, "GET", "/api/v1/profiles/"+p.ID+"/segments", nil, &segs); err != nil {
		return time.Time{}, err
	}
	for _, c := range segs.Changes {
		if c.SegmentID == segmentID && c.Entered {
			return c.At, nil
		}
	}
	return time.Time{}, nil
}

func benchSegmentName(kind string) string {
	return "bench " + kind + " " + time.Now().UTC().Format("2006-01-02 15:04:05.000")
}
