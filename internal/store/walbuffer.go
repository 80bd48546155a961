package store

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// The WAL write buffer: the default VFS of every SQLite connection here is SQLite's own unix VFS but for the
// writes to a WAL file, which gather in a buffer and reach the file in writes of up to 128 KiB.
//
// Why: SQLite writes each WAL frame as two pwrite calls, its 24-byte header and its page, and on this kind
// of machine (ext4 on a virtual disk) each call costs 2-3 µs of the kernel's time, however small: 4.5-6 µs a
// frame against 0.7 µs in large writes. A batch of the profile processor writes tens of thousands of frames;
// at scale the WAL's writes were a fifth of its CPU (pprof, catching up on a backlog).
//
// When the buffer is written: before the frames it holds are published, and before anything reads the file
// where they go. A writer publishes a commit in the WAL index (shared memory, not the file) after writing its
// frames, and the one call to the VFS between the two is the memory barrier on the database file
// (walIndexWriteHdr: the index header is written twice, a barrier between), so that barrier writes out the
// buffers of the database's WAL first. A commit that syncs (the event log's) writes the buffer at the sync,
// which reports an error as it always did; a commit that does not (the derived writers', synchronous NORMAL)
// can only meet a failed write in the barrier, which cannot report it, and stops the process there rather
// than publish a commit whose frames are not in the file: a restart recovers the WAL up to its last whole
// commit, as after any crash. Reads of the WAL, its size, truncation and closing write the buffer first.
//
// Nothing changes on disk: the same bytes at the same offsets, in fewer calls. A process killed with frames in
// the buffer had not published them, so their transaction had not committed.

// walBufferSize bounds a buffer: what the unix VFS writes in one call at most (seekAndWriteFd masks the
// length with 0x1ffff), 31 frames of 4 KiB pages or 7 of the event log's 16 KiB.
const walBufferSize = 1<<17 - 1

var (
	baseVFS  uintptr // SQLite's unix VFS
	fileSize int32   // the unix VFS's sqlite3_file; ours keeps a slot number after it
)

// walWrites counts SQLite's writes to WAL files (asked) and the VFS's writes to the files (made).
var walWrites struct{ asked, made atomic.Int64 }

func init() {
	tls := libc.NewTLS()
	defer tls.Close()
	baseVFS = sqlite3.Xsqlite3_vfs_find(tls, 0)
	if baseVFS == 0 {
		panic("store: SQLite has no default VFS")
	}
	base := (*sqlite3.Tsqlite3_vfs)(cmem(baseVFS))
	fileSize = (base.FszOsFile + 7) &^ 7
	vfs := libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	name, err := libc.CString("hearth")
	if vfs == 0 || err != nil {
		panic("store: out of memory installing the VFS")
	}
	v := (*sqlite3.Tsqlite3_vfs)(cmem(vfs))
	*v = *base
	v.FpNext = 0
	v.FzName = name
	v.FszOsFile = fileSize + 8
	v.FxOpen = cFunc(vfsOpen)
	if rc := sqlite3.Xsqlite3_vfs_register(tls, vfs, 1); rc != sqlite3.SQLITE_OK {
		panic("store: installing the VFS: SQLite said " + libc.GoString(sqlite3.Xsqlite3_errstr(tls, rc)))
	}
}

// vfsFile is what the VFS keeps of an open file: a WAL file's buffer, or a database file's WALs.
type vfsFile struct {
	id   uintptr // its sqlite3_file, SQLite's allocation for as long as it is open
	base uintptr // the unix VFS's methods for the file
	db   *vfsDB

	// A WAL file's buffer: bytes for the file from offset start. mu guards it: the connection writes it,
	// and any connection's barrier on the database may write it out.
	mu      sync.Mutex
	buf     uintptr // C memory of walBufferSize, made at the first write
	start   int64
	n       int
	pending atomic.Bool // n > 0, read without the lock
}

// vfsDB is a database file path's open WAL files.
type vfsDB struct {
	path string
	refs int // open files of the path, its database and WAL files
	wals atomic.Pointer[[]*vfsFile]
	mu   sync.Mutex // guards changes to wals
}

// vfsFiles are the open files, by the slot kept after the unix VFS's sqlite3_file, and the databases by path.
var vfsFiles struct {
	live slotTable[vfsFile]
	mu   sync.Mutex // guards dbs
	dbs  map[string]*vfsDB
}

// cFunc is a Go function as the transpiled C calls a function pointer: a pointer to the function value's code
// pointer (https://golang.org/s/go11func), as modernc.org/sqlite does for its own callbacks. Only for
// top-level functions, whose values are static.
func cFunc[T any](f T) uintptr { return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f})) }

