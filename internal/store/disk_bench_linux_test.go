package store_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDiskSync measures what a group commit's wait for the disk costs on this machine: writing 48 KiB
// (three 16 KiB WAL frames, a redirect's commit) in place in a file and fdatasync, as SQLite commits the
// event log. It reports the CPU the process spent a sync beside the time: on the virtual machines these
// figures were measured on, the CPU is most of the time (BENCHMARKS.md), so every commit takes a core away
// from the requests for as long as it waits.
func BenchmarkDiskSync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	frames := make([]byte, 48<<10)
	const size = 32 << 20 // SQLite's WAL, once it has grown to its restart size, is written in place
	for off := int64(0); off < size; off += int64(len(frames)) {
		if _, err := f.WriteAt(frames, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	off := int64(0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.WriteAt(frames, off); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		off = (off + int64(len(frames))) % size
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sync")
}
