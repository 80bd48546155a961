package storetest

import (
	"bytes"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/store"
	"github.com/hearth-cdp/hearth/internal/touchpoint"
)

func newCodeBatch(clock *Clock, touchpointID string, count int64) touchpoint.CodeBatch {
	return touchpoint.CodeBatch{ID: hearth.NewID(), TouchpointID: touchpointID, Count: count, KeyID: 3, Format: touchpoint.QRPNG,
		Options: touchpoint.QROptions{Size: 512, Margin: 4, Level: "M"}, Status: touchpoint.BatchPending, CreatedAt: clock.Now()}
}

// createCodeBatch stores a batch and returns it as stored.
func createCodeBatch(t *testing.T, db *store.DB, b touchpoint.CodeBatch) touchpoint.CodeBatch {
	t.Helper()
	first, err := db.CreateCodeBatch(ctx, b)
	must(t, err)
	b.FirstSerial = first
	return b
}

// A batch reserves its serials as it is stored, and reads back as it was written.
func testCodeBatches(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "card", touchpoint.ChannelCard, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	_, err = db.ReserveSerials(ctx, tp.ID, 5) // single codes issued before
	must(t, err)

	a := newCodeBatch(clock, tp.ID, 300)
	expires := clock.Now().Add(30 * 24 * time.Hour).Truncate(time.Minute)
	a.ExpiresAt, a.Format, a.Options = &expires, touchpoint.QRSVG, touchpoint.QROptions{Size: 1024, Margin: touchpoint.QRNoMargin, Level: "H"}
	a = createCodeBatch(t, db, a)
	clock.Advance(time.Second)
	b := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 1))
	if a.FirstSerial != 6 || b.FirstSerial != 306 {
		t.Errorf("first serials %d and %d, want 6 and 306", a.FirstSerial, b.FirstSerial)
	}
	got, err := db.Touchpoint(ctx, tp.ID)
	must(t, err)
	if got.LastSerial != 306 {
		t.Errorf("touchpoint's last serial %d, want 306", got.LastSerial)
	}

	gotA, err := db.CodeBatch(ctx, a.ID)
	must(t, err)
	if diff := cmp.Diff(a, gotA); diff != "" {
		t.Errorf("CodeBatch (-want +got):\n%s", diff)
	}
	list, err := db.ListCodeBatches(ctx, tp.ID)
	must(t, err)
	if diff := cmp.Diff([]touchpoint.CodeBatch{b, a}, list); diff != "" {
		t.Errorf("ListCodeBatches, newest first (-want +got):\n%s", diff)
	}
	list, err = db.ListCodeBatches(ctx, hearth.NewID())
	must(t, err)
	if len(list) != 0 {
		t.Errorf("batches of no touchpoint: %v", list)
	}
	gotA, zip, err := db.CodeBatchZIP(ctx, a.ID)
	must(t, err)
	if zip != nil || gotA.ID != a.ID {
		t.Errorf("CodeBatchZIP of a pending batch: %s, %d bytes; want no ZIP", gotA.ID, len(zip))
	}

	_, err = db.CodeBatch(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)
	_, _, err = db.CodeBatchZIP(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)
	_, err = db.CreateCodeBatch(ctx, newCodeBatch(clock, hearth.NewID(), 10))
	wantKind(t, err, hearth.NotFound)
}

