package app

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hearth-cdp/hearth/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprint(stderr, "usage: hearth bench ingest --url URL (--write-key KEY | --api-key KEY) [flags]; see hearth bench ingest -h\n")
		return errUsage
	}
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
	if err := parse(fs, args[1:], func() {}); err != nil {
		return err
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	if opts.WriteKey == "" {
		if *apiKey == "" {
			fmt.Fprint(stderr, "hearth bench ingest: give --write-key, or --api-key to create a source for the run\n")
			return errUsage
		}
		key, err := createBenchSource(ctx, opts.URL, *apiKey)
		if err != nil {
			return err
		}
		opts.WriteKey = key
	}
	report, err := bench.Ingest(ctx, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, report)
	return nil
}

// createBenchSource makes a server source for a benchmark run through the admin API.
func createBenchSource(ctx context.Context, url, apiKey string) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": "bench " + time.Now().UTC().Format("2006-01-02 15:04:05.000"), "kind": "server"})
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/api/v1/sources", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: create a source: %w", err)
	}
	defer resp.Body.Close()
	var src struct {
		WriteKey string `json:"write_key"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&src) != nil {
		return "", fmt.Errorf("bench: create a source: the server answered %s", resp.Status)
	}
	return src.WriteKey, nil
}
