package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/profile"
)

// An admin unmerges through the API; the running processor carries it out.
func TestUnmergeAPI(t *testing.T) {
	s := startApp(t, e2eConfig(t, "sqlite"))
	ctx := context.Background()
	admin, _, err := s.app.auth.CreateAPIKey(ctx, "admin", hearth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	marketer, _, err := s.app.auth.CreateAPIKey(ctx, "marketer", hearth.RoleMarketer)
	if err != nil {
		t.Fatal(err)
	}
	// Two people joined by a shared email.
	at := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	var evs []collect.Event
	for i, p := range []string{
		`{"type":"identify","anonymousId":"a1","userId":"u1"}`,
		`{"type":"identify","anonymousId":"b1","traits":{"email":"family@example.com"}}`,
		`{"type":"identify","userId":"u1","traits":{"email":"family@example.com"}}`,
	} {
		evs = append(evs, collect.Event{MessageID: fmt.Sprint("m", i), Type: "identify", Timestamp: at.Add(time.Duration(i) * time.Minute), ReceivedAt: at, Payload: []byte(p)})
	}
	if _, err := s.app.events.Append(ctx, &collect.Batch{SourceID: "web", ReceivedAt: at, Events: evs}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID     string
		Merges []struct{ From string }
	}
	for deadline := time.Now().Add(20 * time.Second); len(got.Merges) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the processor did not merge the two profiles")
		}
		s.call(t, marketer, "GET", "/api/v1/profiles/lookup?type=user_id&value=u1", nil, &got)
	}
	from := got.Merges[0].From
	path := "/api/v1/profiles/" + got.ID + "/unmerge"

	if st := s.call(t, marketer, "POST", path, map[string]string{"from": from}, nil); st != http.StatusForbidden {
		t.Errorf("a marketer's unmerge: %d, want 403", st)
	}
	if st := s.call(t, admin, "POST", path, map[string]string{"from": "p-nobody"}, nil); st != http.StatusNotFound {
		t.Errorf("an unmerge of a merge the profile does not hold: %d, want 404", st)
	}
	if st := s.call(t, admin, "POST", path, map[string]string{}, nil); st != http.StatusBadRequest {
		t.Errorf("an unmerge without from: %d, want 400", st)
	}
	var u struct {
		ID       int64
		Status   string
		Profiles []string
		Merge    struct {
			From string
			Via  struct{ Type, Value string }
		}
	}
	if st := s.call(t, admin, "POST", path, map[string]string{"from": from}, &u); st != http.StatusOK {
		t.Fatalf("unmerge: %d", st)
	}
	if u.Status != "done" || len(u.Profiles) != 2 || u.Merge.From != from || u.Merge.Via.Type != "email" {
		t.Errorf("unmerge answered %+v", u)
	}
	var again struct{ Status string }
	if st := s.call(t, marketer, "GET", fmt.Sprint("/api/v1/unmerges/", u.ID), nil, &again); st != http.StatusOK || again.Status != "done" {
		t.Errorf("GET the unmerge: %d %+v", st, again)
	}
	var split profile.Profile
	var body json.RawMessage
	s.call(t, marketer, "GET", "/api/v1/profiles/lookup?type=email&value=family@example.com", nil, &body)
	json.Unmarshal(body, &split)
	if split.ID != from {
		t.Errorf("after the unmerge the email lives in %s, want %s", split.ID, from)
	}
}