// A worker claims the oldest waiting batch under a lease; once the lease lapses another worker takes it over,
// and the first can no longer write to it.
func testCodeBatchClaims(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "pack", touchpoint.ChannelPack, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	a := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 100))
	clock.Advance(time.Millisecond)
	b := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 200))

	lease := time.Minute
	now := clock.Now()
	claim := func(want string, attempts int) touchpoint.CodeBatch {
		t.Helper()
		got, ok, err := db.ClaimCodeBatch(ctx, clock.Now(), clock.Now().Add(lease))
		must(t, err)
		if want == "" {
			if ok {
				t.Fatalf("claimed %s, want nothing to claim", got.ID)
			}
			return got
		}
		if !ok || got.ID != want || got.Attempts != attempts || got.Status != touchpoint.BatchRunning || got.Done != 0 ||
			got.ClaimedUntil == nil || !got.ClaimedUntil.Equal(clock.Now().Add(lease)) {
			t.Fatalf("claimed %+v (ok %v), want %s running, attempt %d, leased until %v", got, ok, want, attempts, clock.Now().Add(lease))
		}
		return got
	}
	claim(a.ID, 1)
	claim(b.ID, 1)
	claim("", 0)

	must(t, db.SaveCodeBatchProgress(ctx, a.ID, 1, 40, now.Add(2*lease)))
	wantKind(t, db.SaveCodeBatchProgress(ctx, a.ID, 2, 50, now.Add(2*lease)), hearth.Conflict)
	got, err := db.CodeBatch(ctx, a.ID)
	must(t, err)
	if got.Done != 40 || !got.ClaimedUntil.Equal(now.Add(2*lease)) || !got.StartedAt.Equal(now) {
		t.Errorf("after progress: done %d, leased until %v, started %v", got.Done, got.ClaimedUntil, got.StartedAt)
	}

	// b's lease lapses first (a's was renewed): b is taken over, and its first worker can write no more.
	clock.Advance(lease + time.Second)
	claim(b.ID, 2)
	claim("", 0)
	wantKind(t, db.SaveCodeBatchProgress(ctx, b.ID, 1, 10, clock.Now().Add(lease)), hearth.Conflict)
	wantKind(t, db.FinishCodeBatch(ctx, b.ID, 1, []byte("zip"), clock.Now()), hearth.Conflict)
	wantKind(t, db.FailCodeBatch(ctx, b.ID, 1, "x", clock.Now()), hearth.Conflict)
	must(t, db.ReleaseCodeBatch(ctx, b.ID, 1)) // not its claim any more: nothing happens
	if got, _ := db.CodeBatch(ctx, b.ID); got.Status != touchpoint.BatchRunning || got.Attempts != 2 {
		t.Errorf("a stale release changed the batch: %s, attempt %d", got.Status, got.Attempts)
	}

	// A ZIP of a few megabytes goes in and comes out whole.
	zip := make([]byte, 3<<20)
	rand.Read(zip)
	clock.Advance(time.Second)
	finished := clock.Now()
	must(t, db.FinishCodeBatch(ctx, b.ID, 2, zip, finished))
	got, gotZIP, err := db.CodeBatchZIP(ctx, b.ID)
	must(t, err)
	if got.Status != touchpoint.BatchDone || got.Done != 200 || got.ZIPSize != int64(len(zip)) || !got.FinishedAt.Equal(finished) ||
		got.ClaimedUntil != nil || !bytes.Equal(gotZIP, zip) {
		t.Errorf("after finishing: %+v, ZIP of %d bytes (equal %v)", got, len(gotZIP), bytes.Equal(gotZIP, zip))
	}

	must(t, db.FailCodeBatch(ctx, a.ID, 1, "The link is too long.", finished))
	got, err = db.CodeBatch(ctx, a.ID)
	must(t, err)
	if got.Status != touchpoint.BatchFailed || got.Error != "The link is too long." || !got.FinishedAt.Equal(finished) || got.ClaimedUntil != nil {
		t.Errorf("after failing: %+v", got)
	}
	// Done and failed batches are never claimed again, however old.
	clock.Advance(24 * time.Hour)
	claim("", 0)

	// A released batch waits again, and its next claim is the next attempt.
	c := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 1))
	claim(c.ID, 1)
	must(t, db.SaveCodeBatchProgress(ctx, c.ID, 1, 1, clock.Now().Add(lease)))
	must(t, db.ReleaseCodeBatch(ctx, c.ID, 1))
	if got, _ := db.CodeBatch(ctx, c.ID); got.Status != touchpoint.BatchPending || got.Done != 0 || got.ClaimedUntil != nil {
		t.Errorf("after release: %+v", got)
	}
	claim(c.ID, 2)
}

