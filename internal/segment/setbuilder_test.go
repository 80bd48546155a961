package segment_test

import (
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/hearth-cdp/hearth/internal/profile"
	"github.com/hearth-cdp/hearth/internal/segment"
)

func TestSetBuilderMatchesSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		count int
		max   uint64
	}{
		{"none", 0, 1},
		{"few", 100, 1 << 20},
		{"just over the list", 4097, 1 << 16},
		{"many, dense", 200_000, 300_000},
		{"many, sparse", 50_000, 1 << 31},
		{"beyond 32 bits", 10_000, 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b segment.SetBuilder
			want := roaring64.New()
			for range tc.count {
				n := rng.Uint64N(tc.max)
				if rng.IntN(4) == 0 && want.GetCardinality() > 0 {
					n = want.Minimum() // again
				}
				b.Add(n)
				want.Add(n)
			}
			got := b.Set()
			if !got.Equals(want) {
				t.Fatalf("the builder's set has %d numbers, %d added (%d distinct)", got.GetCardinality(), tc.count, want.GetCardinality())
			}
			// The set is a set like any other: changing it leaves no trace of the builder.
			got.Add(tc.max + 1)
			if got.GetCardinality() != want.GetCardinality()+1 {
				t.Fatal("adding to the built set went wrong")
			}
		})
	}
}

func TestProfileNumber(t *testing.T) {
	for _, seq := range []int64{1, 255, 1 << 32, 1<<63 - 1} {
		n, err := segment.ProfileNumber(profile.ProfileID(seq))
		if err != nil || n != uint64(seq) {
			t.Errorf("ProfileNumber(%q) = %d, %v; want %d", profile.ProfileID(seq), n, err, seq)
		}
	}
	for _, id := range []string{"", "p", "q0000000000000001", "p000000000000000g", "p0000000000000001x", "p-000000000000001", "P0000000000000001"} {
		if n, err := segment.ProfileNumber(id); err == nil {
			t.Errorf("ProfileNumber(%q) = %d, want an error", id, n)
		}
	}
}

func BenchmarkSetBuilder(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	numbers := make([]uint64, 900_000)
	for i := range numbers {
		numbers[i] = rng.Uint64N(20_000_000)
	}
	b.Run("builder", func(b *testing.B) {
		for b.Loop() {
			var s segment.SetBuilder
			for _, n := range numbers {
				s.Add(n)
			}
			s.Set()
		}
	})
	b.Run("set", func(b *testing.B) {
		for b.Loop() {
			s := roaring64.New()
			for _, n := range numbers {
				s.Add(n)
			}
		}
	})
}
