package storetest

import (
	"testing"

	"github.com/hearth-cdp/hearth/internal/store"
)

func testSettings(t *testing.T, db *store.DB, clock *Clock) {
	got, err := db.Setting(ctx, "profiles")
	must(t, err)
	if got != nil {
		t.Errorf("a setting never set = %s, want nil", got)
	}
	must(t, db.PutSetting(ctx, "profiles", []byte(`{"a":1}`), "admin@example.com"))
	must(t, db.PutSetting(ctx, "profiles", []byte(`{"a":2}`), "admin@example.com"))
	must(t, db.PutSetting(ctx, "other", []byte(`[]`), "admin@example.com"))
	if got, err = db.Setting(ctx, "profiles"); err != nil || string(got) != `{"a":2}` {
		t.Errorf("Setting = %s, %v; want the last put", got, err)
	}
}
