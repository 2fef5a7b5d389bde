//! WAL checkpoints on a background thread.
//!
//! With `synchronous=NORMAL` a commit only appends to the WAL; the fsyncs happen when
//! the WAL is copied back into the database file (a checkpoint). SQLite normally runs
//! that checkpoint inside the commit that crosses 1,000 WAL pages, so one caller in a
//! few hundred pays for the fsyncs of all the others. Here the commit only signals a
//! thread with its own connection, which runs a PASSIVE checkpoint (it never blocks
//! readers or writers). Durability is unchanged: the same data is written and synced
//! the same way, only by another thread. Should that thread fall behind or fail to
//! start, commits checkpoint inline past a higher threshold, as SQLite would.
//!
//! Under a steady stream of commits a background checkpoint always ends a few frames
//! behind the log, so the log only restarts from its beginning after an inline
//! checkpoint: it grows to about [`INLINE_PAGES`] pages (16 MiB), and
//! `journal_size_limit` trims the file back when it restarts.

use std::os::raw::c_int;
use std::path::PathBuf;
use std::sync::mpsc::{self, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

/// WAL pages after which a commit asks for a background checkpoint.
pub const BACKGROUND_PAGES: c_int = 1000;
/// Checkpoint passes per request, to catch up with commits made during the first.
const CATCH_UP_PASSES: usize = 4;
/// WAL pages after which a commit checkpoints inline (the thread is behind or gone).
pub const INLINE_PAGES: c_int = 4 * BACKGROUND_PAGES;

/// The thread that checkpoints one database file.
pub struct Checkpointer {
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread and installs the commit hook on `conn`. The thread stops when
    /// `conn` is closed (the hook, which owns the only sender, is dropped with it);
    /// [`Checkpointer::join`] then waits for it.
    pub fn start(
        conn: &mut Connection,
        path: PathBuf,
        flags: OpenFlags,
        busy: Duration,
    ) -> rusqlite::Result<Checkpointer> {
        let (notify, requests) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("agent-backlog-checkpoint".into())
            .spawn(move || {
                let Ok(conn) = Connection::open_with_flags(&path, flags) else {
                    return;
                };
                if conn.busy_timeout(busy).is_err() {
                    return;
                }
                while requests.recv().is_ok() {
                    // Commits go on while a checkpoint runs, so it ends a little behind the
                    // log; a few passes catch up with it, and only a fully copied log is
                    // restarted from its beginning by the next commit. A failed pass
                    // (busy, I/O) is retried on the next request; commits do not see it.
                    for _ in 0..CATCH_UP_PASSES {
                        let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                        });
                        match pass {
                            Ok((log, copied)) if copied < log => continue,
                            _ => break,
                        }
                    }
                }
            })
            .ok();
        // The log size at the last request; a smaller size means the log restarted.
        let mut requested_at: c_int = 0;
        conn.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            if pages < requested_at {
                requested_at = 0;
            }
            if pages >= INLINE_PAGES {
                requested_at = pages;
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if pages >= requested_at + BACKGROUND_PAGES {
                requested_at = pages;
                if let Err(TrySendError::Disconnected(())) = notify.try_send(()) {
                    let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
                }
            }
            // The commit has happened; an error here would only be reported as a failure.
            Ok(())
        }))?;
        Ok(Checkpointer { thread })
    }

    /// Waits for the thread after the connection that fed it was closed.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
