package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "ingest":
			return benchIngest(ctx, args[1:], stdout, stderr)
		case "touch":
			return benchTouch(ctx, args[1:], stdout, stderr)
		case "lookup":
			return benchLookup(ctx, args[1:], stdout, stderr)
		case "segments":
			return benchSegments(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, "usage: hearth bench ingest|touch|lookup|segments --url URL --api-key KEY [flags]; see hearth bench ingest -h and so on\n")
	return errUsage
}

func benchSegments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth bench segments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.SegmentsOptions
	fs.StringVar(&opts.URL, "url", "http://127.0.0.1:8080", "the running Hearth to measure, with people in it (hearth demo)")
	fs.StringVar(&opts.APIKey, "api-key", "", "an admin API key")
	rule := fs.String("rule", "", "the rule to evaluate and count, JSON (default: a city, orders in the last 90 days, the most touched touchpoint)")
	fs.IntVar(&opts.Counts, "counts", 10, "live counts of the rule to time")
	fs.Float64Var(&opts.Rate, "rate", 5000, "events per second of ingestion during the membership latency run")
	fs.DurationVar(&opts.Duration, "duration", 30*time.Second, "how long the membership latency run lasts; 0 skips it")
	fs.Float64Var(&opts.Probes, "probes", 10, "probe events a second during the latency run")
	if err := parse(fs, args, func() {}); err != nil {
		return err
	}
	if opts.APIKey == "" {
		fmt.Fprint(stderr, "hearth bench segments: give --api-key\n")
		return errUsage
	}
	opts.URL, opts.Rule = strings.TrimSuffix(opts.URL, "/"), json.RawMessage(*rule)
	if opts.Duration > 0 {
		var src struct {
			WriteKey string `json:"write_key"`
		}
		if err := benchCreate(ctx, opts.URL, opts.APIKey, "/api/v1/sources", map[string]string{"name": benchName(), "kind": "server"}, &src); err != nil {
			return err
		}
		opts.WriteKey = src.WriteKey
	}
	report, err := bench.Segments(ctx, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	return nil
}

func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.IngestOptions
	fs.StringVar(&opts.URL, "url", "http://127.0.0.1:8080", "the running Hearth to measure")
	fs.StringVar(&opts.WriteKey, "write-key", "", "a source's write key")
	apiKey := fs.String("api-key", "", "an admin API key: creates a server source for the run when no write key is given")
	fs.DurationVar(&opts.Duration, "duration", 20*time.Second, "how long to send")
	fs.IntVar(&opts.Concurrency, "concurrency", 32, "requests in flight at once")
	fs.IntVar(&opts.Batch, "batch", 100, "events per request; 1 sends single events to /v1/track")
	fs.Float64Var(&opts.Rate, "rate", 0, "events per second to offer (open loop); 0 sends as fast as the server takes them")
	if err := parse(fs, args, func() {}); err != nil {
		return err
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	if opts.WriteKey == "" {
		if *apiKey == "" {
			fmt.Fprint(stderr, "hearth bench ingest: give --write-key, or --api-key to create a source for the run\n")
			return errUsage
		}
		var src struct {
			WriteKey string `json:"write_key"`
		}
		if err := benchCreate(ctx, opts.URL, *apiKey, "/api/v1/sources", map[string]string{"name": benchName(), "kind": "server"}, &src); err != nil {
			return err
		}
		opts.WriteKey = src.WriteKey
	}
	report, err := bench.Ingest(ctx, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	return nil
}

func benchTouch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth bench touch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.TouchOptions
	fs.StringVar(&opts.URL, "url", "http://127.0.0.1:8080", "the running Hearth to measure")
	fs.StringVar(&opts.Link, "link", "", "a touch link to follow; without it, a touchpoint is created for the run")
	apiKey := fs.String("api-key", "", "an admin or marketer API key: creates a touchpoint for the run when no link is given")
	fs.DurationVar(&opts.Duration, "duration", 20*time.Second, "how long to send")
	fs.IntVar(&opts.Concurrency, "concurrency", 64, "requests in flight at once")
	fs.Float64Var(&opts.Rate, "rate", 0, "requests per second to offer (open loop); 0 sends as fast as the server answers")
	if err := parse(fs, args, func() {}); err != nil {
		return err
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	if opts.Link == "" {
		if *apiKey == "" {
			fmt.Fprint(stderr, "hearth bench touch: give --link, or --api-key to create a touchpoint for the run\n")
			return errUsage
		}
		var tp struct{ Token string }
		if err := benchCreate(ctx, opts.URL, *apiKey, "/api/v1/touchpoints",
			map[string]string{"name": benchName(), "channel": "qr_poster", "destination_url": "https://shop.example/landing"}, &tp); err != nil {
			return err
		}
		// The link on this server, whatever public URL it prints in links.
		opts.Link = opts.URL + "/t/" + tp.Token
	}
	report, err := bench.Touch(ctx, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	return nil
}

func benchLookup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth bench lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts bench.LookupOptions
	fs.StringVar(&opts.URL, "url", "http://127.0.0.1:8080", "the running Hearth to measure")
	fs.StringVar(&opts.APIKey, "api-key", "", "an API key that may read profiles")
	truth := fs.String("truth", "", "the ground truth hearth demo wrote (DATA/demo-truth.json): the identifiers to look up")
	types := fs.String("types", strings.Join(bench.LookupTypes, ","), "the identifier types to look up by, comma-separated")
	sample := fs.Int("sample", 100000, "look up at most this many identifiers, a uniform sample of the truth file's")
	fs.Uint64Var(&opts.Seed, "seed", 1, "the same seed samples and picks the same identifiers")
	fs.IntVar(&opts.Events, "events", 50, "timeline events read after each lookup")
	fs.DurationVar(&opts.Duration, "duration", 20*time.Second, "how long to send")
	fs.IntVar(&opts.Concurrency, "concurrency", 8, "operations in flight at once")
	fs.Float64Var(&opts.Rate, "rate", 0, "operations (lookup and events) per second to offer (open loop); 0 sends as fast as the server answers")
	if err := parse(fs, args, func() {}); err != nil {
		return err
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	if opts.APIKey == "" || *truth == "" {
		fmt.Fprint(stderr, "hearth bench lookup: give --api-key and --truth (the file hearth demo wrote)\n")
		return errUsage
	}
	f, err := os.Open(*truth)
	if err != nil {
		return &hearth.Error{Kind: hearth.Invalid, Op: "app.bench_lookup", Msg: fmt.Sprintf("Cannot read the truth file %s.", *truth), Err: err}
	}
	defer f.Close()
	opts.Targets, opts.People, err = bench.ReadTargets(bufio.NewReaderSize(f, 1<<20), strings.Split(*types, ","), *sample, opts.Seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hearth bench lookup: %d identifiers of %d people, from %s\n", len(opts.Targets), opts.People, *truth)
	report, err := bench.Lookup(ctx, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	return nil
}

func benchName() string { return "bench " + time.Now().UTC().Format("2006-01-02 15:04:05.000") }

// benchCreate creates what a benchmark run needs through the admin API.
func benchCreate(ctx context.Context, url, apiKey, path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(out) != nil {
		return fmt.Errorf("bench: POST %s: the server answered %s", path, resp.Status)
	}
	return nil
}
