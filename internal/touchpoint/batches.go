package touchpoint

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hearth-cdp/hearth"
)

// BatchStatus is where a code batch is in its life.
type BatchStatus string

const (
	BatchPending BatchStatus = "pending" // waiting for a worker
	BatchRunning BatchStatus = "running" // a worker is drawing its codes
	BatchDone    BatchStatus = "done"    // its ZIP is ready to download
	BatchFailed  BatchStatus = "failed"  // it could not be made; Error says why
	BatchExpired BatchStatus = "expired" // its ZIP was deleted after the retention; it can be drawn again
)

// CodeBatch is a batch of per-item codes of one touchpoint, such as 10,000 business cards: a range of serial
// numbers, fixed when the batch is created, drawn by a worker into a ZIP of QR code images and a manifest.
// The tokens are fixed too (serial, expiry and signing key), so drawing the batch again makes the same codes.
type CodeBatch struct {
	ID           string
	TouchpointID string
	FirstSerial  int64
	Count        int64
	KeyID        uint32 // the key that signs the batch's tokens
	Format       QRFormat
	Options      QROptions // normalized
	ExpiresAt    *time.Time
	Status       BatchStatus
	Done         int64  // codes drawn so far
	Error        string // why it failed, for a marketer
	Attempts     int    // how many times a worker took it on
	AttemptBase  int    // Attempts when it was last queued to be drawn again: the limit counts those since
	ZIPSize      int64  // bytes of the ZIP, once done
	CreatedAt    time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
	ClaimedUntil *time.Time // the lease of the worker that runs it
}

// LastSerial is the batch's last serial number.
func (b CodeBatch) LastSerial() int64 { return b.FirstSerial + b.Count - 1 }

// BatchStore keeps code batches; its rows are also the durable queue of their rendering. A worker's writes
// name the attempt that claimed the batch and fail with a Conflict error once another worker has taken it over.
type BatchStore interface {
	// CreateCodeBatch reserves b.Count serials of b's touchpoint and stores b as starting at the first of
	// them, in one transaction, and returns that first serial.
	CreateCodeBatch(ctx context.Context, b CodeBatch) (int64, error)
	CodeBatch(ctx context.Context, id string) (CodeBatch, error)
	// ListCodeBatches lists a touchpoint's batches, newest first.
	ListCodeBatches(ctx context.Context, touchpointID string) ([]CodeBatch, error)
	// CodeBatchZIP returns a batch and its ZIP, nil until the batch is done.
	CodeBatchZIP(ctx context.Context, id string) (CodeBatch, []byte, error)
	// ClaimCodeBatch takes the oldest pending batch, or a running one whose lease ended before now, marks it
	// running with a lease until until and counts an attempt. ok is false when no batch waits.
	ClaimCodeBatch(ctx context.Context, now, until time.Time) (b CodeBatch, ok bool, err error)
	SaveCodeBatchProgress(ctx context.Context, id string, attempt int, done int64, until time.Time) error
	FinishCodeBatch(ctx context.Context, id string, attempt int, zip []byte, at time.Time) error
	FailCodeBatch(ctx context.Context, id string, attempt int, msg string, at time.Time) error
	// ReleaseCodeBatch puts a running batch back in the queue, if attempt still holds it.
	ReleaseCodeBatch(ctx context.Context, id string, attempt int) error
	// ExpireCodeBatches deletes the ZIPs of the batches done before before, marking them expired, and returns
	// how many.
	ExpireCodeBatches(ctx context.Context, before time.Time) (int64, error)
	// RedrawCodeBatch queues an expired or failed batch to be drawn again; a Conflict error for another.
	RedrawCodeBatch(ctx context.Context, id string) (CodeBatch, error)
}

const (
	// MaxCodeBatchBytes is the largest ZIP one batch makes. It is kept in one database value (SQLite and
	// PostgreSQL both stop short of 1 GB) and held in memory to store and to download. 10,000 PNG codes at the
	// default size take about 12 MB.
	MaxCodeBatchBytes = 256 << 20

	// batchLease is how long a claim on a batch lasts without news from its worker: after a node dies, its
	// batch starts again on another node (or after a restart) within this time.
	batchLease = time.Minute
	// batchProgressEvery is how often a running batch's progress may be saved; batchRenewEvery how often its
	// lease is renewed when there is no progress to save.
	batchProgressEvery = 250 * time.Millisecond
	batchRenewEvery    = batchLease / 4
	// maxBatchAttempts is how many times a batch is taken on before it is failed: a batch that crashes its
	// node, or that cannot be stored, must not be drawn over and over for ever.
	maxBatchAttempts = 5
)

