//! One daemon per database: `run` holds an exclusive `flock` on
//! `<database>.lock` for its whole life, so a second `storyline run` beside the
//! service (which would answer every update twice and run a second scheduler and
//! publisher) stops with the first one's pid instead. The lock is on a file of
//! its own, never the database: SQLite's own POSIX locks on the database would
//! be dropped by any descriptor we opened and closed on it. The kernel releases
//! the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

/// Another daemon holds the database; the text names it.
#[derive(Debug)]
pub struct AlreadyRunning(pub String);

impl std::fmt::Display for AlreadyRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlreadyRunning {}

/// Held for the life of `run`; dropping it (or any exit) releases the lock.
pub struct RunLock {
    _file: File,
}

pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock, or fails with `AlreadyRunning` when another process has it.
pub fn acquire(database: &Path, now: DateTime<Utc>) -> Result<RunLock> {
    let path = lock_path(database);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: creating the database folder", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("{}: opening the run lock", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(AlreadyRunning(format!(
                "already running ({}) on {}; stop that one first (systemctl stop \
                 storyline) or give this one another database",
                describe_holder(&holder),
                database.display()
            ))
            .into());
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("{}: taking the run lock", path.display()))
        }
    }
    let holder = format!(
        "{}\n{}\n",
        std::process::id(),
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.as_bytes()))
        .with_context(|| format!("{}: writing the run lock", path.display()))?;
    Ok(RunLock { _file: file })
}

/// "pid 123, since 2026-12-02T10:00:00Z" from the lock file's two lines.
fn describe_holder(text: &str) -> String {
    let mut lines = text.lines();
    let pid = lines
        .next()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .map_or("pid unknown".to_string(), |p| format!("pid {p}"));
    match lines
        .next()
        .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
    {
        Some(since) => format!(
            "{pid}, since {}",
            since.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => pid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("storyline.db");
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = acquire(&db, now).unwrap();
        let e = acquire(&db, now).err().unwrap();
        assert!(e.is::<AlreadyRunning>());
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "pid {}, since 2026-12-02T10:00:00Z",
                std::process::id()
            )),
            "{text}"
        );
        drop(first);
        acquire(&db, now).unwrap();
    }

    #[test]
    fn an_unreadable_holder_text_still_refuses() {
        assert_eq!(describe_holder(""), "pid unknown");
        assert_eq!(describe_holder("12\nyesterday\n"), "pid 12");
    }
}
