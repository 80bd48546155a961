package store

import (
	"sync"
	"sync/atomic"
)

// slotTable holds Go values for C memory, which may not point into the Go heap: the C side keeps a value's
// slot number. The table is copied on each change (a connection's cache or file opening or closing), so that
// a lookup, on every call SQLite makes, takes no lock.
type slotTable[T any] struct {
	mu   sync.Mutex
	live atomic.Pointer[[]*T]
	free []uint32
}

func (s *slotTable[T]) get(slot uint32) *T { return (*s.live.Load())[slot] }

func (s *slotTable[T]) add(v *T) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var live []*T
	if p := s.live.Load(); p != nil {
		live = append(live, *p...)
	}
	var slot uint32
	if n := len(s.free); n > 0 {
		slot, s.free = s.free[n-1], s.free[:n-1]
		live[slot] = v
	} else {
		slot = uint32(len(live))
		live = append(live, v)
	}
	s.live.Store(&live)
	return slot
}

func (s *slotTable[T]) remove(slot uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := append([]*T(nil), *s.live.Load()...)
	live[slot] = nil
	s.live.Store(&live)
	s.free = append(s.free, slot)
}

// each calls fn with every value held.
func (s *slotTable[T]) each(fn func(*T)) {
	if p := s.live.Load(); p != nil {
		for _, v := range *p {
			if v != nil {
				fn(v)
			}
		}
	}
}
