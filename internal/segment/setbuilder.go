package segment

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// denseFrom is how many numbers a SetBuilder holds in a list before it sets bits in words instead.
const denseFrom = 4096

// SetBuilder collects profile numbers, in any order and repeated, into a Set. A query's rows come in its
// index's order, not the numbers': adding each to a Set searches its containers and shifts their arrays,
// where setting a bit in a plain bitmap of words costs next to nothing, and the Set is made from the words
// at once. Below denseFrom numbers a sorted list costs less than the words.
type SetBuilder struct {
	few   []uint64
	words []uint64 // bit n of the numbers below 2^32, once more than denseFrom came
	large []uint64 // numbers from 2^32 on, which profile ids reach only in stores of billions of events
}

// Add adds a profile number.
func (b *SetBuilder) Add(n uint64) {
	switch {
	case n >= 1<<32:
		b.large = append(b.large, n)
	case b.words != nil:
		b.set(n)
	default:
		b.few = append(b.few, n)
		if len(b.few) > denseFrom {
			for _, m := range b.few {
				b.set(m)
			}
			b.few = nil
		}
	}
}

func (b *SetBuilder) set(n uint64) {
	w := int(n >> 6)
	if w >= len(b.words) {
		b.words = append(b.words, make([]uint64, max(w+1, 2*len(b.words))-len(b.words))...)
	}
	b.words[w] |= 1 << (n & 63)
}

// Set returns the set of the numbers added.
func (b *SetBuilder) Set() *Set {
	s := roaring64.New()
	if b.words != nil {
		s = roaring64.Roaring32AsRoaring64(roaring.FromDense(b.words, false))
	}
	for _, list := range [][]uint64{b.few, b.large} {
		slices.Sort(list)
		s.AddMany(slices.Compact(list))
	}
	return s
}
