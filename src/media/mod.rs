//! Part `media/`: the files — the scanner (this module), image conversion and
//! chat previews (`convert`), the MP4 probe. Knows no handler: it never talks to
//! Telegram or Instagram and decides nothing about a chat.
//!
//! The media scanner: keeps `media_items` in step with the files under `[media] dir`.
//!
//! A scan walks the folder once, comparing each file's size and mtime with a compact
//! in-memory copy of the index, so a warm rescan only stats files and writes nothing.
//! New and changed files are then hashed (SHA-256, streamed through a fixed buffer)
//! and written in batches, each in its own short transaction: a crash loses at most a
//! batch, which the next scan redoes, and the writer lock is never held while reading
//! files. Files that went away are deactivated, never deleted, so they can come back.
//!
//! The walk follows symlinks that stay inside the media folder and refuses the rest;
//! what it refuses is logged once per path for the life of the `Scanner`, since the
//! daemon scans every few minutes and the same stray `.DS_Store` should not fill the
//! journal.

pub mod convert;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use ring::digest;
use rusqlite::Connection;

use crate::config::Config;
use crate::db;
use crate::domain::status::MediaKind;

/// The category of files directly in the media folder.
pub const UNCATEGORIZED: &str = "uncategorized";

/// Names that browsers and upload tools give a file until it is complete.
const PARTIAL_SUFFIXES: [&str; 4] = [".part", ".tmp", ".crdownload", ".partial"];

/// Reads go through one buffer of this size, whatever the size of the file.
const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// A batch ends after this many files or bytes read, whichever comes first: the
/// byte limit keeps a folder of long videos from holding back a commit for minutes.
const BATCH_FILES: usize = 500;
const BATCH_BYTES: u64 = 256 * 1024 * 1024;

/// Deeper than this is a symlink maze, not a photo library.
const MAX_DEPTH: usize = 32;

/// "image" or "video" for the extensions Instagram Stories accept, by extension
/// (any case); `None` for anything else.
pub fn kind_of(path: &Path) -> Option<MediaKind> {
    let extension = path.extension()?.to_str()?;
    const KINDS: [(&str, MediaKind); 6] = [
        ("jpg", MediaKind::Image),
        ("jpeg", MediaKind::Image),
        ("png", MediaKind::Image),
        ("webp", MediaKind::Image),
        ("mp4", MediaKind::Video),
        ("mov", MediaKind::Video),
    ];
    KINDS
        .iter()
        .find(|(ext, _)| extension.eq_ignore_ascii_case(ext))
        .map(|&(_, kind)| kind)
}

/// The category of a file from its path relative to the media folder: its top-level
/// folder, or "uncategorized" for a file in the root.
pub fn category_of(relative_path: &str) -> &str {
    match relative_path.split_once('/') {
        Some((top, _)) => top,
        None => UNCATEGORIZED,
    }
}

/// Why a file or folder with this name is not looked at, if it is not.
fn ignore_reason(name: &str, is_dir: bool) -> Option<&'static str> {
    if name.starts_with('.') {
        return Some("hidden");
    }
    if name.starts_with('~') {
        return Some("temporary file (name starts with ~)");
    }
    let ends_with = |suffix: &str| {
        name.len() >= suffix.len()
            && name.as_bytes()[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    if !is_dir && PARTIAL_SUFFIXES.iter().any(|s| ends_with(s)) {
        return Some("partial upload");
    }
    None
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryCounts {
    /// Files added or back after being gone.
    pub new: usize,
    /// Files whose content changed.
    pub changed: usize,
    /// Files deactivated.
    pub gone: usize,
    /// Distinct active contents after the scan (the number of items to post).
    pub active: usize,
}

#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    /// Files indexed for the first time, or active again after being gone.
    pub new: usize,
    /// Files whose content changed (a new sha256).
    pub changed: usize,
    /// Files deactivated: removed, or ignored now.
    pub gone: usize,
    /// Active files with the same content as before, including those read again
    /// because only their mtime changed.
    pub unchanged: usize,
    /// Paths refused this scan (hidden, partial, empty, symlink outside…).
    pub ignored: usize,
    /// Files or folders that could not be read; their rows are left as they were.
    pub unreadable: usize,
    /// Active files whose content is also at another active path.
    pub duplicates: usize,
    pub bytes_hashed: u64,
    pub per_category: BTreeMap<String, CategoryCounts>,
    /// sha256 of every content whose rows were added, changed, deactivated or
    /// reactivated in this scan (old and new hash of a changed file), for the caller
    /// to update each chat's view. Sorted, without repeats.
    pub touched_content: Vec<String>,
    pub duration: Duration,
}

impl ScanReport {
    /// "12 new, 1 changed, 2 gone, 340 unchanged (3 ignored) in 1.2 s", then one line
    /// per category: "quotes: 120 items (+3, −1)".
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} new, {} changed, {} gone, {} unchanged",
            self.new, self.changed, self.gone, self.unchanged
        );
        let notes: Vec<String> = [
            (self.ignored, "ignored", "ignored"),
            (self.unreadable, "unreadable", "unreadable"),
            (self.duplicates, "duplicate", "duplicates"),
        ]
        .into_iter()
        .filter(|&(n, _, _)| n > 0)
        .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect();
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        text.push_str(&format!(" in {}", format_duration(self.duration)));
        for (category, counts) in &self.per_category {
            let noun = if counts.active == 1 { "item" } else { "items" };
            text.push_str(&format!("\n{category}: {} {noun}", counts.active));
            let mut changes = Vec::new();
            if counts.new > 0 {
                changes.push(format!("+{}", counts.new));
            }
            if counts.changed > 0 {
                changes.push(format!("{} changed", counts.changed));
            }
            if counts.gone > 0 {
                changes.push(format!("−{}", counts.gone));
            }
            if !changes.is_empty() {
                text.push_str(&format!(" ({})", changes.join(", ")));
            }
        }
        text
    }
}

fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Listing the folder; `files_seen` counts every file looked at so far.
    Walking { files_seen: usize },
    /// Reading new and changed files; `bytes` read so far.
    Hashing {
        done: usize,
        total: usize,
        bytes: u64,
    },
}

/// Scans the media folder; lives as long as the process so that each refused path
/// is logged once, not at every rescan.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Paths (relative to the media folder) already logged as ignored or unreadable.
    logged: HashSet<String>,
}

/// An indexed file, as small as it can be: 10,000 of them are about a megabyte.
struct Known {
    id: i64,
    size: i64,
    mtime_ns: i64,
    sha256: [u8; 32],
    is_active: bool,
    /// Found in this scan (or left alone on purpose, when it could not be read).
    seen: bool,
}

/// A file the walk found that needs a write.
struct Work {
    relative_path: Box<str>,
    kind: MediaKind,
    /// Size or mtime differ from the index (or it has no row): read it. Otherwise
    /// an inactive row is back unchanged and only needs reactivating.
    read: bool,
}

struct Hashed {
    size: i64,
    mtime_ns: i64,
    sha256: [u8; 32],
}

enum Outcome {
    Read(Hashed),
    Reactivate,
    /// Deleted between the walk and the read.
    Vanished,
    /// Became empty or not a regular file between the walk and the read.
    Ignored(&'static str),
    /// Its size changed while it was read: still being written. The next scan
    /// reads it again.
    Busy,
    Unreadable(io::Error),
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner::default()
    }

    /// The number of paths logged as ignored or unreadable so far.
    pub fn logged_paths(&self) -> usize {
        self.logged.len()
    }

    /// Scans `media_dir` into the media_items table. A missing media dir is an error
    /// with a clear message (the caller logs it); `now` is stored as
    /// first_seen/last_seen text.
    pub fn scan(
        &mut self,
        conn: &mut Connection,
        media_dir: &Path,
        now: DateTime<Utc>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ScanReport> {
        let started = Instant::now();
        // Checked before anything is written: an unmounted USB disk must not
        // deactivate the whole library.
        let root = match fs::canonicalize(media_dir) {
            Ok(root) => root,
            Err(err) if err.kind() == io::ErrorKind::NotFound => bail!(
                "{}: the media folder does not exist (create it, or point [media] dir elsewhere)",
                media_dir.display()
            ),
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("{}: opening the media folder", media_dir.display()))
            }
        };
        fs::read_dir(&root)
            .with_context(|| format!("{}: reading the media folder", media_dir.display()))?;

        let mut index: HashMap<Box<str>, Known> = HashMap::new();
        db::media::each_indexed_file(conn, &mut |file| {
            let known = Known {
                id: file.id,
                size: file.size,
                mtime_ns: file.mtime_ns,
                sha256: sha256_from_hex(&file.sha256),
                is_active: file.is_active,
                seen: false,
            };
            index.insert(file.path.into_boxed_str(), known);
        })
        .context("loading the media index")?;

        let mut scan = Scan {
            media_dir,
            root: &root,
            now,
            index,
            logged: &mut self.logged,
            report: ScanReport::default(),
            ancestors: Vec::new(),
            files_seen: 0,
            progress,
        };
        let work = scan.walk()?;
        scan.read_and_record(conn, &work)?;
        drop(work);
        scan.deactivate_unseen(conn)?;
        let mut report = scan.finish();
        report.duration = started.elapsed();
        Ok(report)
    }
}

/// The state of one scan.
struct Scan<'a> {
    /// As configured, for messages.
    media_dir: &'a Path,
    /// Canonical, for walking and for telling whether a symlink leads outside.
    root: &'a Path,
    now: DateTime<Utc>,
    index: HashMap<Box<str>, Known>,
    logged: &'a mut HashSet<String>,
    report: ScanReport,
    /// Device and inode of each folder between the root and the one being walked,
    /// to stop at a symlink that leads back up.
    ancestors: Vec<(u64, u64)>,
    files_seen: usize,
    progress: &'a mut dyn FnMut(Progress),
}

