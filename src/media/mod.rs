//! Part `media/`: the files — the scanner (this module), image conversion and
//! chat previews (`convert`), the MP4 probe, and the `/insights` chart drawn as
//! a PNG (`chart`). Knows no handler: it never talks to
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
//! journal. `storyline doctor` counts the folder through the same walk (`survey`).
//!
//! Only real media is indexed: a file with an extension Storyline does not post is
//! counted per extension, and one whose first bytes (or, for a video, box
//! structure) are not what its extension says is broken, named in the report and
//! never indexed; an indexed file found broken is deactivated. The daemon's first
//! scan also checks the indexed files it does not read again, by their first bytes.

pub mod chart;
pub mod convert;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use ring::digest;
use rusqlite::Connection;

use crate::config::Config;
use crate::db;
use crate::domain::markup::plural;
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

/// A file's extension as the scan report groups files: lower case, without the
/// dot; "" for a name without one.
pub fn extension_of(relative_path: &str) -> String {
    Path::new(relative_path)
        .extension()
        .map(|ext| ext.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// How a JPEG and a PNG begin; a WebP is a RIFF file of form `WEBP`.
const JPEG_MAGIC: &[u8] = b"\xFF\xD8\xFF";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Why the content of a file of `file_len` bytes is not what its extension
/// promises, if it is not: an image must begin as a JPEG, PNG or WebP does; a
/// video must have the box structure of an MP4 or QuickTime movie. Reads the
/// first 12 bytes of an image and the box headers of a video; an error is the
/// reader's, never the content's.
pub fn content_problem<R: Read + Seek>(
    kind: MediaKind,
    r: &mut R,
    file_len: u64,
) -> io::Result<Option<&'static str>> {
    match kind {
        MediaKind::Image => {
            r.seek(io::SeekFrom::Start(0))?;
            let mut head = [0u8; 12];
            let mut filled = 0;
            while filled < head.len() {
                match r.read(&mut head[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
            let head = &head[..filled];
            let is_webp = head.len() == 12 && head.starts_with(b"RIFF") && &head[8..] == b"WEBP";
            let is_image = head.starts_with(JPEG_MAGIC) || head.starts_with(PNG_MAGIC) || is_webp;
            Ok((!is_image).then_some("it is not a JPEG, PNG or WebP image"))
        }
        MediaKind::Video => Ok(convert::mp4_structure_problem(r, file_len)),
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
    /// Files not posted for their extension: how many per extension (as
    /// `extension_of` gives it).
    pub unsupported: BTreeMap<String, usize>,
    /// Files whose content is not what their extension says (`content_problem`):
    /// their relative paths per extension, in walk order. Never indexed; an
    /// indexed one is deactivated.
    pub broken: BTreeMap<String, Vec<String>>,
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
    /// per category: "quotes: 120 items (+3, −1)". What is not posted and why is
    /// `ui::scan_text`'s to say.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} new, {} changed, {} gone, {} unchanged",
            self.new, self.changed, self.gone, self.unchanged
        );
        let unsupported: usize = self.unsupported.values().sum();
        let broken: usize = self.broken.values().map(Vec::len).sum();
        let notes: Vec<String> = [
            (self.ignored, "ignored", "ignored"),
            (self.unreadable, "unreadable", "unreadable"),
            (self.duplicates, "duplicate", "duplicates"),
            (unsupported, "unsupported", "unsupported"),
            (broken, "broken", "broken"),
        ]
        .into_iter()
        .filter(|&(n, _, _)| n > 0)
        .map(|(n, one, many)| plural(n, one, many))
        .collect();
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        text.push_str(&format!(" in {}", format_duration(self.duration)));
        for (category, counts) in &self.per_category {
            text.push_str(&format!(
                "\n{category}: {}",
                plural(counts.active, "item", "items")
            ));
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
    /// Paths (relative to the media folder) already logged as ignored, unreadable
    /// or broken.
    logged: HashSet<String>,
    /// The next scan checks the content of every indexed file it does not read
    /// (its first bytes only), so files indexed before contents were checked, or
    /// changed without a new size or mtime, are caught: the daemon's first scan
    /// after a start does (`checking_indexed_files`).
    check_indexed: bool,
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

/// A file the walk found that needs reading, checking or a write.
struct Work {
    relative_path: Box<str>,
    kind: MediaKind,
    action: Action,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Size or mtime differ from the index (or it has no row): check and hash it.
    Read,
    /// An inactive row is back unchanged: check its content and reactivate it.
    Reactivate,
    /// An active row, unchanged: check its content only (`check_indexed`).
    Check,
}

struct Hashed {
    size: i64,
    mtime_ns: i64,
    sha256: [u8; 32],
}

enum Outcome {
    Read(Hashed),
    Reactivate,
    /// Checked again and still what it was.
    Unchanged,
    /// Its content is not what its extension says (`content_problem`).
    Broken(&'static str),
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

    /// A scanner whose first scan also checks the content of the indexed files
    /// it does not read; the daemon's. (`storyline scan` does not: a warm
    /// rescan from the command line stays a walk of stats.)
    pub fn checking_indexed_files() -> Scanner {
        Scanner {
            check_indexed: true,
            ..Scanner::default()
        }
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
        let root = open_media_folder(media_dir)?;

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
            check_indexed: self.check_indexed,
            report: ScanReport::default(),
            files_seen: 0,
            progress,
        };
        let work = scan.walk()?;
        scan.read_and_record(conn, &work)?;
        drop(work);
        scan.deactivate_unseen(conn)?;
        let mut report = scan.finish();
        report.duration = started.elapsed();
        self.check_indexed = false;
        Ok(report)
    }
}

/// The canonical path of the media folder, once it is known to be a folder that
/// can be listed; else an error that says so in words.
fn open_media_folder(media_dir: &Path) -> Result<std::path::PathBuf> {
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
    let metadata = fs::metadata(&root)
        .with_context(|| format!("{}: reading the media folder", media_dir.display()))?;
    if !metadata.is_dir() {
        bail!("{}: the media folder is not a folder", media_dir.display());
    }
    fs::read_dir(&root)
        .with_context(|| format!("{}: reading the media folder", media_dir.display()))?;
    Ok(root)
}

/// What the walk found at one path under the media folder.
enum Found<'a> {
    /// A regular, non-empty file with an extension Storyline posts.
    Media {
        relative_path: String,
        kind: MediaKind,
        metadata: &'a Metadata,
    },
    /// A regular file with an extension Storyline does not post.
    Unsupported { relative_path: &'a str },
    /// Left out by an ignore rule (hidden, partial upload, empty, a symlink
    /// leading outside or in a loop…).
    Ignored {
        relative_path: &'a str,
        reason: &'a str,
    },
    /// A folder, or an entry of unknown type, that could not be read: nothing is
    /// known of what is under it.
    Unreadable {
        relative_path: &'a str,
        error: &'a io::Error,
    },
}

/// The one walk of the media folder and its ignore rules, for the scanner and
/// for `storyline doctor`: calls `visit` for every file and every refused path
/// under `root` (canonical, from `open_media_folder`), in name order within a
/// folder. Symlinks are followed while they stay inside `root`; one leading to a
/// folder above it (a loop) is refused.
fn walk_media_folder(root: &Path, visit: &mut dyn FnMut(Found<'_>)) -> io::Result<()> {
    let root_meta = fs::metadata(root)?;
    let mut walk = Walk {
        root,
        ancestors: vec![(root_meta.dev(), root_meta.ino())],
        visit,
    };
    walk.dir(root, "");
    Ok(())
}

struct Walk<'a> {
    /// Canonical, for telling whether a symlink leads outside.
    root: &'a Path,
    /// Device and inode of each folder between the root and the one being walked,
    /// to stop at a symlink that leads back up.
    ancestors: Vec<(u64, u64)>,
    visit: &'a mut dyn FnMut(Found<'_>),
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, relative_dir: &str) {
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(err) => {
                self.unreadable(relative_dir, &err);
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
                    self.unreadable(relative_dir, &err);
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
                    self.unreadable(&relative_path, &err);
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
                        self.unreadable(&relative_path, &err);
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
                    self.dir(&entry.path(), &relative_path);
                    self.ancestors.pop();
                }
            } else {
                self.file(relative_path, &metadata);
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

    fn file(&mut self, relative_path: String, metadata: &Metadata) {
        let Some(kind) = kind_of(Path::new(&relative_path)) else {
            // A socket or a device is no one's photo: not worth a word.
            if metadata.is_file() {
                (self.visit)(Found::Unsupported {
                    relative_path: &relative_path,
                });
            }
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
        (self.visit)(Found::Media {
            relative_path,
            kind,
            metadata,
        });
    }

    fn ignored(&mut self, relative_path: &str, reason: &str) {
        (self.visit)(Found::Ignored {
            relative_path,
            reason,
        });
    }

    fn unreadable(&mut self, relative_path: &str, error: &io::Error) {
        (self.visit)(Found::Unreadable {
            relative_path,
            error,
        });
    }
}

/// What the media folder holds, seen as the scanner sees it (the same walk,
/// rules and content check) but without the index: for `storyline doctor`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Files that would be posted: photos and videos, and per category.
    pub images: usize,
    pub videos: usize,
    pub per_category: BTreeMap<String, usize>,
    /// As in `ScanReport`.
    pub unsupported: BTreeMap<String, usize>,
    pub broken: BTreeMap<String, Vec<String>>,
    pub ignored: usize,
    pub unreadable: usize,
}

/// Counts the media folder's files without hashing or writing anything; reads
/// the first bytes (a video's box headers) of each photo and video.
pub fn survey(media_dir: &Path) -> Result<Survey> {
    let root = open_media_folder(media_dir)?;
    let mut survey = Survey::default();
    walk_media_folder(&root, &mut |found| match found {
        Found::Media {
            relative_path,
            kind,
            ..
        } => match check_file(&root.join(&relative_path), kind) {
            None => {
                match kind {
                    MediaKind::Image => survey.images += 1,
                    MediaKind::Video => survey.videos += 1,
                }
                *survey
                    .per_category
                    .entry(category_of(&relative_path).to_owned())
                    .or_default() += 1;
            }
            Some(Outcome::Broken(_)) => survey
                .broken
                .entry(extension_of(&relative_path))
                .or_default()
                .push(relative_path),
            Some(Outcome::Ignored(_)) => survey.ignored += 1,
            Some(Outcome::Unreadable(_)) => survey.unreadable += 1,
            Some(_) => {}
        },
        Found::Unsupported { relative_path } => {
            *survey
                .unsupported
                .entry(extension_of(relative_path))
                .or_default() += 1
        }
        Found::Ignored { .. } => survey.ignored += 1,
        Found::Unreadable { .. } => survey.unreadable += 1,
    })
    .with_context(|| format!("{}: reading the media folder", media_dir.display()))?;
    Ok(survey)
}

/// The state of one scan.
struct Scan<'a> {
    /// As configured, for messages.
    media_dir: &'a Path,
    /// Canonical, for walking and reading.
    root: &'a Path,
    now: DateTime<Utc>,
    index: HashMap<Box<str>, Known>,
    logged: &'a mut HashSet<String>,
    /// Check the content of active indexed files that are not read again.
    check_indexed: bool,
    report: ScanReport,
    files_seen: usize,
    progress: &'a mut dyn FnMut(Progress),
}

impl Scan<'_> {
    /// Walks the tree; returns the files to read, check or reactivate. Files that
    /// need nothing are marked seen and counted as unchanged on the way.
    fn walk(&mut self) -> Result<Vec<Work>> {
        let mut work = Vec::new();
        let root = self.root;
        walk_media_folder(root, &mut |found| self.found(found, &mut work))
            .with_context(|| format!("{}: reading the media folder", self.media_dir.display()))?;
        (self.progress)(Progress::Walking {
            files_seen: self.files_seen,
        });
        Ok(work)
    }

    fn found(&mut self, found: Found<'_>, work: &mut Vec<Work>) {
        match found {
            Found::Media {
                relative_path,
                kind,
                metadata,
            } => {
                self.file_seen();
                self.media_file(relative_path, kind, metadata, work);
            }
            Found::Unsupported { relative_path } => {
                self.file_seen();
                *self
                    .report
                    .unsupported
                    .entry(extension_of(relative_path))
                    .or_default() += 1;
            }
            Found::Ignored {
                relative_path,
                reason,
            } => self.ignored(relative_path, reason),
            Found::Unreadable {
                relative_path,
                error,
            } => self.unreadable_folder(relative_path, error),
        }
    }

    fn file_seen(&mut self) {
        self.files_seen += 1;
        (self.progress)(Progress::Walking {
            files_seen: self.files_seen,
        });
    }

    fn media_file(
        &mut self,
        relative_path: String,
        kind: MediaKind,
        metadata: &Metadata,
        work: &mut Vec<Work>,
    ) {
        let size = metadata.len() as i64;
        let mtime_ns = mtime_ns(metadata);
        let action = match self.index.get_mut(relative_path.as_str()) {
            Some(known) if known.size == size && known.mtime_ns == mtime_ns => {
                if !known.is_active {
                    known.seen = true;
                    Action::Reactivate
                } else if self.check_indexed {
                    // Marked seen once its content passes.
                    Action::Check
                } else {
                    known.seen = true;
                    self.report.unchanged += 1;
                    return;
                }
            }
            _ => Action::Read,
        };
        work.push(Work {
            relative_path: relative_path.into_boxed_str(),
            kind,
            action,
        });
    }

    /// Reads (or checks) the files the walk found and records every result, one
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
                let path = self.root.join(&*item.relative_path);
                let outcome = match item.action {
                    Action::Read => read_file(&path, item.kind, &mut buffer, &mut batch_bytes),
                    Action::Reactivate => {
                        check_file(&path, item.kind).unwrap_or(Outcome::Reactivate)
                    }
                    Action::Check => check_file(&path, item.kind).unwrap_or(Outcome::Unchanged),
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
                let sha256 = crate::hex::encode(&hashed.sha256);
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
                    self.report
                        .touched_content
                        .push(crate::hex::encode(&old_sha256));
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
                let sha256 = crate::hex::encode(&known.sha256);
                self.report.new += 1;
                category_counts(&mut self.report, category).new += 1;
                self.report.touched_content.push(sha256);
            }
            Outcome::Unchanged => {
                if let Some(known) = known {
                    known.seen = true;
                }
                self.report.unchanged += 1;
            }
            // Not marked seen: an indexed file is deactivated with the others gone.
            Outcome::Vanished => {}
            // Not marked seen either: an indexed file whose content went bad is
            // deactivated, so it is no longer scheduled.
            Outcome::Broken(reason) => self.broken(path, reason),
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
            self.report
                .touched_content
                .push(crate::hex::encode(&known.sha256));
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

    /// Names the file in the report and logs it once.
    fn broken(&mut self, relative_path: &str, reason: &str) {
        self.report
            .broken
            .entry(extension_of(relative_path))
            .or_default()
            .push(relative_path.to_owned());
        if self.logged.insert(relative_path.to_owned()) {
            log::warn!(
                "{}: not posted: {reason}",
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

/// Opens a file the walk found and checks its content (`content_problem`):
/// the open file and its metadata, or what became of it.
fn open_checked(path: &Path, kind: MediaKind) -> std::result::Result<(File, Metadata), Outcome> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(Outcome::Vanished),
        Err(err) => return Err(Outcome::Unreadable(err)),
    };
    let metadata = match file.metadata() {
        Ok(metadata) => metadata,
        Err(err) => return Err(Outcome::Unreadable(err)),
    };
    if !metadata.is_file() {
        return Err(Outcome::Ignored("not a regular file"));
    }
    if metadata.len() == 0 {
        return Err(Outcome::Ignored("empty file"));
    }
    match content_problem(kind, &mut file, metadata.len()) {
        Ok(None) => Ok((file, metadata)),
        Ok(Some(reason)) => Err(Outcome::Broken(reason)),
        Err(err) => Err(Outcome::Unreadable(err)),
    }
}

/// Checks a file's content without hashing it: `None` when it passes.
fn check_file(path: &Path, kind: MediaKind) -> Option<Outcome> {
    open_checked(path, kind).err()
}

/// Checks a file's content, then reads it whole through `buffer`, adding what it
/// read to `bytes`. Size and mtime come from the open file, before reading: if
/// the file changes afterwards, its mtime will differ from the stored one and the
/// next scan reads it again.
fn read_file(path: &Path, kind: MediaKind, buffer: &mut [u8], bytes: &mut u64) -> Outcome {
    let (mut file, metadata) = match open_checked(path, kind) {
        Ok(opened) => opened,
        Err(outcome) => return outcome,
    };
    if let Err(err) = file.rewind() {
        return Outcome::Unreadable(err);
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

/// At `run` start: creates the media folder (and the folders above it) when it
/// is missing, so a new installation has one to fill. Not when files were
/// indexed from it before: then a missing folder is most likely a disk that is
/// not mounted, and an empty folder in its place would let the next scan
/// deactivate the whole library; it is left missing, with a warning.
pub fn create_missing_folder(media_dir: &Path, indexed_before: bool) {
    match fs::symlink_metadata(media_dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        // There, or something is in the way: the scan says what.
        _ => return,
    }
    if indexed_before {
        log::warn!(
            "{}: the media folder is missing (a disk not mounted?); not creating it, \
             so the library indexed from it stays as it is",
            media_dir.display()
        );
        return;
    }
    match fs::create_dir_all(media_dir) {
        Ok(()) => log::info!(
            "{}: created the media folder (it was missing); put photos and videos in it, \
             top-level folders are categories",
            media_dir.display()
        ),
        Err(err) => log::warn!(
            "{}: the media folder is missing and could not be created: {err}",
            media_dir.display()
        ),
    }
}

/// `storyline scan`: scans the configured media folder into the database, showing
/// progress on stderr when it is a terminal. The caller prints the summary.
pub fn run_scan_command(config: &Config) -> Result<ScanReport> {
    let mut conn = db::open(&config.storage.database)?;
    scan_showing_progress(&mut conn, &config.media.dir)
}

/// A scan of `media_dir` into `conn`, with a progress line on a terminal.
pub fn scan_showing_progress(conn: &mut Connection, media_dir: &Path) -> Result<ScanReport> {
    let mut scanner = Scanner::new();
    if !io::stderr().is_terminal() {
        return scanner.scan(conn, media_dir, Utc::now(), &mut |_| {});
    }
    let mut line = ProgressLine::default();
    let report = scanner.scan(conn, media_dir, Utc::now(), &mut |p| line.show(p));
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
            Progress::Walking { files_seen } => {
                format!("scanning: {} seen", plural(files_seen, "file", "files"))
            }
            Progress::Hashing { done, total, bytes } => format!(
                "reading: {done}/{}, {:.1} MB",
                plural(total, "file", "files"),
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

    use crate::samples;

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

        /// Writes a valid file of the path's kind carrying `tag`
        /// (`samples::file`): the same tag, the same content.
        fn write(&self, relative_path: &str, tag: &[u8]) {
            self.write_raw(relative_path, &samples::file(relative_path, tag));
        }

        fn write_raw(&self, relative_path: &str, content: &[u8]) {
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
        crate::hex::encode(digest.as_ref())
    }

    /// The hash of what `Fixture::write` writes for this path and tag.
    fn sha_of(relative_path: &str, tag: &[u8]) -> String {
        sha256_hex(&samples::file(relative_path, tag))
    }

    fn len_of(relative_path: &str, tag: &[u8]) -> u64 {
        samples::file(relative_path, tag).len() as u64
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
        assert_eq!(report.unsupported, BTreeMap::from([("txt".to_string(), 1)]));
        assert!(report.broken.is_empty());
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
        assert_eq!(
            (row.size as u64, row.sha256),
            (len_of("c.mp4", b"c"), sha_of("c.mp4", b"c"))
        );
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
        f.write_raw("quotes/empty.jpg", b"");
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
                .map(|i| len_of("f.jpg", format!("file {i}").as_bytes()))
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
        assert_eq!(
            report.bytes_hashed,
            len_of("a.jpg", b"FIRST") + len_of("b.jpg", b"same"),
            "both were read again"
        );
        let mut touched = vec![sha_of("a.jpg", b"first"), sha_of("a.jpg", b"FIRST")];
        touched.sort();
        assert_eq!(report.touched_content, touched);

        let after = f.row("q/a.jpg");
        assert_eq!(after.id, before.id);
        assert_eq!(after.sha256, sha_of("a.jpg", b"FIRST"));
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
        let mut gone = vec![sha_of("a.jpg", b"a"), sha_of("c.jpg", b"c")];
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
            db::media::active_item_for_content(&f.conn, &sha_of("a.jpg", b"a")).unwrap(),
            None
        );

        // Moved back unchanged: reactivated without reading it.
        fs::rename(f.dir.path().join("a.jpg"), f.path("q/a.jpg")).unwrap();
        let report = f.scan();
        assert_eq!((report.new, report.gone, report.bytes_hashed), (1, 0, 0));
        assert_eq!(report.touched_content, vec![sha_of("a.jpg", b"a")]);
        let row = f.row("q/a.jpg");
        assert_eq!((row.id, row.is_active), (id, true));

        // Put back with other content: the same row, active, with the new hash.
        f.write("other/c.jpg", b"c2");
        let report = f.scan();
        assert_eq!((report.new, report.changed), (1, 0));
        f.check_counts_match_table(&report);
        assert_eq!(f.row("other/c.jpg").sha256, sha_of("c.jpg", b"c2"));
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
        let sha = sha_of("one.jpg", b"same picture");
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

        let not_posted = ScanReport {
            new: 2,
            unsupported: BTreeMap::from([("heic".to_string(), 3), ("txt".to_string(), 1)]),
            broken: BTreeMap::from([("png".to_string(), vec!["broken.png".to_string()])]),
            duration: Duration::from_millis(5),
            ..ScanReport::default()
        };
        expect!["2 new, 0 changed, 0 gone, 0 unchanged (4 unsupported, 1 broken) in 5 ms"]
            .assert_eq(&not_posted.summary());
    }

    /// What `content_problem` says of each named content, as "name (kind): verdict".
    fn check_content(cases: &[(&str, MediaKind, &[u8])], expected: Expect) {
        let mut text = String::new();
        for (name, kind, bytes) in cases {
            let verdict = content_problem(*kind, &mut io::Cursor::new(bytes), bytes.len() as u64)
                .unwrap()
                .unwrap_or("ok");
            text.push_str(&format!("{name} ({kind}): {verdict}\n"));
        }
        expected.assert_eq(&text);
    }

    #[test]
    fn content_is_checked_by_its_first_bytes_and_boxes() {
        let mut cut_movie = samples::mp4(b"tag");
        cut_movie.truncate(cut_movie.len() - 10);
        let mut no_moov = samples::mp4_box(b"ftyp", b"qt  ");
        no_moov.extend(samples::mp4_box(b"mdat", &[7; 40]));
        let mut old_quicktime = samples::mp4_box(b"wide", b"");
        old_quicktime.extend(samples::mp4_box(b"mdat", &[7; 40]));
        old_quicktime.extend(samples::mp4_box(
            b"moov",
            &samples::mp4_box(b"mvhd", &[0; 100]),
        ));
        let mut stray_tail = samples::mp4(b"tag");
        stray_tail.extend_from_slice(b"\0\0\0");
        let image = MediaKind::Image;
        let video = MediaKind::Video;
        check_content(
            &[
                ("jpeg", image, &samples::jpeg(b"tag")),
                ("png", image, &samples::png(b"tag")),
                ("webp", image, &samples::webp(b"tag")),
                ("JPEG magic alone", image, b"\xFF\xD8\xFF"),
                ("WebP header alone", image, b"RIFF\0\0\0\0WEBPVP8 "),
                ("text", image, b"hello"),
                ("half a JPEG magic", image, b"\xFF\xD8"),
                ("a WAVE", image, b"RIFF\0\0\0\0WAVEfmt "),
                ("PNG signature cut", image, b"\x89PNG\r\n\x1a"),
                ("mp4 named as an image", image, &samples::mp4(b"tag")),
                ("mp4", video, &samples::mp4(b"tag")),
                ("old QuickTime", video, &old_quicktime),
                ("3 stray bytes at the end", video, &stray_tail),
                ("cut short", video, &cut_movie),
                ("no moov", video, &no_moov),
                ("ftyp claiming more", video, b"\0\0\0\x14ftypqt  "),
                ("jpeg named as a video", video, &samples::jpeg(b"tag")),
                ("random bytes", video, b"random bytes named clip.mp4"),
                ("ftyp alone", video, b"\0\0\0\x08ftyp"),
                ("nothing", video, b""),
            ],
            expect![[r#"
                jpeg (image): ok
                png (image): ok
                webp (image): ok
                JPEG magic alone (image): ok
                WebP header alone (image): ok
                text (image): it is not a JPEG, PNG or WebP image
                half a JPEG magic (image): it is not a JPEG, PNG or WebP image
                a WAVE (image): it is not a JPEG, PNG or WebP image
                PNG signature cut (image): it is not a JPEG, PNG or WebP image
                mp4 named as an image (image): it is not a JPEG, PNG or WebP image
                mp4 (video): ok
                old QuickTime (video): ok
                3 stray bytes at the end (video): ok
                cut short (video): it is damaged: a box runs past the end of the file (cut short?)
                no moov (video): it is damaged: it has no movie header (moov box)
                ftyp claiming more (video): it is damaged: a box runs past the end of the file (cut short?)
                jpeg named as a video (video): it is not an MP4 or QuickTime movie
                random bytes (video): it is not an MP4 or QuickTime movie
                ftyp alone (video): it is damaged: it has no movie header (moov box)
                nothing (video): it is not an MP4 or QuickTime movie
            "#]],
        );
    }

    #[test]
    fn unsupported_and_broken_files_are_counted_named_and_never_indexed() {
        let mut f = Fixture::new();
        f.write("good.jpg", b"good");
        f.write("travel/clip.mov", b"clip");
        for name in [
            "a.heic",
            "b.HEIC",
            "travel/c.heic",
            "notes.txt",
            "README",
            "anim.gif",
        ] {
            f.write_raw(name, b"not posted");
        }
        f.write_raw("broken.png", b"hello");
        f.write_raw("travel/clip.mp4", b"random bytes named clip.mp4");
        f.write_raw("travel/cut.mp4", &samples::mp4(b"cut")[..30]);
        // The ignore rules come first and stay silent.
        f.write_raw(".DS_Store", b"x");
        f.write_raw("travel/.hidden.png", b"x");
        f.write_raw("a.heic.part", b"x");
        let report = f.scan();
        assert_eq!((report.new, report.ignored), (2, 3));
        let counts = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
            pairs.iter().map(|&(e, n)| (e.to_string(), n)).collect()
        };
        assert_eq!(
            report.unsupported,
            counts(&[("", 1), ("gif", 1), ("heic", 3), ("txt", 1)])
        );
        let broken = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, Vec<String>> {
            pairs
                .iter()
                .map(|(e, paths)| (e.to_string(), paths.iter().map(|p| p.to_string()).collect()))
                .collect()
        };
        assert_eq!(
            report.broken,
            broken(&[
                ("mp4", &["travel/clip.mp4", "travel/cut.mp4"]),
                ("png", &["broken.png"])
            ])
        );
        f.check_index(expect![[r#"
            good.jpg uncategorized image
            travel/clip.mov travel video
        "#]]);
        assert_eq!(
            f.scanner.logged_paths(),
            3 + 3,
            "ignored and broken, once each"
        );

        // The next scan says the same, without hashing anything.
        let again = f.scan();
        assert_eq!((again.unchanged, again.new, again.bytes_hashed), (2, 0, 0));
        assert_eq!(again.unsupported, report.unsupported);
        assert_eq!(again.broken, report.broken);

        // Fixed: indexed like any new file.
        f.write("broken.png", b"fixed");
        let fixed = f.scan();
        assert_eq!(fixed.new, 1);
        assert!(!fixed.broken.contains_key("png"));
        assert!(f.row("broken.png").is_active);
    }

    #[test]
    fn an_indexed_file_whose_content_breaks_is_deactivated_and_stays_out() {
        let mut f = Fixture::new();
        f.write("q/a.jpg", b"a");
        f.write("q/b.jpg", b"b");
        f.set_mtime("q/a.jpg", 1_700_000_000);
        f.scan();
        let id = f.row("q/a.jpg").id;

        f.write_raw("q/a.jpg", b"saved over by a text editor");
        f.set_mtime("q/a.jpg", 1_700_000_100);
        let report = f.scan();
        assert_eq!((report.gone, report.unchanged), (1, 1));
        assert_eq!(report.broken["jpg"], vec!["q/a.jpg".to_string()]);
        assert_eq!(report.touched_content, vec![sha_of("a.jpg", b"a")]);
        assert_eq!(report.per_category["q"].active, 1);
        assert!(!f.row("q/a.jpg").is_active);
        f.check_counts_match_table(&report);

        // Still broken: named again, nothing more to deactivate.
        let again = f.scan();
        assert_eq!((again.gone, again.new, again.broken.len()), (0, 0, 1));

        // And a broken file back with the size and mtime of its row is not
        // reactivated either.
        fs::remove_file(f.path("q/a.jpg")).unwrap();
        f.scan();
        let mut same_size = b"not a picture".repeat(100);
        same_size.resize(len_of("a.jpg", b"a") as usize, b'!');
        f.write_raw("q/a.jpg", &same_size);
        f.set_mtime("q/a.jpg", 1_700_000_000);
        let back = f.scan();
        assert_eq!((back.new, back.broken.len()), (0, 1));
        assert!(!f.row("q/a.jpg").is_active);

        // Restored: the same row, active again.
        f.write("q/a.jpg", b"a");
        let restored = f.scan();
        assert_eq!(restored.new, 1);
        let row = f.row("q/a.jpg");
        assert_eq!((row.id, row.is_active), (id, true));
    }

    #[test]
    fn the_daemon_s_first_scan_checks_files_indexed_before() {
        let mut f = Fixture::new();
        f.write("a.jpg", b"a");
        f.write("b.mp4", b"b");
        f.set_mtime("a.jpg", 1_700_000_000);
        f.scan();
        // As an earlier version indexed junk: the file changes, its size and
        // mtime do not.
        let junk = vec![b'x'; len_of("a.jpg", b"a") as usize];
        f.write_raw("a.jpg", &junk);
        f.set_mtime("a.jpg", 1_700_000_000);
        let same_process = f.scan();
        assert_eq!((same_process.unchanged, same_process.gone), (2, 0));

        f.scanner = Scanner::new(); // `storyline scan`: stats only
        assert_eq!((f.scan().unchanged, f.scanner.logged_paths()), (2, 0));
        f.scanner = Scanner::checking_indexed_files(); // the daemon, restarted
        let after_restart = f.scan();
        assert_eq!((after_restart.unchanged, after_restart.gone), (1, 1));
        assert_eq!(after_restart.bytes_hashed, 0, "only first bytes were read");
        assert_eq!(after_restart.broken["jpg"], vec!["a.jpg".to_string()]);
        assert!(!f.row("a.jpg").is_active);
        assert!(f.row("b.mp4").is_active);
        let next = f.scan();
        assert_eq!((next.unchanged, next.gone, next.broken.len()), (1, 0, 1));
    }

    #[test]
    fn the_survey_counts_what_the_scan_indexes() {
        let mut f = Fixture::new();
        f.write("quotes/a.jpg", b"a");
        f.write("quotes/2024/b.PNG", b"b");
        f.write("products/c.mp4", b"c");
        f.write("top.webp", b"top");
        f.write_raw("notes.txt", b"x");
        f.write_raw("products/broken.mov", b"x");
        f.write_raw(".trash/d.jpg", b"x");
        f.write_raw("quotes/empty.jpg", b"");
        // A symlink loop, and a link to a folder outside: both refused.
        symlink(".", f.path("quotes/again")).unwrap();
        symlink("..", f.path("quotes/2024/up")).unwrap();
        symlink(f.dir.path(), f.path("outside")).unwrap();
        let survey = survey(&f.media).unwrap();
        let report = f.scan();
        assert_eq!(survey.images + survey.videos, report.new);
        assert_eq!((survey.images, survey.videos), (3, 1));
        let scanned: BTreeMap<String, usize> = report
            .per_category
            .iter()
            .map(|(category, counts)| (category.clone(), counts.active))
            .collect();
        assert_eq!(survey.per_category, scanned);
        assert_eq!(survey.unsupported, report.unsupported);
        assert_eq!(survey.broken, report.broken);
        assert_eq!(
            (survey.ignored, survey.unreadable),
            (report.ignored, report.unreadable)
        );
        assert_eq!(survey.ignored, 5);

        fs::remove_dir_all(&f.media).unwrap();
        let missing = format!("{:#}", super::survey(&f.media).unwrap_err());
        assert!(
            missing.contains("the media folder does not exist"),
            "{missing}"
        );
    }

    #[test]
    fn a_missing_folder_is_created_unless_files_were_indexed_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("new/media");
        create_missing_folder(&media, false);
        assert!(media.is_dir());
        let unmounted = dir.path().join("usb/photos");
        create_missing_folder(&unmounted, true);
        assert!(!unmounted.exists());
        // In the way: left to the scan to report.
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        create_missing_folder(&file, false);
        assert!(file.is_file());
    }

    // ---- property tests (`cargo test --lib fuzz_content`) ----

    use crate::fuzz_input::{self, mutations};
    use proptest::prelude::*;

    const CONTENT_PIECES: &[&[u8]] = &[
        b"\xFF\xD8\xFF",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF",
        b"WEBP",
        b"ftyp",
        b"moov",
        b"mdat",
        b"wide",
        b"\0\0\0\0",
        b"\0\0\0\x01",
        b"\0\0\0\x08",
        b"\xff\xff\xff\xff",
        b"\0\0\0\x01moov\xff\xff\xff\xff\xff\xff\xff\xff",
    ];

    fn any_kind() -> impl Strategy<Value = MediaKind> {
        prop::sample::select(MediaKind::ALL.to_vec())
    }

    fn any_sample() -> impl Strategy<Value = (MediaKind, Vec<u8>)> {
        (0usize..4, prop::collection::vec(any::<u8>(), 0..64)).prop_map(
            |(which, tag)| match which {
                0 => (MediaKind::Image, samples::jpeg(&tag)),
                1 => (MediaKind::Image, samples::png(&tag)),
                2 => (MediaKind::Image, samples::webp(&tag)),
                _ => (MediaKind::Video, samples::mp4(&tag)),
            },
        )
    }

    proptest! {
        #![proptest_config(fuzz_input::config(512))]

        /// Arbitrary bytes never panic, also when the file claims another length.
        #[test]
        fn fuzz_content_arbitrary_bytes(
            kind in any_kind(),
            bytes in prop::collection::vec(any::<u8>(), 0..256),
            claimed in prop_oneof![Just(None), any::<u64>().prop_map(Some)],
        ) {
            let len = claimed.unwrap_or(bytes.len() as u64);
            let _ = content_problem(kind, &mut io::Cursor::new(&bytes), len);
        }

        /// Valid files pass; mutations of them never panic.
        #[test]
        fn fuzz_content_mutated_samples(
            (kind, bytes) in any_sample(),
            changes in mutations(CONTENT_PIECES),
        ) {
            let verdict = content_problem(kind, &mut io::Cursor::new(&bytes), bytes.len() as u64);
            prop_assert_eq!(verdict.ok(), Some(None));
            let mutated = fuzz_input::mutate(&bytes, &changes);
            let _ = content_problem(kind, &mut io::Cursor::new(&mutated), mutated.len() as u64);
        }
    }
}
