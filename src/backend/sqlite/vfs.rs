//! A VFS over the platform's default one that writes a commit's WAL frames in one
//! system call.
//!
//! SQLite writes each WAL frame as two `pwrite`s, its 24-byte header and then its page,
//! so a commit that changes eight pages makes sixteen system calls; on this store's
//! write path they were a quarter of a commit's time. This VFS gathers the frames a
//! commit appends and writes them with one `pwrite` when the commit frame's page
//! arrives — still inside SQLite's write of that frame, so a failed write fails the
//! commit exactly as before, and before SQLite publishes the commit to readers (it
//! updates the WAL index only after its last frame write returns). Nothing changes on
//! disk but the number of calls: the same bytes land at the same offsets, in order.
//!
//! The rules, by what SQLite writes (`walWriteOneFrame`, `walRewriteChecksums`):
//! - a frame header that is not a commit's, or a commit's following gathered frames,
//!   is gathered; so is the page that follows a gathered header;
//! - the page of a gathered commit header ends the commit: everything is written now;
//! - any other write, and every other call on the log (read, sync, truncate, size,
//!   lock, file control, close), first writes what is gathered, and returns its error.
//!
//! So a commit's frames are on disk (in the page cache, as before: durability is still
//! the `synchronous` setting's) before its write call returns, and a transaction that
//! spilled frames before its commit has them written by its next read of the log, its
//! next write, or its close. Only WAL files are wrapped; the database, journals and
//! temporary files are the default VFS's own.

use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name this VFS is registered under.
pub(super) const NAME: &str = "agent-backlog-unix";
const NAME_C: &CStr = c"agent-backlog-unix";

/// The size of a WAL frame header.
const FRAME_HEADER: usize = 24;
/// Gathered bytes past which they are written at once (a transaction that spills
/// many pages before its commit).
const MAX_GATHERED: usize = 4 << 20;
/// The largest write handed to the Unix VFS at once (it takes less than 128 KiB).
const MAX_WRITE: usize = 124 << 10;

/// Registers the VFS once per process; `None` where the default VFS is not the Unix
/// one this wraps (the store then opens its files with the default VFS).
pub(super) fn name() -> Option<&'static str> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED
        .get_or_init(|| unsafe { register() })
        .then_some(NAME)
}

/// The wrapped default VFS.
struct Wrapped(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and lives until the process ends; SQLite
// calls it from any thread.
unsafe impl Send for Wrapped {}
unsafe impl Sync for Wrapped {}

static REAL: OnceLock<Wrapped> = OnceLock::new();

unsafe fn register() -> bool {
    let real = ffi::sqlite3_vfs_find(ptr::null());
    if real.is_null() || CStr::from_ptr((*real).zName).to_bytes() != b"unix" {
        return false;
    }
    if REAL.set(Wrapped(real)).is_err() {
        return false;
    }
    let mut vfs: ffi::sqlite3_vfs = ptr::read(real);
    vfs.szOsFile = (wal_offset() + (*real).szOsFile as usize) as c_int;
    vfs.zName = NAME_C.as_ptr();
    vfs.pNext = ptr::null_mut();
    vfs.xOpen = Some(open);
    // The other methods are the Unix VFS's own; none of them reads the VFS it is
    // given beyond `mxPathname`, which is copied.
    let vfs = Box::leak(Box::new(vfs));
    ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
}

/// A WAL file: the gathered frames, then the default VFS's file.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    gathered: Vec<u8>,
    /// The file offset of `gathered[0]`.
    start: i64,
    /// What the last gathered write was.
    last: Last,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Header,
    CommitHeader,
    Page,
}