impl Scan<'_> {
    /// Walks the tree; returns the files to read or reactivate. Files that need
    /// nothing are marked seen and counted as unchanged on the way.
    fn walk(&mut self) -> Result<Vec<Work>> {
        let root_meta = fs::metadata(self.root)
            .with_context(|| format!("{}: reading the media folder", self.media_dir.display()))?;
        if !root_meta.is_dir() {
            bail!(
                "{}: the media folder is not a folder",
                self.media_dir.display()
            );
        }
        self.ancestors.push((root_meta.dev(), root_meta.ino()));
        let mut work = Vec::new();
        let root = self.root;
        self.walk_dir(root, "", &mut work);
        self.ancestors.pop();
        (self.progress)(Progress::Walking {
            files_seen: self.files_seen,
        });
        Ok(work)
    }

    fn walk_dir(&mut self, dir: &Path, relative_dir: &str, work: &mut Vec<Work>) {
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(err) => {
                self.unreadable_folder(relative_dir, &err);
                return;
            }
        };
        // Sorted, so that ids follow the names and the first copy of a duplicate
        // is the one that sorts first.
        let mut entries: Vec<(OsString, fs::DirEntry)> = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => entries.push((entry.file_name(), entry)),
                Err(err) => {
                    self.unreadable_folder(relative_dir, &err);
                    break;
                }
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        for (name, entry) in entries {
            let Some(name) = name.to_str() else {
                let lossy = join(relative_dir, &name.to_string_lossy());
                self.ignored(&lossy, "the name is not valid UTF-8");
                continue;
            };
            let relative_path = join(relative_dir, name);
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                // Of unknown type, so possibly a folder.
                Err(err) => {
                    self.unreadable_folder(&relative_path, &err);
                    continue;
                }
            };
            if let Some(reason) = ignore_reason(name, file_type.is_dir()) {
                self.ignored(&relative_path, reason);
                continue;
            }
            let metadata = if file_type.is_symlink() {
                match self.follow_symlink(&entry.path()) {
                    Ok(metadata) => metadata,
                    Err(reason) => {
                        self.ignored(&relative_path, &reason);
                        continue;
                    }
                }
            } else {
                match entry.metadata() {
                    Ok(metadata) => metadata,
                    // Deleted since the listing: gone, like a file never listed.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        self.unreadable_folder(&relative_path, &err);
                        continue;
                    }
                }
            };
            if metadata.is_dir() {
                let id = (metadata.dev(), metadata.ino());
                if self.ancestors.contains(&id) {
                    self.ignored(&relative_path, "symlink loop (leads to a folder above)");
                } else if self.ancestors.len() > MAX_DEPTH {
                    self.ignored(&relative_path, "folders nested too deep");
                } else {
                    self.ancestors.push(id);
                    self.walk_dir(&entry.path(), &relative_path, work);
                    self.ancestors.pop();
                }
            } else {
                self.walk_file(relative_path, &metadata, work);
            }
        }
    }

    /// The metadata of a symlink's target if it lies inside the media folder, or
    /// why it is refused.
    fn follow_symlink(&self, path: &Path) -> std::result::Result<Metadata, String> {
        let target = fs::canonicalize(path)
            .map_err(|err| format!("symlink cannot be followed (broken or a loop): {err}"))?;
        if !target.starts_with(self.root) {
            return Err(format!(
                "symlink leads outside the media folder (to {})",
                target.display()
            ));
        }
        fs::metadata(&target).map_err(|err| format!("symlink cannot be followed: {err}"))
    }

    fn walk_file(&mut self, relative_path: String, metadata: &Metadata, work: &mut Vec<Work>) {
        self.files_seen += 1;
        (self.progress)(Progress::Walking {
            files_seen: self.files_seen,
        });
        let Some(kind) = kind_of(Path::new(&relative_path)) else {
            return;
        };
        if !metadata.is_file() {
            self.ignored(&relative_path, "not a regular file");
            return;
        }
        if metadata.len() == 0 {
            self.ignored(&relative_path, "empty file");
            return;
        }
        let size = metadata.len() as i64;
        let mtime_ns = mtime_ns(metadata);
        let read = match self.index.get_mut(relative_path.as_str()) {
            Some(known) if known.size == size && known.mtime_ns == mtime_ns => {
                known.seen = true;
                if known.is_active {
                    self.report.unchanged += 1;
                    return;
                }
                false
            }
            _ => true,
        };
        work.push(Work {
            relative_path: relative_path.into_boxed_str(),
            kind,
            read,
        });
    }

    /// Reads the files the walk found new or changed and records every result, one
    /// transaction per batch. Files are read before the batch's transaction opens,
    /// so other writers wait for a few inserts, never for the disk.
    fn read_and_record(&mut self, conn: &mut Connection, work: &[Work]) -> Result<()> {
        let total = work.len();
        let mut buffer = vec![0u8; HASH_BUFFER_BYTES];
        let mut outcomes = Vec::with_capacity(BATCH_FILES.min(total));
        let mut start = 0;
        while start < total {
            let mut batch_bytes = 0u64;
            let mut end = start;
            while end < total && end - start < BATCH_FILES && batch_bytes < BATCH_BYTES {
                let item = &work[end];
                let outcome = if item.read {
                    let path = self.root.join(&*item.relative_path);
                    read_file(&path, &mut buffer, &mut batch_bytes)
                } else {
                    Outcome::Reactivate
                };
                outcomes.push(outcome);
                end += 1;
                (self.progress)(Progress::Hashing {
                    done: end,
                    total,
                    bytes: self.report.bytes_hashed + batch_bytes,
                });
            }
            self.report.bytes_hashed += batch_bytes;
            let tx = conn.transaction()?;
            for (item, outcome) in work[start..end].iter().zip(outcomes.drain(..)) {
                self.record(&tx, item, outcome)?;
            }
            tx.commit().context("saving the media index")?;
            start = end;
        }
        Ok(())
    }

    fn record(&mut self, conn: &Connection, item: &Work, outcome: Outcome) -> Result<()> {
        let path = &*item.relative_path;
        let category = category_of(path);
        let known = self.index.get_mut(path);
        match outcome {
            Outcome::Read(hashed) => {
                let sha256 = hex(&hashed.sha256);
                let Some(known) = known else {
                    let file = db::media::NewFile {
                        path,
                        category,
                        kind: item.kind,
                        size: hashed.size,
                        mtime_ns: hashed.mtime_ns,
                        sha256: &sha256,
                    };
                    let id = db::media::insert_file(conn, &file, self.now)?;
                    let known = Known {
                        id,
                        size: hashed.size,
                        mtime_ns: hashed.mtime_ns,
                        sha256: hashed.sha256,
                        is_active: true,
                        seen: true,
                    };
                    self.index.insert(path.into(), known);
                    self.report.new += 1;
                    category_counts(&mut self.report, category).new += 1;
                    self.report.touched_content.push(sha256);
                    return Ok(());
                };
                db::media::update_file(
                    conn,
                    known.id,
                    hashed.size,
                    hashed.mtime_ns,
                    &sha256,
                    self.now,
                )?;
                let old_sha256 = known.sha256;
                let was_active = known.is_active;
                known.seen = true;
                known.is_active = true;
                let content_changed = old_sha256 != hashed.sha256;
                if !was_active {
                    self.report.new += 1;
                    category_counts(&mut self.report, category).new += 1;
                } else if content_changed {
                    self.report.changed += 1;
                    category_counts(&mut self.report, category).changed += 1;
                } else {
                    self.report.unchanged += 1;
                }
                if content_changed {
                    self.report.touched_content.push(hex(&old_sha256));
                }
                if content_changed || !was_active {
                    self.report.touched_content.push(sha256);
                }
            }
            Outcome::Reactivate => {
                let Some(known) = known else {
                    return Ok(());
                };
                db::media::reactivate_item(conn, known.id, self.now)?;
                known.is_active = true;
                let sha256 = hex(&known.sha256);
                self.report.new += 1;
                category_counts(&mut self.report, category).new += 1;
                self.report.touched_content.push(sha256);
            }
            // Not marked seen: an indexed file is deactivated with the others gone.
            Outcome::Vanished => {}
            Outcome::Ignored(reason) => self.ignored(path, reason),
            Outcome::Busy => {
                if let Some(known) = known {
                    known.seen = true;
                }
                log::debug!(
                    "{}: changed while being read; reading it at the next scan",
                    self.media_dir.join(path).display()
                );
            }
            Outcome::Unreadable(err) => self.unreadable(path, &err),
        }
        Ok(())
    }

    /// Deactivates every active row whose file was not found, in batches.
    fn deactivate_unseen(&mut self, conn: &mut Connection) -> Result<()> {
        let mut tx = conn.transaction()?;
        let mut in_batch = 0;
        for (path, known) in self.index.iter_mut() {
            if known.seen || !known.is_active {
                continue;
            }
            db::media::deactivate_item(&tx, known.id)?;
            known.is_active = false;
            self.report.gone += 1;
            category_counts(&mut self.report, category_of(path)).gone += 1;
            self.report.touched_content.push(hex(&known.sha256));
            in_batch += 1;
            if in_batch == BATCH_FILES {
                tx.commit().context("saving the media index")?;
                tx = conn.transaction()?;
                in_batch = 0;
            }
        }
        tx.commit().context("saving the media index")?;
        Ok(())
    }

    /// Counts contents per category and duplicates from the index, which now
    /// mirrors the table: cheaper than asking SQLite to sort every hash.
    fn finish(self) -> ScanReport {
        let mut report = self.report;
        let mut active_files = 0;
        let mut contents = HashSet::with_capacity(self.index.len());
        let mut contents_by_category = HashSet::with_capacity(self.index.len());
        for (path, known) in &self.index {
            if known.is_active {
                active_files += 1;
                contents.insert(&known.sha256);
                contents_by_category.insert((category_of(path), &known.sha256));
            }
        }
        for (category, _) in contents_by_category {
            category_counts(&mut report, category).active += 1;
        }
        report.duplicates = active_files - contents.len();
        report.touched_content.sort_unstable();
        report.touched_content.dedup();
        report
    }

    fn ignored(&mut self, relative_path: &str, reason: &str) {
        self.report.ignored += 1;
        if self.logged.insert(relative_path.to_owned()) {
            log::info!(
                "{}: ignored: {reason}",
                self.media_dir.join(relative_path).display()
            );
        }
    }

    /// Logs the failure and leaves what the index says about the file as it was: a
    /// file that cannot be read for a moment is not gone.
    fn unreadable(&mut self, relative_path: &str, err: &io::Error) {
        self.report.unreadable += 1;
        if self.logged.insert(relative_path.to_owned()) {
            log::warn!(
                "{}: cannot be read, skipped: {err}",
                self.media_dir.join(relative_path).display()
            );
        }
        if let Some(known) = self.index.get_mut(relative_path) {
            known.seen = true;
        }
    }

    /// Like `unreadable`, for everything under the path: a folder that cannot be
    /// listed for a moment must not empty its category.
    fn unreadable_folder(&mut self, relative_path: &str, err: &io::Error) {
        self.unreadable(relative_path, err);
        for (path, known) in self.index.iter_mut() {
            if is_within(path, relative_path) {
                known.seen = true;
            }
        }
    }
}

