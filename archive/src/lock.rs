//! One writer per archive: an exclusive lock on `<dir>/writer.lock` that records the writer's pid.
//!
//! The OS drops the lock when the process dies (even by kill -9), so a crashed campaign never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::{Error, Result};

pub const LOCK_FILE: &str = "writer.lock";

/// Held for as long as the archive is open for writing.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
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
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::InUse {
                    dir: dir.to_path_buf(),
                    pid: holder(dir),
                })
            }
            Err(TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        file.set_len(0).map_err(|e| io(&path, e))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| io(&path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
        Ok(WriterLock { _file: file })
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