// CreateCodeBatch makes a batch of count per-item codes of a touchpoint, with QR codes in format drawn with o
// and tokens that expire at expires (zero for never). The serial numbers are reserved at once; a worker draws
// the codes (RunCodeBatches). The batch is checked before anything is reserved: every problem at once, as an
// Invalid error, including a link too long for the options and a ZIP over MaxCodeBatchBytes.
func (s *Service) CreateCodeBatch(ctx context.Context, touchpointID string, count int64, format QRFormat, o QROptions, expires time.Time) (CodeBatch, error) {
	const op = "touchpoint.create_code_batch"
	now := s.clock.Now()
	if format == "" {
		format = QRPNG
	}
	var errs []error
	if count < 1 || count > MaxSerialBatch {
		errs = append(errs, hearth.Errorf(hearth.Invalid, op, "count must be between 1 and %d", MaxSerialBatch))
	}
	if err := checkQRFormat(format); err != nil {
		errs = append(errs, sentence(op, err))
	}
	o, err := o.Normalize()
	if err != nil {
		errs = append(errs, sentence(op, err))
	}
	if !expires.IsZero() {
		if expires = expires.UTC().Truncate(time.Minute); !expires.After(now) {
			errs = append(errs, hearth.Errorf(hearth.Invalid, op, "expires_at must be in the future"))
		}
	}
	if err := joinInvalid(op, errs); err != nil {
		return CodeBatch{}, err
	}
	t, err := s.store.Touchpoint(ctx, touchpointID)
	if err != nil {
		return CodeBatch{}, err
	}
	b := CodeBatch{ID: hearth.NewID(), TouchpointID: t.ID, Count: count, KeyID: s.keys.SignerID(), Format: format, Options: o,
		Status: BatchPending, CreatedAt: now}
	if !expires.IsZero() {
		b.ExpiresAt = &expires
	}
	if err := s.checkBatchFits(t, b); err != nil {
		return CodeBatch{}, err
	}
	if b.FirstSerial, err = s.store.CreateCodeBatch(ctx, b); err != nil {
		return CodeBatch{}, err
	}
	s.forget(t.Number) // its last serial changed
	return b, nil
}