fn category_counts<'r>(report: &'r mut ScanReport, category: &str) -> &'r mut CategoryCounts {
    if !report.per_category.contains_key(category) {
        report
            .per_category
            .insert(category.to_owned(), CategoryCounts::default());
    }
    report
        .per_category
        .get_mut(category)
        .expect("just inserted")
}

/// Reads a whole file through `buffer`, adding what it read to `bytes`. Size and
/// mtime come from the open file, before reading: if the file changes afterwards,
/// its mtime will differ from the stored one and the next scan reads it again.
fn read_file(path: &Path, buffer: &mut [u8], bytes: &mut u64) -> Outcome {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Outcome::Vanished,
        Err(err) => return Outcome::Unreadable(err),
    };
    let metadata = match file.metadata() {
        Ok(metadata) => metadata,
        Err(err) => return Outcome::Unreadable(err),
    };
    if !metadata.is_file() {
        return Outcome::Ignored("not a regular file");
    }
    if metadata.len() == 0 {
        return Outcome::Ignored("empty file");
    }
    let mut context = digest::Context::new(&digest::SHA256);
    let mut read = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                context.update(&buffer[..n]);
                read += n as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                *bytes += read;
                return Outcome::Unreadable(err);
            }
        }
    }
    *bytes += read;
    if read != metadata.len() {
        return Outcome::Busy;
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(context.finish().as_ref());
    Outcome::Read(Hashed {
        size: metadata.len() as i64,
        mtime_ns: mtime_ns(&metadata),
        sha256,
    })
}

