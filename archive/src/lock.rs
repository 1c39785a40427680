//! One writer per archive: an exclusive lock on `<dir>/writer.lock` that records the writer's pid.
//!
//! The OS drops the lock when the process dies (even by kill -9), so a crashed campaign never
//! leaves a stale lock behind.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Error, Result};

pub const LOCK_FILE: &str = "writer.lock";

/// How long to wait for a lock that this process itself released a moment ago.
pub const SELF_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Held for as long as the archive is open for writing.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
    dir: PathBuf,
}

/// The archives this process has open for writing: a lock recorded with our pid but not listed
/// here is one we released a moment ago.
static OPEN_HERE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

impl Drop for WriterLock {
    fn drop(&mut self) {
        OPEN_HERE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.dir);
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl WriterLock {
    /// Take the lock at once, or fail with the pid of the process that has it.
    pub fn acquire(dir: &Path) -> Result<WriterLock> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let canonical = dir.canonicalize().map_err(|e| io(dir, e))?;
        if OPEN_HERE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&canonical)
        {
            return Err(Error::InUse {
                dir: dir.to_path_buf(),
                pid: Some(std::process::id()),
            });
        }
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        // Our own pid as the holder of an archive we do not have open means the lock was ours a
        // moment ago: a thread of this process that is between fork and exec still shares the
        // lock's file description. That passes within microseconds, so wait for it briefly; any
        // other holder is refused at once.
        let deadline = Instant::now() + SELF_RELEASE_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let pid = holder(dir);
                    if pid == Some(std::process::id()) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    return Err(Error::InUse {
                        dir: dir.to_path_buf(),
                        pid,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(&path, e)),
            }
        }
        file.set_len(0).map_err(|e| io(&path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io(&path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
        OPEN_HERE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(canonical.clone());
        Ok(WriterLock {
            _file: file,
            dir: canonical,
        })
    }
}

/// The pid recorded by the current writer, if any.
pub fn holder(dir: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(dir.join(LOCK_FILE))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// Whether some process holds the writer lock now.
pub fn is_locked(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}
