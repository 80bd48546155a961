package store_test

import (
	"testing"

	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, e := range storetest.Engines() {
		t.Run(e.Name, func(t *testing.T) { storetest.Run(t, e.Open) })
	}
}

// Both engines must have the same migrations, by number and name, so that a schema change is never made for
// one engine only.
func TestMigrationsMatch(t *testing.T) {
	lite, err := store.Migrations(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := store.Migrations(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].Version != pg[i].Version || lite[i].Name != pg[i].Name {
			t.Errorf("migration %d: sqlite %04d_%s, postgres %04d_%s", i+1, lite[i].Version, lite[i].Name, pg[i].Version, pg[i].Name)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := store.RedactURL("postgres://hearth:s3cret@db.internal:5432/hearth?sslmode=require")
	if want := "postgres://hearth:xxxxx@db.internal:5432/hearth?sslmode=require"; got != want {
		t.Errorf("RedactURL = %q, want %q", got, want)
	}
}