fn mtime_ns(metadata: &Metadata) -> i64 {
    metadata
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime_nsec())
}

fn join(relative_dir: &str, name: &str) -> String {
    if relative_dir.is_empty() {
        name.to_owned()
    } else {
        format!("{relative_dir}/{name}")
    }
}

/// Whether `path` is `dir` or inside it; everything is inside the root ("").
fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for b in bytes {
        text.push(DIGITS[(b >> 4) as usize] as char);
        text.push(DIGITS[(b & 0xf) as usize] as char);
    }
    text
}

/// The stored hex back to bytes; a malformed value (never written by this module)
/// reads as zeros, which only affects the hashes reported as touched.
fn sha256_from_hex(text: &str) -> [u8; 32] {
    fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => 0,
        }
    }
    let mut bytes = [0u8; 32];
    if text.len() == 64 {
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = nibble(pair[0]) << 4 | nibble(pair[1]);
        }
    }
    bytes
}

/// `storyline scan`: scans the configured media folder into the database, showing
/// progress on stderr when it is a terminal. The caller prints the summary.
pub fn run_scan_command(config: &Config) -> Result<ScanReport> {
    let mut conn = db::open(&config.storage.database)?;
    let mut scanner = Scanner::new();
    if !io::stderr().is_terminal() {
        return scanner.scan(&mut conn, &config.media.dir, Utc::now(), &mut |_| {});
    }
    let mut line = ProgressLine::default();
    let report = scanner.scan(&mut conn, &config.media.dir, Utc::now(), &mut |p| {
        line.show(p)
    });
    line.clear();
    report
}

/// One line on a terminal, rewritten at most ten times a second.
#[derive(Default)]
struct ProgressLine {
    last_shown: Option<Instant>,
}

impl ProgressLine {
    fn show(&mut self, progress: Progress) {
        let now = Instant::now();
        if self
            .last_shown
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last_shown = Some(now);
        let text = match progress {
            Progress::Walking { files_seen } => format!("scanning: {files_seen} files seen"),
            Progress::Hashing { done, total, bytes } => format!(
                "reading: {done}/{total} files, {:.1} MB",
                bytes as f64 / 1_000_000.0
            ),
        };
        // Progress is a courtesy: a closed stderr must not fail the scan.
        let _ = write!(io::stderr(), "\r{text}\x1b[K");
    }

    fn clear(&self) {
        if self.last_shown.is_some() {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::PathBuf;
    use std::time::SystemTime;

    use chrono::TimeZone;
    use expect_test::{expect, Expect};

    struct Fixture {
        dir: tempfile::TempDir,
        media: PathBuf,
        conn: Connection,
        scanner: Scanner,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let media = dir.path().join("media");
            fs::create_dir(&media).unwrap();
            let conn = db::open(&dir.path().join("test.db")).unwrap();
            Fixture {
                dir,
                media,
                conn,
                scanner: Scanner::new(),
            }
        }

        fn path(&self, relative_path: &str) -> PathBuf {
            self.media.join(relative_path)
        }

        fn write(&self, relative_path: &str, content: &[u8]) {
            let path = self.path(relative_path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, content).unwrap();
        }

        fn set_mtime(&self, relative_path: &str, seconds_since_epoch: u64) {
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds_since_epoch);
            File::options()
                .write(true)
                .open(self.path(relative_path))
                .unwrap()
                .set_modified(time)
                .unwrap();
        }

        fn scan(&mut self) -> ScanReport {
            self.try_scan().unwrap()
        }

        fn try_scan(&mut self) -> Result<ScanReport> {
            let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
            let media = self.media.clone();
            self.scanner.scan(&mut self.conn, &media, now, &mut |_| {})
        }

        /// The report's per-category content counts agree with the table's.
        fn check_counts_match_table(&self, report: &ScanReport) {
            let from_report: Vec<(String, i64)> = report
                .per_category
                .iter()
                .filter(|(_, counts)| counts.active > 0)
                .map(|(category, counts)| (category.clone(), counts.active as i64))
                .collect();
            let from_table = db::media::active_categories(&self.conn).unwrap();
            assert_eq!(from_report, from_table);
        }

        fn rows(&self) -> Vec<db::media::IndexedFile> {
            let mut rows = Vec::new();
            db::media::each_indexed_file(&self.conn, &mut |row| rows.push(row)).unwrap();
            rows.sort_by(|a, b| a.path.cmp(&b.path));
            rows
        }

        fn row(&self, relative_path: &str) -> db::media::IndexedFile {
            self.rows()
                .into_iter()
                .find(|r| r.path == relative_path)
                .unwrap_or_else(|| panic!("no row for {relative_path}"))
        }

        /// The index as text: one line per row, "path category kind [inactive]".
        fn check_index(&self, expected: Expect) {
            let mut text = String::new();
            for row in self.rows() {
                let item = db::media::item_by_id(&self.conn, row.id).unwrap().unwrap();
                text.push_str(&format!("{} {} {}", item.path, item.category, item.kind));
                if !item.is_active {
                    text.push_str(" inactive");
                }
                text.push('\n');
            }
            expected.assert_eq(&text);
        }
    }