// Workers claiming at once never get the same batch, and between them get every one.
func testCodeBatchClaimsConcurrent(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "pack", touchpoint.ChannelPack, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	const batches, workers = 200, 16
	want := map[string]bool{}
	for range batches {
		want[createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 1)).ID] = true
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for range workers {
		wg.Go(func() {
			<-start // all at once, so that claims collide
			for {
				b, ok, err := db.ClaimCodeBatch(ctx, clock.Now(), clock.Now().Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				claimed[b.ID]++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for id, n := range claimed {
		if n != 1 || !want[id] {
			t.Errorf("batch %s claimed %d times (one of ours: %v)", id, n, want[id])
		}
	}
	if len(claimed) != batches {
		t.Errorf("%d batches claimed, want %d", len(claimed), batches)
	}
}

// Batches done before the retention's cutoff lose their ZIP (expired); an expired or failed batch can be queued
// to be drawn again, with its attempts counting on, so that a worker of an earlier round still cannot write.
func testCodeBatchRedraw(t *testing.T, db *store.DB, clock *Clock) {
	tp := newTouchpoint(clock, "pack", touchpoint.ChannelPack, "")
	_, err := db.CreateTouchpoint(ctx, tp)
	must(t, err)
	lease := clock.Now().Add(time.Hour)
	finish := func(want string) touchpoint.CodeBatch {
		t.Helper()
		b, ok, err := db.ClaimCodeBatch(ctx, clock.Now(), lease)
		must(t, err)
		if !ok || b.ID != want {
			t.Fatalf("claimed %s (ok %v), want %s", b.ID, ok, want)
		}
		must(t, db.FinishCodeBatch(ctx, b.ID, b.Attempts, []byte("zip of "+b.ID), clock.Now()))
		return b
	}
	old := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 10))
	oldClaim := finish(old.ID)
	clock.Advance(2 * time.Hour)
	recent := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 10))
	finish(recent.ID)
	failed := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 10))
	b, _, err := db.ClaimCodeBatch(ctx, clock.Now(), lease)
	must(t, err)
	must(t, db.FailCodeBatch(ctx, b.ID, b.Attempts, "The link is too long.", clock.Now()))
	waiting := createCodeBatch(t, db, newCodeBatch(clock, tp.ID, 10))

	n, err := db.ExpireCodeBatches(ctx, clock.Now().Add(-time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("expired %d batches, want 1 (done two hours ago)", n)
	}
	got, zip, err := db.CodeBatchZIP(ctx, old.ID)
	must(t, err)
	if got.Status != touchpoint.BatchExpired || zip != nil {
		t.Errorf("the old batch: %s with %d bytes of ZIP, want expired without", got.Status, len(zip))
	}
	if got, zip, _ := db.CodeBatchZIP(ctx, recent.ID); got.Status != touchpoint.BatchDone || string(zip) != "zip of "+recent.ID {
		t.Errorf("the recent batch: %s, ZIP %q; want it done and whole", got.Status, zip)
	}
	if n, err := db.ExpireCodeBatches(ctx, clock.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("expiring again: %d, %v; want nothing more", n, err)
	}

	for _, id := range []string{recent.ID, waiting.ID} {
		_, err := db.RedrawCodeBatch(ctx, id)
		wantKind(t, err, hearth.Conflict)
	}
	_, err = db.RedrawCodeBatch(ctx, hearth.NewID())
	wantKind(t, err, hearth.NotFound)

	for _, id := range []string{old.ID, failed.ID} {
		got, err := db.RedrawCodeBatch(ctx, id)
		must(t, err)
		if got.Status != touchpoint.BatchPending || got.Done != 0 || got.Error != "" || got.ZIPSize != 0 || got.StartedAt != nil ||
			got.FinishedAt != nil || got.AttemptBase != got.Attempts || got.Attempts != 1 {
			t.Errorf("queued again: %+v", got)
		}
	}
	// Claimed again, the old batch is its second attempt: the first round's worker is fenced out.
	again, ok, err := db.ClaimCodeBatch(ctx, clock.Now(), lease)
	must(t, err)
	if !ok || again.ID != old.ID || again.Attempts != 2 || again.AttemptBase != 1 {
		t.Fatalf("claimed %+v (ok %v), want %s at attempt 2 of base 1", again, ok, old.ID)
	}
	wantKind(t, db.SaveCodeBatchProgress(ctx, old.ID, oldClaim.Attempts, 5, lease), hearth.Conflict)
	must(t, db.FinishCodeBatch(ctx, old.ID, again.Attempts, []byte("drawn again"), clock.Now()))
	if got, zip, _ := db.CodeBatchZIP(ctx, old.ID); got.Status != touchpoint.BatchDone || string(zip) != "drawn again" {
		t.Errorf("drawn again: %s, ZIP %q", got.Status, zip)
	}
}