// sentence makes a validation message that is a sentence of its own fit to join others.
func sentence(op string, err error) error {
	msg := strings.TrimSuffix(hearth.MessageOf(err), ".")
	if len(msg) > 1 && unicode.IsUpper(rune(msg[0])) && unicode.IsLower(rune(msg[1])) { // "The …", not "QR …"
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	return &hearth.Error{Kind: hearth.KindOf(err), Op: op, Msg: msg, Err: err}
}

// checkBatchFits draws the batch's widest code (its last serial, which has the longest token) to check that
// its link fits a QR code with the batch's options, and estimates the ZIP's size from it: the images of one
// batch differ little in size, as their symbols have the same version and dimensions.
func (s *Service) checkBatchFits(t Touchpoint, b CodeBatch) error {
	const op = "touchpoint.create_code_batch"
	if b.KeyID == 0 {
		return errors.New("touchpoint: no signing key: load the keys first")
	}
	var expires time.Time
	if b.ExpiresAt != nil {
		expires = *b.ExpiresAt
	}
	tok, err := s.keys.signWith(b.KeyID, Token{Number: t.Number, Serial: t.LastSerial + b.Count, Expires: expires})
	if err != nil {
		return err
	}
	link := s.Link(tok)
	var img bytes.Buffer
	if err := WriteQR(&img, b.Format, link, b.Options); err != nil {
		return err
	}
	imageBytes := int64(img.Len())
	if b.Format == QRSVG { // deflated in the ZIP
		var z countingWriter
		fw, _ := flate.NewWriter(&z, flate.DefaultCompression)
		fw.Write(img.Bytes())
		fw.Close()
		imageBytes = z.n
	}
	// Per code: the image, its two ZIP headers (about 100 bytes and its name twice), its manifest line.
	const nameBytes = 40
	estimate := b.Count * (imageBytes + 100 + 2*nameBytes + int64(len(tok)+len(link)) + nameBytes + 10)
	if estimate > MaxCodeBatchBytes {
		return hearth.Errorf(hearth.Invalid, op, "These codes would make a download of about %d MB, more than the %d MB one batch may hold: make fewer codes in each batch, or choose a smaller size or SVG.",
			estimate>>20, MaxCodeBatchBytes>>20)
	}
	return nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// CodeBatch returns a code batch, without its ZIP.
func (s *Service) CodeBatch(ctx context.Context, id string) (CodeBatch, error) {
	return s.store.CodeBatch(ctx, id)
}

// CodeBatches lists a touchpoint's code batches, newest first; NotFound if there is no such touchpoint.
func (s *Service) CodeBatches(ctx context.Context, touchpointID string) ([]CodeBatch, error) {
	if _, err := s.store.Touchpoint(ctx, touchpointID); err != nil {
		return nil, err
	}
	return s.store.ListCodeBatches(ctx, touchpointID)
}

// CodeBatchZIP returns a done batch and its ZIP; a Conflict error says why a batch that is not done has none.
func (s *Service) CodeBatchZIP(ctx context.Context, id string) (CodeBatch, []byte, error) {
	const op = "touchpoint.code_batch_zip"
	b, zip, err := s.store.CodeBatchZIP(ctx, id)
	if err != nil {
		return CodeBatch{}, nil, err
	}
	switch b.Status {
	case BatchDone:
		return b, zip, nil
	case BatchFailed:
		return b, nil, hearth.Errorf(hearth.Conflict, op, "These codes could not be made, so there is nothing to download: %s", b.Error)
	case BatchRunning:
		return b, nil, hearth.Errorf(hearth.Conflict, op, "These codes are still being made (%d of %d so far); download them when the batch is done.", b.Done, b.Count)
	case BatchExpired:
		return b, nil, hearth.Errorf(hearth.Conflict, op, "The ZIP of these codes was deleted some time after it was made. Draw them again (the same codes) to download it.")
	}
	return b, nil, hearth.Errorf(hearth.Conflict, op, "These codes are waiting to be made; download them when the batch is done.")
}

// RedrawCodeBatch queues an expired or failed batch to be drawn again: the same serials, tokens and options,
// so the codes are those already printed. A Conflict error for a batch waiting, being drawn, or ready.
func (s *Service) RedrawCodeBatch(ctx context.Context, id string) (CodeBatch, error) {
	return s.store.RedrawCodeBatch(ctx, id)
}

// ExpireCodeBatches deletes the ZIPs of batches done longer ago than the code batch retention (none when it is
// 0) and returns how many: a batch of 10,000 codes keeps about 12 MB in the database.
func (s *Service) ExpireCodeBatches(ctx context.Context) (int64, error) {
	if s.opts.CodeBatchRetention <= 0 {
		return 0, nil
	}
	return s.store.ExpireCodeBatches(ctx, s.clock.Now().Add(-s.opts.CodeBatchRetention))
}

// RunCodeBatches draws waiting code batches, one after another, until none waits, and returns how many it took
// on. Every node runs it (every second): a batch is claimed by one node at a time, under a lease that the node
// renews while it draws, and that another node takes over when it lapses (the node died). It returns the
// store's errors, and those of a batch that failed on our side after marking it failed; a batch that fails for
// a reason a marketer can fix (a retired key, a ZIP too large) is only marked failed.
func (s *Service) RunCodeBatches(ctx context.Context) (int, error) {
	for n := 0; ; n++ {
		if ctx.Err() != nil {
			return n, nil
		}
		now := s.clock.Now()
		b, ok, err := s.store.ClaimCodeBatch(ctx, now, now.Add(batchLease))
		if err != nil || !ok {
			return n, err
		}
		if err := s.runCodeBatch(ctx, b); err != nil {
			return n + 1, fmt.Errorf("touchpoint: code batch %s, attempt %d: %w", b.ID, b.Attempts, err)
		}
	}
}

// batchStoreError is a failure of the store while a batch runs: the batch is not at fault, and is tried again.
type batchStoreError struct{ err error }

func (e batchStoreError) Error() string { return e.err.Error() }
func (e batchStoreError) Unwrap() error { return e.err }

// runCodeBatch draws a claimed batch and stores its ZIP, or marks it failed, or gives it back to the queue.
func (s *Service) runCodeBatch(ctx context.Context, b CodeBatch) error {
	if b.Attempts-b.AttemptBase > maxBatchAttempts {
		return s.failBatch(ctx, b, hearth.Errorf(hearth.Invalid, "touchpoint.run_code_batch",
			"Making these codes stopped unexpectedly %d times, so Hearth gave up. Create the batch again, perhaps smaller; if that fails too, ask your administrator to look at the server log.",
			maxBatchAttempts))
	}
	t, codes, err := s.batchCodes(ctx, b)
	if err == nil {
		var zip []byte
		if zip, err = s.drawBatch(ctx, b, t, codes); err == nil {
			err = s.store.FinishCodeBatch(ctx, b.ID, b.Attempts, zip, s.clock.Now())
			if err != nil && hearth.KindOf(err) != hearth.Conflict {
				err = batchStoreError{err}
			}
		}
	}
	var storeErr batchStoreError
	switch {
	case err == nil:
		return nil
	case hearth.KindOf(err) == hearth.Conflict: // another worker took the batch over: it is theirs now
		return err
	case ctx.Err() != nil: // shutting down: give the batch back, for this node after its restart or another
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return s.store.ReleaseCodeBatch(release, b.ID, b.Attempts)
	case errors.As(err, &storeErr):
		return errors.Join(err, s.store.ReleaseCodeBatch(ctx, b.ID, b.Attempts))
	}
	return s.failBatch(ctx, b, err)
}

// failBatch marks a batch failed with a message a marketer can read. An error of ours (not one the marketer
// can do anything about) is returned as well, for the operator's log.
func (s *Service) failBatch(ctx context.Context, b CodeBatch, cause error) error {
	msg := hearth.MessageOf(cause)
	kind := hearth.KindOf(cause)
	if kind == hearth.Internal || kind == hearth.Unavailable {
		msg = "Something went wrong on our side while making these codes. Draw them again; if that fails too, ask your administrator to look at the server log."
	}
	err := s.store.FailCodeBatch(ctx, b.ID, b.Attempts, msg, s.clock.Now())
	if kind == hearth.Internal || kind == hearth.Unavailable {
		return errors.Join(cause, err)
	}
	return err
}

// batchCodes makes the codes of a batch's serial range, signed with the batch's key.
func (s *Service) batchCodes(ctx context.Context, b CodeBatch) (Touchpoint, []Code, error) {
	t, err := s.store.Touchpoint(ctx, b.TouchpointID)
	if err != nil {
		return t, nil, batchStoreError{err}
	}
	if !s.keys.has(b.KeyID) { // made on another node since this one read the keys, or retired
		if err := s.LoadKeys(ctx); err != nil {
			return t, nil, batchStoreError{err}
		}
		if !s.keys.has(b.KeyID) {
			return t, nil, hearth.Errorf(hearth.Invalid, "touchpoint.run_code_batch",
				"The signing key of these codes (key %d) was retired before they were made, so they would not work. Create the batch again.", b.KeyID)
		}
	}
	var expires time.Time
	if b.ExpiresAt != nil {
		expires = *b.ExpiresAt
	}
	codes := make([]Code, b.Count)
	for i := range codes {
		serial := b.FirstSerial + int64(i)
		tok, err := s.keys.signWith(b.KeyID, Token{Number: t.Number, Serial: serial, Expires: expires})
		if err != nil {
			return t, nil, err
		}
		codes[i] = Code{Serial: serial, Token: tok, URL: s.Link(tok)}
	}
	return t, codes, nil
}

// drawBatch writes the batch's ZIP to a temporary file, saving its progress and renewing its claim as it goes,
// and returns its bytes.
func (s *Service) drawBatch(ctx context.Context, b CodeBatch, t Touchpoint, codes []Code) ([]byte, error) {
	f, err := os.CreateTemp("", "hearth-codes-*.zip")
	if err != nil {
		return nil, fmt.Errorf("touchpoint: code batch: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var done atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { s.keepBatch(ctx, stop, b, &done) })
	buf := bufio.NewWriterSize(f, 1<<20)
	w := &limitWriter{w: buf, left: MaxCodeBatchBytes}
	err = WriteCodeBatch(ctx, w, t.Name, codes, b.Format, b.Options, func(n int) { done.Store(int64(n)) })
	if err == nil {
		err = buf.Flush()
	}
	stop(nil)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return nil, cause // the store failed, or another worker took the batch over
	}
	if err != nil {
		return nil, err
	}
	zip := make([]byte, MaxCodeBatchBytes-w.left)
	if _, err := f.ReadAt(zip, 0); err != nil {
		return nil, fmt.Errorf("touchpoint: code batch: read back: %w", err)
	}
	return zip, nil
}

// keepBatch saves a running batch's progress at most every batchProgressEvery, and renews its lease at least
// every batchRenewEvery, until ctx ends. It stops the drawing when the store fails or the claim is lost.
func (s *Service) keepBatch(ctx context.Context, stop context.CancelCauseFunc, b CodeBatch, done *atomic.Int64) {
	tick := time.NewTicker(batchProgressEvery)
	defer tick.Stop()
	var saved int64
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := done.Load()
		if n == saved && time.Since(renewed) < batchRenewEvery {
			continue
		}
		if err := s.store.SaveCodeBatchProgress(ctx, b.ID, b.Attempts, n, s.clock.Now().Add(batchLease)); err != nil {
			if ctx.Err() == nil {
				if hearth.KindOf(err) != hearth.Conflict {
					err = batchStoreError{err}
				}
				stop(err)
			}
			return
		}
		saved, renewed = n, time.Now()
	}
}

// limitWriter refuses to write more than left bytes in all.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, hearth.Errorf(hearth.TooLarge, "touchpoint.run_code_batch",
			"These codes make a download larger than the %d MB one batch may hold: make fewer codes in each batch, or choose a smaller size or SVG.", MaxCodeBatchBytes>>20)
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}