/// Where the default VFS's file starts inside ours (8-byte aligned).
const fn wal_offset() -> usize {
    (std::mem::size_of::<WalFile>() + 7) & !7
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = REAL.get().expect("registered before use").0;
    let real_open = (*real_vfs).xOpen.expect("the Unix VFS opens files");
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        return real_open(real_vfs, name, file, flags, out_flags);
    }
    let wal = file.cast::<WalFile>();
    let real = file
        .cast::<u8>()
        .add(wal_offset())
        .cast::<ffi::sqlite3_file>();
    let rc = real_open(real_vfs, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite does not close a file whose open failed; the default VFS has released
        // what it took.
        (*wal).base.pMethods = ptr::null();
        return rc;
    }
    ptr::write(
        wal,
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            real,
            gathered: Vec::new(),
            start: 0,
            last: Last::Nothing,
        },
    );
    ffi::SQLITE_OK
}

unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

unsafe fn methods(real: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

impl WalFile {
    /// Writes what is gathered, with one call of the default VFS.
    unsafe fn flush(&mut self) -> c_int {
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let write = methods(self.real).xWrite.expect("files are written");
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        // The Unix VFS writes at most 128 KiB per call (it masks larger amounts).
        for chunk in self.gathered.chunks(MAX_WRITE) {
            rc = write(
                self.real,
                chunk.as_ptr().cast::<c_void>(),
                chunk.len() as c_int,
                offset,
            );
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        self.gathered.clear();
        self.last = Last::Nothing;
        rc
    }

    fn end(&self) -> i64 {
        self.start + self.gathered.len() as i64
    }

    unsafe fn gather(&mut self, bytes: &[u8], offset: i64, last: Last) {
        if self.gathered.is_empty() {
            self.start = offset;
        }
        self.gathered.extend_from_slice(bytes);
        self.last = last;
    }

    unsafe fn write(&mut self, data: *const c_void, amount: c_int, offset: i64) -> c_int {
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount as usize);
        let follows = !self.gathered.is_empty() && offset == self.end();
        if bytes.len() == FRAME_HEADER {
            // Bytes 4..8 of a frame header: the database size after a commit, 0 for
            // the other frames.
            let commit = bytes[4..8] != [0, 0, 0, 0];
            let after_page = self.last == Last::Page || self.last == Last::Nothing;
            if commit {
                // A commit header alone (a one-page commit, or a rewrite of its
                // checksum) is written as it comes: nothing would follow it.
                if follows && after_page {
                    self.gather(bytes, offset, Last::CommitHeader);
                    return ffi::SQLITE_OK;
                }
            } else {
                if !(follows && after_page) {
                    let rc = self.flush();
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                }
                self.gather(bytes, offset, Last::Header);
                return ffi::SQLITE_OK;
            }
        } else if follows && matches!(self.last, Last::Header | Last::CommitHeader) {
            let commit = self.last == Last::CommitHeader;
            self.gather(bytes, offset, Last::Page);
            if commit || self.gathered.len() >= MAX_GATHERED {
                return self.flush();
            }
            return ffi::SQLITE_OK;
        }
        let rc = self.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let write = methods(self.real).xWrite.expect("files are written");
        write(self.real, data, amount, offset)
    }
}

/// Writes what is gathered, then calls the default VFS's method of the same name.
macro_rules! flushed {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            let wal = wal(file);
            let rc = wal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match methods(wal.real).$method {
                Some(method) => method(wal.real $(, $arg)*),
                None => ffi::SQLITE_IOERR,
            }
        }
    };
}