    fn sha256_hex(content: &[u8]) -> String {
        let digest = digest::digest(&digest::SHA256, content);
        hex(digest.as_ref().try_into().unwrap())
    }

    #[test]
    fn kinds_by_extension() {
        let cases = [
            ("a.jpg", Some(MediaKind::Image)),
            ("a.JPEG", Some(MediaKind::Image)),
            ("dir/a.Png", Some(MediaKind::Image)),
            ("a.webp", Some(MediaKind::Image)),
            ("a.mp4", Some(MediaKind::Video)),
            ("a.MOV", Some(MediaKind::Video)),
            ("a.gif", None),
            ("a.txt", None),
            ("jpg", None),
            ("a.jpg.part", None),
            ("a", None),
        ];
        for (path, kind) in cases {
            assert_eq!(kind_of(Path::new(path)), kind, "{path}");
        }
    }

    #[test]
    fn categories_are_top_level_folders() {
        let mut f = Fixture::new();
        f.write("root.jpg", b"root");
        f.write("quotes/a.png", b"a");
        f.write("quotes/deep/er/b.WEBP", b"b");
        f.write("travel/clip.MOV", b"clip");
        f.write("travel/c.mp4", b"c");
        f.write("travel/d.jpeg", b"d");
        f.write("travel/notes.txt", b"not media");
        fs::create_dir(f.path("empty-folder")).unwrap();
        let report = f.scan();
        assert_eq!((report.new, report.ignored), (6, 0));
        f.check_index(expect![[r#"
            quotes/a.png quotes image
            quotes/deep/er/b.WEBP quotes image
            root.jpg uncategorized image
            travel/c.mp4 travel video
            travel/clip.MOV travel video
            travel/d.jpeg travel image
        "#]]);
        assert_eq!(
            db::media::active_categories(&f.conn).unwrap(),
            vec![
                ("quotes".to_string(), 2),
                ("travel".to_string(), 3),
                ("uncategorized".to_string(), 1)
            ]
        );
        let row = f.row("travel/c.mp4");
        assert_eq!((row.size, row.sha256), (1, sha256_hex(b"c")));
    }

    #[test]
    fn ignore_rules_are_applied_and_logged_once() {
        let mut f = Fixture::new();
        let outside = f.dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.jpg"), b"outside").unwrap();

        f.write("root.jpg", b"root");
        f.write("travel/t.jpg", b"t");
        // Each of these is refused; the comment says why.
        f.write(".hidden.jpg", b"x"); // hidden file
        f.write(".thumbnails/a.jpg", b"x"); // hidden folder
        f.write("quotes/.cache/b.jpg", b"x"); // hidden folder in a category
        f.write("~lock.jpg", b"x");
        f.write("quotes/a.jpg.part", b"x");
        f.write("quotes/b.JPG.tmp", b"x");
        f.write("quotes/c.mp4.crdownload", b"x");
        f.write("quotes/d.png.partial", b"x");
        f.write("quotes/empty.jpg", b"");
        symlink(outside.join("secret.jpg"), f.path("quotes/out.jpg")).unwrap();
        symlink(&outside, f.path("outside-folder")).unwrap();
        let not_utf8 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
        fs::write(f.media.join(not_utf8), b"x").unwrap();
        symlink("nowhere.jpg", f.path("quotes/dangling.jpg")).unwrap();
        symlink("self.jpg", f.path("quotes/self.jpg")).unwrap();
        symlink("..", f.path("quotes/up")).unwrap();
        symlink(".", f.path("quotes/here")).unwrap();
        // These are followed: they stay inside.
        symlink("../root.jpg", f.path("quotes/in.jpg")).unwrap();
        symlink("travel", f.path("linked")).unwrap();

        let report = f.scan();
        f.check_index(expect![[r#"
            linked/t.jpg linked image
            quotes/in.jpg quotes image
            root.jpg uncategorized image
            travel/t.jpg travel image
        "#]]);
        assert_eq!(report.ignored, 16);
        assert_eq!(f.scanner.logged_paths(), 16);
        assert_eq!(report.duplicates, 2);
        f.check_counts_match_table(&report);

        let again = f.scan();
        f.check_counts_match_table(&again);
        assert_eq!((again.ignored, again.unchanged, again.new), (16, 4, 0));
        assert_eq!(f.scanner.logged_paths(), 16, "each path is logged once");
    }

    #[test]
    fn a_file_that_becomes_ignored_is_deactivated() {
        let mut f = Fixture::new();
        f.write("a.jpg", b"a");
        f.write("b.jpg", b"b");
        f.scan();
        fs::write(f.path("a.jpg"), b"").unwrap();
        fs::rename(f.path("b.jpg"), f.path(".b.jpg")).unwrap();
        let report = f.scan();
        assert_eq!((report.gone, report.ignored), (2, 2));
        f.check_index(expect![[r#"
            a.jpg uncategorized image inactive
            b.jpg uncategorized image inactive
        "#]]);
    }

    #[test]
    fn unreadable_files_and_folders_are_skipped() {
        let mut f = Fixture::new();
        f.write("ok.jpg", b"ok");
        f.write("locked/kept.jpg", b"kept");
        f.scan();
        f.write("locked/new.jpg", b"new");
        f.write("secret.jpg", b"secret");
        fs::set_permissions(f.path("secret.jpg"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(f.path("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let report = f.scan();
        // Root (or CAP_DAC_OVERRIDE) reads through mode 000, so there is nothing
        // unreadable to see; the rest of the scan is still checked.
        let enforced = fs::read(f.path("secret.jpg")).is_err();
        fs::set_permissions(f.path("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(f.path("secret.jpg"), fs::Permissions::from_mode(0o644)).unwrap();
        if enforced {
            assert_eq!((report.unreadable, report.new, report.gone), (2, 0, 0));
            assert_eq!(f.scanner.logged_paths(), 2);
            assert!(
                f.row("locked/kept.jpg").is_active,
                "an unlistable folder keeps its rows"
            );
            let report = f.scan();
            assert_eq!((report.unreadable, report.new), (0, 2));
        } else {
            assert_eq!((report.unreadable, report.new), (0, 2));
        }
        assert!(f.row("ok.jpg").is_active);
    }

    #[test]
    fn a_second_scan_reads_nothing() {
        let mut f = Fixture::new();
        for i in 0..20 {
            f.write(
                &format!("c{}/f{i}.jpg", i % 3),
                format!("file {i}").as_bytes(),
            );
        }
        let first = f.scan();
        assert_eq!((first.new, first.unchanged), (20, 0));
        assert_eq!(
            first.bytes_hashed,
            (0..20)
                .map(|i| format!("file {i}").len() as u64)
                .sum::<u64>()
        );
        assert_eq!(first.touched_content.len(), 20);
        let second = f.scan();
        assert_eq!(second.bytes_hashed, 0);
        assert_eq!(
            (second.new, second.changed, second.gone, second.unchanged),
            (0, 0, 0, 20)
        );
        assert!(second.touched_content.is_empty());
    }

    #[test]
    fn a_changed_file_is_read_again_and_keeps_its_row() {
        let mut f = Fixture::new();
        f.write("q/a.jpg", b"first");
        f.write("q/b.jpg", b"same");
        f.set_mtime("q/a.jpg", 1_700_000_000);
        f.set_mtime("q/b.jpg", 1_700_000_000);
        f.scan();
        let before = f.row("q/a.jpg");
        db::media::set_telegram_file_id(&f.conn, before.id, "AgAD-a").unwrap();
        let b_id = f.row("q/b.jpg").id;
        db::media::set_telegram_file_id(&f.conn, b_id, "AgAD-b").unwrap();

        // Same size, new content and mtime; and a touch that changes nothing else.
        f.write("q/a.jpg", b"FIRST");
        f.set_mtime("q/a.jpg", 1_700_000_100);
        f.set_mtime("q/b.jpg", 1_700_000_100);
        let report = f.scan();
        assert_eq!((report.changed, report.unchanged, report.new), (1, 1, 0));
        assert_eq!(report.bytes_hashed, 9, "both were read again");
        let mut touched = vec![sha256_hex(b"first"), sha256_hex(b"FIRST")];
        touched.sort();
        assert_eq!(report.touched_content, touched);

        let after = f.row("q/a.jpg");
        assert_eq!(after.id, before.id);
        assert_eq!(after.sha256, sha256_hex(b"FIRST"));
        assert_eq!(after.mtime_ns, 1_700_000_100_000_000_000);
        let a = db::media::item_by_id(&f.conn, after.id).unwrap().unwrap();
        assert_eq!(
            a.telegram_file_id, None,
            "the cached upload showed the old content"
        );
        let b = db::media::item_by_id(&f.conn, b_id).unwrap().unwrap();
        assert_eq!(b.telegram_file_id.as_deref(), Some("AgAD-b"));

        let again = f.scan();
        assert_eq!((again.bytes_hashed, again.unchanged), (0, 2));
    }

    #[test]
    fn a_removed_file_is_deactivated_and_comes_back() {
        let mut f = Fixture::new();
        f.write("q/a.jpg", b"a");
        f.write("q/b.jpg", b"b");
        f.write("other/c.jpg", b"c");
        f.set_mtime("q/a.jpg", 1_700_000_000);
        f.scan();
        let id = f.row("q/a.jpg").id;

        fs::rename(f.path("q/a.jpg"), f.dir.path().join("a.jpg")).unwrap();
        fs::remove_dir_all(f.path("other")).unwrap();
        let report = f.scan();
        assert_eq!((report.gone, report.unchanged), (2, 1));
        let mut gone = vec![sha256_hex(b"a"), sha256_hex(b"c")];
        gone.sort();
        assert_eq!(report.touched_content, gone);
        assert_eq!(
            report.per_category["q"],
            CategoryCounts {
                gone: 1,
                active: 1,
                ..CategoryCounts::default()
            }
        );
        assert_eq!(report.per_category["other"].gone, 1);
        f.check_counts_match_table(&report);
        f.check_index(expect![[r#"
            other/c.jpg other image inactive
            q/a.jpg q image inactive
            q/b.jpg q image
        "#]]);
        assert_eq!(
            db::media::active_item_for_content(&f.conn, &sha256_hex(b"a")).unwrap(),
            None
        );

        // Moved back unchanged: reactivated without reading it.
        fs::rename(f.dir.path().join("a.jpg"), f.path("q/a.jpg")).unwrap();
        let report = f.scan();
        assert_eq!((report.new, report.gone, report.bytes_hashed), (1, 0, 0));
        assert_eq!(report.touched_content, vec![sha256_hex(b"a")]);
        let row = f.row("q/a.jpg");
        assert_eq!((row.id, row.is_active), (id, true));

        // Put back with other content: the same row, active, with the new hash.
        f.write("other/c.jpg", b"c2");
        let report = f.scan();
        assert_eq!((report.new, report.changed), (1, 0));
        f.check_counts_match_table(&report);
        assert_eq!(f.row("other/c.jpg").sha256, sha256_hex(b"c2"));
        assert!(f.row("other/c.jpg").is_active);
    }

    #[test]
    fn duplicates_are_two_rows_with_one_content() {
        let mut f = Fixture::new();
        f.write("a/one.jpg", b"same picture");
        f.write("b/two.jpg", b"same picture");
        f.write("b/three.jpg", b"same picture");
        f.write("b/other.jpg", b"other picture");
        let report = f.scan();
        assert_eq!((report.new, report.duplicates), (4, 2));
        assert_eq!(report.touched_content.len(), 2);
        assert_eq!(report.per_category["b"].active, 2);
        f.check_counts_match_table(&report);
        assert_eq!(
            db::media::active_categories(&f.conn).unwrap(),
            vec![("a".to_string(), 1), ("b".to_string(), 2)]
        );
        let sha = sha256_hex(b"same picture");
        let first = db::media::active_item_for_content(&f.conn, &sha)
            .unwrap()
            .unwrap();
        assert_eq!(first.path, "a/one.jpg");
        db::media::deactivate_item(&f.conn, first.id).unwrap();
        let next = db::media::active_item_for_content(&f.conn, &sha)
            .unwrap()
            .unwrap();
        assert_eq!(next.path, "b/three.jpg");
    }

    #[test]
    fn a_missing_media_folder_is_an_error_and_changes_nothing() {
        let mut f = Fixture::new();
        f.write("a.jpg", b"a");
        f.scan();
        fs::rename(&f.media, f.dir.path().join("elsewhere")).unwrap();
        let err = f.try_scan().unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("media folder does not exist"), "{message}");
        assert!(
            message.contains(&f.media.display().to_string()),
            "{message}"
        );
        assert!(f.row("a.jpg").is_active);
    }

    #[test]
    fn many_files_are_written_in_batches() {
        let mut f = Fixture::new();
        let n = 2 * BATCH_FILES + 7;
        for i in 0..n {
            f.write(&format!("c/{i:04}.png"), format!("{i}").as_bytes());
        }
        let mut hashing_updates = 0;
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let report = f
            .scanner
            .scan(&mut f.conn, &f.media, now, &mut |p| {
                if let Progress::Hashing { done, total, .. } = p {
                    assert!(done <= total && total == n);
                    hashing_updates += 1;
                }
            })
            .unwrap();
        assert_eq!((report.new, hashing_updates), (n, n));
        for i in 0..BATCH_FILES + 1 {
            fs::remove_file(f.path(&format!("c/{i:04}.png"))).unwrap();
        }
        let report = f.scan();
        assert_eq!(
            (report.gone, report.unchanged),
            (BATCH_FILES + 1, n - BATCH_FILES - 1)
        );
        assert_eq!(report.per_category["c"].active, n - BATCH_FILES - 1);
    }

    #[test]
    fn summary_text() {
        let mut report = ScanReport {
            new: 12,
            changed: 1,
            gone: 2,
            unchanged: 340,
            ignored: 3,
            duplicates: 1,
            duration: Duration::from_millis(1234),
            ..ScanReport::default()
        };
        let counts = |new, changed, gone, active| CategoryCounts {
            new,
            changed,
            gone,
            active,
        };
        report
            .per_category
            .insert("quotes".into(), counts(3, 0, 1, 120));
        report
            .per_category
            .insert("travel".into(), counts(9, 1, 1, 1));
        report
            .per_category
            .insert("uncategorized".into(), counts(0, 0, 0, 7));
        expect![[r#"
            12 new, 1 changed, 2 gone, 340 unchanged (3 ignored, 1 duplicate) in 1.2 s
            quotes: 120 items (+3, −1)
            travel: 1 item (+9, 1 changed, −1)
            uncategorized: 7 items"#]]
        .assert_eq(&report.summary());

        let quiet = ScanReport {
            unchanged: 5,
            duration: Duration::from_millis(38),
            ..ScanReport::default()
        };
        expect!["0 new, 0 changed, 0 gone, 5 unchanged in 38 ms"].assert_eq(&quiet.summary());
    }
}
