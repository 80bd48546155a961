package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TouchOptions describe a load of people following a touch link.
type TouchOptions struct {
	URL         string // the server, for its /metrics
	Link        string // the touch link, such as http://127.0.0.1:8080/t/TOKEN
	Duration    time.Duration
	Concurrency int
	Rate        float64 // requests per second to offer; 0 sends as fast as the server answers
}

// TouchReport is what a touch run measured.
type TouchReport struct {
	Options TouchOptions
	load
	server
}

func (r TouchReport) String() string {
	var b strings.Builder
	offered := "as fast as answered"
	if r.Options.Rate > 0 {
		offered = fmt.Sprintf("%.0f requests/s offered", r.Options.Rate)
	}
	fmt.Fprintf(&b, "load:      GET %s, %d in flight, %s, %s\n", r.Options.Link, r.Options.Concurrency, offered, r.Options.Duration)
	fmt.Fprintf(&b, "redirects: %d in %.1fs = %.0f/s, each touch durably recorded first\n", r.Accepted, r.Elapsed.Seconds(), float64(r.Accepted)/r.Elapsed.Seconds())
	r.load.write(&b)
	r.server.write(&b)
	return b.String()
}

// phoneUserAgent is what a scan from WeChat on a phone sends: a person, not a bot.
const phoneUserAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40"

// Touch follows a touch link over and over, as phones scanning a code would (each a new visitor, without a
// cookie), and counts the redirects.
func Touch(ctx context.Context, opts TouchOptions, progress io.Writer) (TouchReport, error) {
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.Link == "" {
		return TouchReport{}, errors.New("bench: need a touch link, a duration, and at least 1 in flight")
	}
	client := newClient(opts.Concurrency)
	report := TouchReport{Options: opts}
	stop := sampleServer(ctx, client, opts.URL, &report.server)
	report.load = drive(ctx, opts.Concurrency, opts.Duration, opts.Rate, "redirects", progress, func(ctx context.Context) (int, string) {
		req, err := http.NewRequestWithContext(ctx, "GET", opts.Link, nil)
		if err != nil {
			return 0, "request"
		}
		req.Header.Set("User-Agent", phoneUserAgent)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "network"
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == "" {
			return 0, strconv.Itoa(resp.StatusCode)
		}
		return 1, ""
	})
	stop()
	return report, nil
}