// callBase is a C function pointer as a Go function of type T, as the transpiled C calls one.
func callBase[T any](fp uintptr) T { return *(*T)(unsafe.Pointer(&struct{ uintptr }{fp})) }

// cmem is an address of C memory (libc's allocator, outside the Go heap) as a pointer.
func cmem(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

func fileOf(id uintptr) *vfsFile { return vfsFiles.live.get(*(*uint32)(cmem(id + uintptr(fileSize)))) }

func baseMethods(f *vfsFile) *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(cmem(f.base))
}

// wrapped are our methods for each of the unix VFS's method tables (one on Linux), for WAL and database
// files.
var wrapped struct {
	mu  sync.Mutex
	wal map[uintptr]uintptr
	db  map[uintptr]uintptr
}

func wrapMethods(tls *libc.TLS, base uintptr, wal bool) uintptr {
	wrapped.mu.Lock()
	defer wrapped.mu.Unlock()
	if wrapped.wal == nil {
		wrapped.wal, wrapped.db = map[uintptr]uintptr{}, map[uintptr]uintptr{}
	}
	table := wrapped.db
	if wal {
		table = wrapped.wal
	}
	if m, ok := table[base]; ok {
		return m
	}
	m := libc.Xcalloc(tls, 1, types.Size_t(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	if m == 0 {
		return 0
	}
	methods := (*sqlite3.Tsqlite3_io_methods)(cmem(m))
	*methods = *(*sqlite3.Tsqlite3_io_methods)(cmem(base))
	methods.FxClose = cFunc(fileClose)
	if wal {
		methods.FxRead = cFunc(walRead)
		methods.FxWrite = cFunc(walWrite)
		methods.FxTruncate = cFunc(walTruncate)
		methods.FxSync = cFunc(walSync)
		methods.FxFileSize = cFunc(walFileSize)
	} else if methods.FxShmBarrier != 0 {
		methods.FxShmBarrier = cFunc(dbBarrier)
	}
	table[base] = m
	return m
}

func vfsOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	base := (*sqlite3.Tsqlite3_vfs)(cmem(baseVFS))
	rc := callBase[func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32](base.FxOpen)(tls, baseVFS, zName, pFile, flags, pOutFlags)
	file := (*sqlite3.Tsqlite3_file)(cmem(pFile))
	wal := flags&sqlite3.SQLITE_OPEN_WAL != 0
	if rc != sqlite3.SQLITE_OK || file.FpMethods == 0 || zName == 0 || !wal && flags&sqlite3.SQLITE_OPEN_MAIN_DB == 0 {
		return rc // other files keep the unix VFS's methods
	}
	methods := wrapMethods(tls, file.FpMethods, wal)
	if methods == 0 {
		callBase[func(*libc.TLS, uintptr) int32](baseMethods(&vfsFile{base: file.FpMethods}).FxClose)(tls, pFile)
		return sqlite3.SQLITE_NOMEM
	}
	path := libc.GoString(zName)
	if wal {
		path = strings.TrimSuffix(path, "-wal")
	}
	f := &vfsFile{id: pFile, base: file.FpMethods}
	vfsFiles.mu.Lock()
	if vfsFiles.dbs == nil {
		vfsFiles.dbs = map[string]*vfsDB{}
	}
	db := vfsFiles.dbs[path]
	if db == nil {
		db = &vfsDB{path: path}
		db.wals.Store(&[]*vfsFile{})
		vfsFiles.dbs[path] = db
	}
	db.refs++
	vfsFiles.mu.Unlock()
	f.db = db
	slot := vfsFiles.live.add(f)
	if wal {
		db.mu.Lock()
		wals := append(append([]*vfsFile(nil), *db.wals.Load()...), f)
		db.wals.Store(&wals)
		db.mu.Unlock()
	}
	*(*uint32)(cmem(pFile + uintptr(fileSize))) = slot
	file.FpMethods = methods
	return rc
}

func fileClose(tls *libc.TLS, id uintptr) int32 {
	f := fileOf(id)
	f.mu.Lock()
	rc := f.flush(tls)
	if f.buf != 0 {
		libc.Xfree(tls, f.buf)
		f.buf = 0
	}
	f.mu.Unlock()
	db := f.db
	db.mu.Lock()
	wals := slicesWithout(*db.wals.Load(), f)
	db.wals.Store(&wals)
	db.mu.Unlock()
	vfsFiles.live.remove(*(*uint32)(cmem(id + uintptr(fileSize))))
	vfsFiles.mu.Lock()
	if db.refs--; db.refs == 0 {
		delete(vfsFiles.dbs, db.path)
	}
	vfsFiles.mu.Unlock()
	// The unix VFS's close, with its own methods back in place.
	(*sqlite3.Tsqlite3_file)(cmem(id)).FpMethods = f.base
	if rc2 := callBase[func(*libc.TLS, uintptr) int32](baseMethods(f).FxClose)(tls, id); rc == sqlite3.SQLITE_OK {
		rc = rc2
	}
	return rc
}

func slicesWithout(files []*vfsFile, f *vfsFile) []*vfsFile {
	out := make([]*vfsFile, 0, len(files))
	for _, g := range files {
		if g != f {
			out = append(out, g)
		}
	}
	return out
}

// flush writes the buffer to the file. The caller holds f.mu.
func (f *vfsFile) flush(tls *libc.TLS) int32 {
	if f.n == 0 {
		return sqlite3.SQLITE_OK
	}
	walWrites.made.Add(1)
	rc := callBase[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(f).FxWrite)(tls, f.id, f.buf, int32(f.n), f.start)
	f.n = 0
	f.pending.Store(false)
	return rc
}

func walWrite(tls *libc.TLS, id, pBuf uintptr, amt int32, off int64) int32 {
	walWrites.asked.Add(1)
	f := fileOf(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.start + int64(f.n)
	switch {
	case f.n > 0 && off >= f.start && off+int64(amt) <= end: // a frame of the transaction written again
		libc.Xmemcpy(tls, f.buf+uintptr(off-f.start), pBuf, types.Size_t(amt))
		return sqlite3.SQLITE_OK
	case f.n > 0 && off == end && f.n+int(amt) <= walBufferSize: // the next bytes
	default:
		if rc := f.flush(tls); rc != sqlite3.SQLITE_OK {
			return rc
		}
		if amt > walBufferSize {
			walWrites.made.Add(1)
			return callBase[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(f).FxWrite)(tls, id, pBuf, amt, off)
		}
		if f.buf == 0 {
			if f.buf = libc.Xmalloc(tls, walBufferSize); f.buf == 0 {
				return sqlite3.SQLITE_IOERR_NOMEM
			}
		}
		f.start = off
	}
	libc.Xmemcpy(tls, f.buf+uintptr(f.n), pBuf, types.Size_t(amt))
	f.n += int(amt)
	f.pending.Store(true)
	return sqlite3.SQLITE_OK
}

// flushed writes out the buffer if it holds anything. The write may come from any connection's goroutine: a
// barrier on the database flushes its WALs' buffers.
func (f *vfsFile) flushed(tls *libc.TLS) int32 {
	if !f.pending.Load() {
		return sqlite3.SQLITE_OK
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flush(tls)
}

func walRead(tls *libc.TLS, id, pBuf uintptr, amt int32, off int64) int32 {
	f := fileOf(id)
	if f.pending.Load() {
		f.mu.Lock()
		overlaps := f.n > 0 && off < f.start+int64(f.n) && off+int64(amt) > f.start
		var rc int32
		if overlaps {
			rc = f.flush(tls)
		}
		f.mu.Unlock()
		if rc != sqlite3.SQLITE_OK {
			return rc
		}
	}
	return callBase[func(*libc.TLS, uintptr, uintptr, int32, int64) int32](baseMethods(f).FxRead)(tls, id, pBuf, amt, off)
}

func walTruncate(tls *libc.TLS, id uintptr, size int64) int32 {
	f := fileOf(id)
	if rc := f.flushed(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return callBase[func(*libc.TLS, uintptr, int64) int32](baseMethods(f).FxTruncate)(tls, id, size)
}

func walSync(tls *libc.TLS, id uintptr, flags int32) int32 {
	f := fileOf(id)
	if rc := f.flushed(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return callBase[func(*libc.TLS, uintptr, int32) int32](baseMethods(f).FxSync)(tls, id, flags)
}

func walFileSize(tls *libc.TLS, id, pSize uintptr) int32 {
	f := fileOf(id)
	if rc := f.flushed(tls); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return callBase[func(*libc.TLS, uintptr, uintptr) int32](baseMethods(f).FxFileSize)(tls, id, pSize)
}

// dbBarrier is the memory barrier on a database file, which a writer calls before it publishes a commit in
// the WAL index: the database's WAL buffers are written out first.
func dbBarrier(tls *libc.TLS, id uintptr) {
	f := fileOf(id)
	for _, w := range *f.db.wals.Load() {
		if rc := w.flushed(tls); rc != sqlite3.SQLITE_OK {
			panic(fmt.Sprintf("store: writing the WAL of %s failed (SQLite error %d); stopping rather than publish a commit whose pages are not in the file",
				f.db.path, rc))
		}
	}
	callBase[func(*libc.TLS, uintptr)](baseMethods(f).FxShmBarrier)(tls, id)
}
