package httpapi

import (
	"context"
	"time"

	"github.com/hearth-cdp/hearth/internal/store"
)

// SegmentReader reads segments' members, sizes and history; *store.DB is one.
type SegmentReader interface {
	SegmentMembers(ctx context.Context, id, cursor string, limit int) (store.MemberPage, error)
	ExportMembers(ctx context.Context, id string, fn func(store.MemberExport) error) error
	SegmentSizes(ctx context.Context, id string, since time.Time) ([]store.SegmentSize, error)
	ProfileSegments(ctx context.Context, profileID string) ([]store.ProfileSegment, []store.SegmentChange, error)
}
