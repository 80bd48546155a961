package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/collect"
	"github.com/hearth-cdp/hearth/internal/demo"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	env := fakeEnv{"HEARTH_DATA": dir}
	code, _, stderr := runMain(t, env, "demo", "--people", "200", "--days", "30")
	if code != 0 {
		t.Fatalf("exit code %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "200 people") || !strings.Contains(stderr, "events/s") {
		t.Errorf("no summary:\n%s", stderr)
	}

	data, err := os.ReadFile(filepath.Join(dir, "demo-truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth demo.TruthFile
	if err := json.Unmarshal(data, &truth); err != nil {
		t.Fatalf("truth file: %v", err)
	}
	if len(truth.People) != 200 || truth.Days != 30 {
		t.Errorf("truth file: %d people over %d days", len(truth.People), truth.Days)
	}
	wantEvents := 0
	for _, p := range truth.People {
		wantEvents += p.Events
	}

	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sources, err := db.ListSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[collect.SourceKind]bool{}
	for _, s := range sources {
		kinds[s.Kind] = true
	}
	for _, k := range []collect.SourceKind{collect.KindWebsite, collect.KindApp, collect.KindWeChat, collect.KindOffline, collect.KindTouch} {
		if !kinds[k] {
			t.Errorf("no %s source", k)
		}
	}
	tps, err := db.ListTouchpoints(ctx, touchpoint.TouchpointFilter{})
	if err != nil {
		t.Fatal(err)
	}
	channels := map[touchpoint.Channel]int{}
	for _, tp := range tps {
		channels[tp.Channel]++
		if tp.Channel == touchpoint.ChannelPoster && tp.Location == "" || tp.Channel == touchpoint.ChannelCard && tp.Owner == "" {
			t.Errorf("touchpoint %q lacks its store or owner", tp.Name)
		}
	}
	for _, c := range []touchpoint.Channel{touchpoint.ChannelPoster, touchpoint.ChannelCard, touchpoint.ChannelPack, touchpoint.ChannelAd, touchpoint.ChannelWeChatQR} {
		if channels[c] == 0 {
			t.Errorf("no %s touchpoint", c)
		}
	}

	// Every event is in the log, and every touch carries a token the touchpoint service accepts.
	master, _, err := touchpoint.LoadMasterKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc := touchpoint.NewService(db, master, hearth.SystemClock{}, touchpoint.Options{})
	if err := svc.LoadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	var events, touches int
	for after := int64(0); ; {
		evs, err := db.ReadEvents(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			after = ev.Seq
			events++
			if ev.Name != collect.TouchEventName {
				continue
			}
			touches++
			var body struct {
				Properties struct {
					Token        string `json:"token"`
					TouchpointID string `json:"touchpoint_id"`
				} `json:"properties"`
			}
			json.Unmarshal(ev.Payload, &body)
			res, err := svc.Resolve(ctx, body.Properties.Token, ev.Timestamp)
			if err != nil {
				t.Fatal(err)
			}
			if res.Refused != "" || res.Touchpoint.ID != body.Properties.TouchpointID {
				t.Errorf("touch token refused (%s) or of another touchpoint: %s", res.Refused, ev.Payload)
			}
		}
	}
	if events != wantEvents || touches < 200 {
		t.Errorf("%d events (%d touches) in the log, want %d", events, touches, wantEvents)
	}

	// The WeChat account's fields are mapped, and a name given elsewhere wins over a nickname.
	configs := profile.NewConfigs(db)
	cfg, err := configs.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wechat string
	for _, s := range sources {
		if s.Kind == collect.KindWeChat {
			wechat = s.ID
		}
	}
	if len(cfg.Mappings) != 1 || cfg.Mappings[0].SourceID != wechat || len(cfg.Mappings[0].Fields) != 3 ||
		cfg.Mappings[0].Fields[1].Values["2"] != "female" || len(cfg.Traits) != 1 || cfg.Traits[0].Sources[3] != wechat {
		t.Errorf("the demo's profile settings: %+v", cfg.Settings)
	}

	// A store that holds events is refused, unless --force; settings an admin made stay.
	if code, _, stderr := runMain(t, env, "demo", "--people", "10"); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("second run: exit code %d\n%s", code, stderr)
	}
	if _, err := configs.Put(ctx, []byte(`{"lifecycle":{"conversion_events":["Paid"]}}`), "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runMain(t, env, "demo", "--people", "10", "--seed", "2", "--force", "--truth", filepath.Join(dir, "more.json")); code != 0 {
		t.Errorf("forced run: exit code %d\n%s", code, stderr)
	}
	if cfg, err := configs.Get(ctx); err != nil || len(cfg.Mappings) != 0 || cfg.Lifecycle.ConversionEvents[0] != "Paid" {
		t.Errorf("the forced run changed the admin's settings: %+v, %v", cfg.Settings, err)
	}
}
