package app

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/httpapi"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

// processingParts are the work that follows the event log, as the console names it, each with the log
// consumers it is made of: a part is as far behind as the furthest of them.
var processingParts = []struct {
	name      string
	consumers []string
}{
	{"people", []string{profile.Consumer}},
	{"segments", []string{segment.Consumer}},
	{"touch_counts", []string{touchpoint.StatsConsumer, touchpoint.HoursConsumer}},
}

const (
	// processingEvery is how often the log's head and its consumers' offsets are sampled.
	processingEvery = 2 * time.Second
	// processingWindow is how far back rates are measured: long enough to smooth the processor's batches
	// and rests, short enough to follow a change of pace.
	processingWindow = 30 * time.Second
	// A part is catching up when it has at least catchUpEvents to read and, at its pace, at least
	// catchUpWork of work left: live traffic keeps every part a little behind, which is nothing to tell.
	catchUpEvents = 1000
	catchUpWork   = 5 * time.Second
)

// processing follows how far the work that follows the event log (profiles, segment memberships, touch
// counts) is behind it, how fast it reads and when it will be done: what a marketer needs to know when
// the people and counts on screen are not complete yet, after a start on a large backlog, an import, or a
// burst of traffic. Samples are kept in memory: each node measures for itself, from the offsets in the store.
type processing struct {
	log   offsetReader
	clock hearth.Clock

	mu      sync.Mutex
	samples []processingSample // oldest first, within processingWindow of the newest
	peak    map[string]int64   // per part catching up: the most it was behind since it began
}

type processingSample struct {
	at      time.Time
	head    int64
	offsets map[string]int64 // per consumer
}

func newProcessing(log offsetReader, clock hearth.Clock) *processing {
	return &processing{log: log, clock: clock, peak: map[string]int64{}}
}

// sample reads the log's head and every consumer's offset.
func (p *processing) sample(ctx context.Context) error {
	head, err := p.log.LogHead(ctx)
	if err != nil {
		return err
	}
	s := processingSample{at: p.clock.Now(), head: head, offsets: map[string]int64{}}
	for _, part := range processingParts {
		for _, c := range part.consumers {
			off, err := p.log.ConsumerOffset(ctx, c)
			if err != nil {
				return err
			}
			s.offsets[c] = off
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, s)
	i := 0
	for i < len(p.samples)-1 && s.at.Sub(p.samples[i].at) > processingWindow {
		i++
	}
	p.samples = p.samples[i:]
	return nil
}

// Processing tells where each part stands now, with the rates of the samples taken over the last window.
func (p *processing) Processing(ctx context.Context) (httpapi.Processing, error) {
	if err := p.sample(ctx); err != nil { // a few reads of small tables: the console asks every few seconds at most
		return httpapi.Processing{}, err
	}
	aside := make([]int64, len(processingParts))
	for i, part := range processingParts {
		for _, c := range part.consumers {
			n, _, err := p.log.SetAsideEvents(ctx, c, 0)
			if err != nil {
				return httpapi.Processing{}, err
			}
			aside[i] += n
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	first, last := p.samples[0], p.samples[len(p.samples)-1]
	span := last.at.Sub(first.at).Seconds()
	out := httpapi.Processing{Head: last.head, MeasuredAt: last.at, Parts: make([]httpapi.ProcessingPart, 0, len(processingParts))}
	for _, part := range processingParts {
		at, then := last.offsets[part.consumers[0]], first.offsets[part.consumers[0]]
		for _, c := range part.consumers[1:] {
			at, then = min(at, last.offsets[c]), min(then, first.offsets[c])
		}
		r := httpapi.ProcessingPart{Name: part.name, Behind: max(0, last.head-at), State: httpapi.UpToDate}
		measured := span >= 2*processingEvery.Seconds() // two intervals at least: a rate from one batch says little
		if measured {
			r.Rate = round1(float64(at-then) / span)
			r.Incoming = round1(float64(last.head-first.head) / span)
		}
		switch {
		case r.Behind < catchUpEvents:
		case measured && at == then && span >= processingWindow.Seconds()-processingEvery.Seconds():
			r.State = httpapi.Stalled
		case !measured || float64(r.Behind) >= r.Rate*catchUpWork.Seconds():
			r.State = httpapi.CatchingUp
		}
		if r.State == httpapi.UpToDate {
			delete(p.peak, part.name)
		} else {
			p.peak[part.name] = max(p.peak[part.name], r.Behind)
			done := 1 - float64(r.Behind)/float64(p.peak[part.name])
			r.Progress = &done
			if measured && r.Rate > r.Incoming {
				eta := int64(math.Ceil(float64(r.Behind) / (r.Rate - r.Incoming)))
				r.ETASeconds = &eta
			}
		}
		out.Parts = append(out.Parts, r)
	}
	for i := range out.Parts {
		out.Parts[i].SetAside = aside[i]
	}
	return out, nil
}

// setAsideShown is how many of each consumer's set-aside events the admin API lists, the latest first.
const setAsideShown = 100

// SetAside lists the latest events each part set aside.
func (p *processing) SetAside(ctx context.Context) ([]httpapi.SetAsideEvent, error) {
	var out []httpapi.SetAsideEvent
	for _, part := range processingParts {
		for _, c := range part.consumers {
			_, events, err := p.log.SetAsideEvents(ctx, c, setAsideShown)
			if err != nil {
				return nil, err
			}
			for _, e := range events {
				out = append(out, httpapi.SetAsideEvent{Part: part.name, Consumer: c, Seq: e.Seq, Reason: e.Reason, SetAsideAt: e.At})
			}
		}
	}
	return out, nil
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
