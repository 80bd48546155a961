package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

// serveEnv makes the test binary run "hearth serve" instead of the tests: the durability test starts it as a
// real process, so that it can kill it.
const serveEnv = "HEARTH_TEST_RUN_SERVE"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveEnv); args != "" {
		os.Exit(Main(context.Background(), strings.Fields(args), os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// Killing the server with SIGKILL at any moment under load loses no acknowledged event, and stores none
// twice: twice over, with a restart between, on each engine.
func TestKillLosesNoAcknowledgedEvent(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			data := t.TempDir()
			opts := store.Options{Dir: data}
			args := "serve --data " + data + " --log-level warn"
			if engine == "postgres" {
				opts.URL = storetest.PostgresURL(t)
				args += " --db " + opts.URL
			}
			writeKey := createSourceIn(t, opts)

			acked := map[string]bool{}
			for round := 0; round < 2; round++ {
				addr := freeAddr(t)
				srv := exec.Command(os.Args[0])
				srv.Env = append(os.Environ(), serveEnv+"="+args+" --addr "+addr)
				var logs bytes.Buffer
				srv.Stdout, srv.Stderr = &logs, &logs
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				waitHealthy(t, "http://"+addr, srv)
				ids := loadUntilKilled(t, "http://"+addr, writeKey, srv, fmt.Sprintf("r%d", round))
				for _, id := range ids {
					acked[id] = true
				}
				if len(ids) == 0 {
					t.Fatalf("round %d: no batch was acknowledged before the kill; server log:\n%s", round, logs.String())
				}
			}

			db, err := store.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			stored := map[string]int{}
			for after := int64(0); ; {
				evs, err := db.ReadEvents(context.Background(), after, 5000)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) == 0 {
					break
				}
				for _, e := range evs {
					stored[e.MessageID]++
				}
				after = evs[len(evs)-1].Seq
			}
			lost, twice := 0, 0
			for id := range acked {
				if stored[id] == 0 {
					lost++
				}
			}
			for _, n := range stored {
				if n > 1 {
					twice++
				}
			}
			t.Logf("%d events acknowledged, %d stored (the rest were in flight at the kills)", len(acked), len(stored))
			if lost > 0 || twice > 0 {
				t.Errorf("%d acknowledged events lost, %d stored more than once", lost, twice)
			}
		})
	}
}

func createSourceIn(t *testing.T, opts store.Options) string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	src, err := collect.NewSources(db, hearth.SystemClock{}).Create(ctx, "Load", collect.KindServer)
	if err != nil {
		t.Fatal(err)
	}
	return src.WriteKey
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, base string, srv *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.Process.Kill()
	t.Fatal("the server did not become healthy")
}

// loadUntilKilled sends batches from several clients, kills the server with SIGKILL while they are in
// flight, and returns the message ids of every batch the server acknowledged in full.
func loadUntilKilled(t *testing.T, base, writeKey string, srv *exec.Cmd, prefix string) []string {
	const clients, perBatch = 8, 50
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				ids := make([]string, perBatch)
				var body bytes.Buffer
				body.WriteString(`{"batch":[`)
				for i := range ids {
					ids[i] = fmt.Sprintf("%s-c%d-b%d-e%d", prefix, c, b, i)
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"type":"track","userId":"u%d","event":"Load","messageId":%q,"properties":{"n":%d}}`, c, ids[i], i)
				}
				body.WriteString(`]}`)
				req, _ := http.NewRequest("POST", base+"/v1/batch", &body)
				req.SetBasicAuth(writeKey, "")
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var r struct{ Accepted, Duplicates int }
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && r.Accepted+r.Duplicates == perBatch {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	close(stop)
	wg.Wait()
	return acked
}
