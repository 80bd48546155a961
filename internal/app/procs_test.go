package app

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// serve runs two Go processors a core unless GOMAXPROCS says otherwise.
func TestServeProcessors(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set for the tests: the default cannot be seen")
	}
	data := t.TempDir()
	code, key, stderr := runMain(t, fakeEnv{}, "apikey", "create", "--name", "metrics", "--data", data)
	if code != 0 {
		t.Fatalf("apikey create: %d %s", code, stderr)
	}
	key = strings.TrimSpace(key)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	for _, c := range []struct {
		env  string
		want int
	}{{"", 2 * runtime.GOMAXPROCS(0)}, {"GOMAXPROCS=3", 3}} {
		addr := freeAddr(t)
		srv := exec.Command(os.Args[0])
		srv.Env = append(slices.Clone(env), serveEnv+"=serve --log-level warn --data "+data+" --addr "+addr)
		if c.env != "" {
			srv.Env = append(srv.Env, c.env)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		waitHealthy(t, "http://"+addr, srv)
		got := gomaxprocs(t, "http://"+addr, key)
		srv.Process.Kill()
		srv.Wait()
		if got != c.want {
			t.Errorf("with %q: GOMAXPROCS %d, want %d", c.env, got, c.want)
		}
	}
}

// gomaxprocs reads the Go processors a server runs from its metrics.
func gomaxprocs(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no go_sched_gomaxprocs_threads in %s/metrics (status %d)", base, resp.StatusCode)
	return 0
}