flushed!(read, xRead, (data: *mut c_void, amount: c_int, offset: i64));
flushed!(truncate, xTruncate, (size: i64));
flushed!(sync, xSync, (flags: c_int));
flushed!(file_size, xFileSize, (size: *mut i64));
flushed!(lock, xLock, (level: c_int));
flushed!(unlock, xUnlock, (level: c_int));
flushed!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
flushed!(file_control, xFileControl, (op: c_int, arg: *mut c_void));
flushed!(shm_map, xShmMap, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void));
flushed!(shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int));
flushed!(shm_unmap, xShmUnmap, (delete: c_int));
flushed!(fetch, xFetch, (offset: i64, amount: c_int, out: *mut *mut c_void));
flushed!(unfetch, xUnfetch, (offset: i64, page: *mut c_void));

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    wal(file).write(data, amount, offset)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = file.cast::<WalFile>();
    let flushed = (*wal).flush();
    let real = (*wal).real;
    let closed = match methods(real).xClose {
        Some(close) => close(real),
        None => ffi::SQLITE_OK,
    };
    ptr::drop_in_place(wal);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xSectorSize.map_or(4096, |f| f(real))
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xDeviceCharacteristics.map_or(0, |f| f(real))
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    let wal = wal(file);
    // Never reached with anything gathered (SQLite asks for barriers on the database
    // file, not the log); written anyway, as every other call does.
    let _ = wal.flush();
    if let Some(barrier) = methods(wal.real).xShmBarrier {
        barrier(wal.real);
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    /// A connection through this VFS, and one through the default VFS that checks what
    /// the first one committed, as another process would.
    fn pair(dir: &std::path::Path, synchronous: &str) -> (Connection, Connection) {
        let path = dir.join("vfs.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let vfs = super::name().expect("the Unix VFS is the default here");
        let ours = Connection::open_with_flags_and_vfs(&path, flags, vfs).unwrap();
        ours.pragma_update(None, "journal_mode", "WAL").unwrap();
        ours.pragma_update(None, "synchronous", synchronous)
            .unwrap();
        // A tiny cache makes large transactions spill frames before their commit and
        // rewrite frames they spilled; a low threshold restarts the log often.
        ours.pragma_update(None, "cache_size", 8).unwrap();
        ours.pragma_update(None, "wal_autocheckpoint", 50).unwrap();
        ours.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .unwrap();
        let theirs = Connection::open_with_flags(&path, flags).unwrap();
        (ours, theirs)
    }

    fn seen(theirs: &Connection) -> (i64, i64) {
        theirs
            .query_row(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    fn check(theirs: &Connection) {
        let ok: String = theirs
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    fn commits_are_whole_for_other_connections(synchronous: &str) {
        let dir = std::env::temp_dir().join(format!(
            "agent-backlog-vfs-{}-{synchronous}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut ours, theirs) = pair(&dir, synchronous);
        // Small commits, each seen at once, across several restarts of the log.
        for n in 1..=300_i64 {
            ours.execute("INSERT INTO t (n, body) VALUES (?1, zeroblob(?1 * 7))", [n])
                .unwrap();
            assert_eq!(seen(&theirs), (n, 7 * n * (n + 1) / 2), "after commit {n}");
        }
        // A large commit (several MiB, written in more than one call) that spills
        // and rewrites frames before it ends.
        let tx = ours.transaction().unwrap();
        for n in 301..=2300_i64 {
            tx.execute("INSERT INTO t (n, body) VALUES (?1, randomblob(3000))", [n])
                .unwrap();
            if n % 100 == 0 {
                tx.execute(
                    "UPDATE t SET body = randomblob(3000) WHERE n = ?1",
                    [n - 50],
                )
                .unwrap();
            }
        }
        tx.commit().unwrap();
        let before = 7 * 300 * 301 / 2;
        assert_eq!(seen(&theirs), (2300, before + 2000 * 3000));
        // A spilled transaction rolled back leaves nothing; the next commit is whole.
        let tx = ours.transaction().unwrap();
        for n in 2301..=3300_i64 {
            tx.execute("INSERT INTO t (n, body) VALUES (?1, randomblob(3000))", [n])
                .unwrap();
        }
        tx.rollback().unwrap();
        ours.execute("INSERT INTO t (n, body) VALUES (2301, zeroblob(5))", [])
            .unwrap();
        assert_eq!(seen(&theirs), (2301, before + 2000 * 3000 + 5));
        check(&theirs);
        drop(ours);
        check(&theirs);
        assert_eq!(seen(&theirs), (2301, before + 2000 * 3000 + 5));
        drop(theirs);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn commits_are_whole_for_other_connections_with_synchronous_normal() {
        commits_are_whole_for_other_connections("NORMAL");
    }

    #[test]
    fn commits_are_whole_for_other_connections_with_synchronous_full() {
        commits_are_whole_for_other_connections("FULL");
    }
}
