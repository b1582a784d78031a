//! Operating a Pi: `storyline backup` and `storyline doctor`.
//!
//! `backup` copies the live database with SQLite's online backup API, which is safe
//! while the daemon runs (WAL readers never block its writer), checks the copy with
//! `PRAGMA integrity_check`, and only then gives it its final name. `doctor` looks at
//! everything an operator can get wrong (configuration, database, key file, media
//! folder, Telegram, web and Instagram settings) and prints one line for each, with
//! a verdict and what to do; with `--fix` it removes a webhook that keeps the bot
//! from polling. Neither changes the live database. The few statements
//! here are pragmas on a connection of their own, kept beside the checks they serve.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::config::{self, Config};
use crate::db::{self, accounts::TokenRow};
use crate::keyfile::KEY_LEN;
use crate::telegram::{ApiError, Client};

/// How long a backup or a check waits for a lock the daemon holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The file beside the configuration that the systemd unit reads secrets from
/// (`EnvironmentFile=`); doctor reads it too, so `sudo storyline doctor` sees the
/// token the service sees.
pub const ENV_FILE_NAME: &str = "env";

// ---- backup ----------------------------------------------------------------------

/// `storyline backup PATH [--force]`: returns what to print.
pub fn backup(config: &Config, dest: &Path, force: bool) -> Result<String> {
    let source = &config.storage.database;
    if !source.is_file() {
        bail!(
            "{}: no database there, nothing to back up (check storage.database in {})",
            source.display(),
            config.source.display()
        );
    }
    let dest = if dest.is_dir() {
        dest.join(format!(
            "storyline-{}.db",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    } else {
        dest.to_path_buf()
    };
    if !force && fs::symlink_metadata(&dest).is_ok() {
        bail!(
            "{} already exists; choose another name, or add --force to replace it",
            dest.display()
        );
    }
    let partial = partial_path(&dest);
    let result = copy_and_check(source, &partial).and_then(|size| {
        put_in_place(&partial, &dest, force)?;
        Ok(size)
    });
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    Ok(format!(
        "Backed up {} to {} ({}); integrity_check: ok.\n\
         Keep a copy of the key file {} with it: without it, connected Instagram \
         accounts must be connected again.\n",
        source.display(),
        dest.display(),
        human_size(size),
        config.storage.key_file.display()
    ))
}

/// A hidden name in the destination folder, so a half-written copy never has the
/// name the user asked for and a rename puts the finished one in place atomically.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "storyline.db".to_string());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Copies the live database into `partial` (mode 0600, rollback journal, one file)
/// and checks the copy; returns its size in bytes.
fn copy_and_check(source: &Path, partial: &Path) -> Result<u64> {
    let live = open_read_only(source)?;
    // Created by us first, so the copy never exists with looser permissions.
    let _ = fs::remove_file(partial);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .with_context(|| format!("{}: creating the backup file", partial.display()))?;
    let mut copy = Connection::open(partial)
        .with_context(|| format!("{}: opening the backup file", partial.display()))?;
    copy_all_pages(&live, &mut copy)
        .with_context(|| format!("{}: copying the database", source.display()))?;
    drop(live);
    // A backup is one self-contained file: no -wal beside it to forget.
    let mode =
        db::set_rollback_journal(&copy).context("switching the copy to a rollback journal")?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("the copy stayed in journal mode {mode}");
    }
    let problems = integrity_problems(&copy)?;
    if !problems.is_empty() {
        bail!(
            "the copy failed integrity_check, so it was not kept:\n  {}",
            problems.join("\n  ")
        );
    }
    drop(copy);
    let file = fs::File::open(partial)?;
    file.sync_all()
        .with_context(|| format!("{}: syncing the backup", partial.display()))?;
    Ok(file.metadata()?.len())
}

/// Gives the checked copy its name: without `--force` a hard link, which fails
/// rather than replace a file that appeared meanwhile.
fn put_in_place(partial: &Path, dest: &Path, force: bool) -> Result<()> {
    if force {
        fs::rename(partial, dest)
            .with_context(|| format!("{}: putting the backup in place", dest.display()))?;
    } else {
        match fs::hard_link(partial, dest) {
            Ok(()) => fs::remove_file(partial)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                bail!(
                    "{} appeared during the backup; not replaced",
                    dest.display()
                )
            }
            // Some filesystems (FAT on a USB stick) have no hard links.
            Err(_) if fs::symlink_metadata(dest).is_err() => fs::rename(partial, dest)
                .with_context(|| format!("{}: putting the backup in place", dest.display()))?,
            Err(e) => return Err(e).context(format!("{}: linking the backup", dest.display())),
        }
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself is durable only once the folder is synced.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Copies every page in one step: one read transaction, so the copy is one
/// consistent snapshot, and in WAL mode a reader never blocks the daemon's writes.
fn copy_all_pages(live: &Connection, copy: &mut Connection) -> Result<()> {
    let backup = Backup::new(live, copy)?;
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            StepResult::Busy | StepResult::Locked => bail!("the database stayed locked"),
            // StepResult is non-exhaustive; an unknown answer is worth another step.
            _ => {}
        }
    }
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("{}: opening the database", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The lines of `PRAGMA integrity_check` other than "ok"; empty when sound.
fn integrity_problems(conn: &Connection) -> Result<Vec<String>> {
    let lines = db::integrity_check(conn)?;
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

// ---- doctor ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Worth knowing, not wrong: a feature left off, a file not created yet.
    Note,
    Fail,
}

/// One line of the doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub topic: &'static str,
    pub text: String,
}

fn finding(verdict: Verdict, topic: &'static str, text: impl Into<String>) -> Finding {
    Finding {
        verdict,
        topic,
        text: text.into(),
    }
}

/// What `storyline doctor` found; `passed` unless some line is a failure.
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.verdict != Verdict::Fail)
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        for f in &self.findings {
            let verdict = match f.verdict {
                Verdict::Ok => "ok",
                Verdict::Note => "note",
                Verdict::Fail => "FAIL",
            };
            let body = f.text.replace('\n', "\n                  ");
            let _ = writeln!(text, "{verdict:<5} {:<11} {body}", f.topic);
        }
        let failed = self
            .findings
            .iter()
            .filter(|f| f.verdict == Verdict::Fail)
            .count();
        if failed == 0 {
            text.push_str("All checks passed.\n");
        } else {
            let _ = writeln!(text, "{failed} of {} checks failed.", self.findings.len());
        }
        text
    }
}

/// `storyline doctor`: finds and loads the configuration itself, so a broken one
/// is a line of the report rather than the end of it.
pub fn doctor(explicit_config: Option<&Path>, fix: bool) -> Report {
    let mut findings = Vec::new();
    let path = match config::locate(explicit_config) {
        Ok(path) => path,
        Err(e) => {
            findings.push(finding(Verdict::Fail, "config", e.message));
            return Report { findings };
        }
    };
    let env_file = path
        .parent()
        .map(|dir| dir.join(ENV_FILE_NAME))
        .filter(|p| p.is_file());
    let file_values = env_file
        .as_deref()
        .and_then(|p| fs::read_to_string(p).ok())
        .map(|text| parse_env_file(&text))
        .unwrap_or_default();
    let lookup = |key: &str| {
        std::env::var(key).ok().or_else(|| {
            file_values
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        })
    };
    let config = match config::load(&path, &lookup) {
        Ok(config) => config,
        Err(e) => {
            findings.push(finding(
                Verdict::Fail,
                "config",
                format!("{e}\nfix it, then run `storyline check` to see the result"),
            ));
            return Report { findings };
        }
    };
    let mut text = format!("{} is valid", path.display());
    if let Some(env_file) = &env_file {
        let _ = write!(text, " (secrets also read from {})", env_file.display());
    }
    findings.push(finding(Verdict::Ok, "config", text));
    let (database, copy) = check_database(&config);
    findings.push(database);
    // Tokens of active accounts, read from the checked copy; none without a database.
    let tokens = copy
        .as_ref()
        .and_then(|c| crate::db::accounts::active_account_tokens(c).ok())
        .unwrap_or_default();
    findings.push(check_key_file(&config.storage.key_file, &tokens));
    findings.push(check_media(&config.media.dir));
    findings.extend(check_telegram(&config, &path, fix));
    findings.push(check_public_url(config.web.public_url.as_deref()));
    findings.push(check_instagram(
        config.instagram.app_id.as_deref(),
        config.instagram.app_secret.is_some(),
        &tokens,
        chrono::Utc::now(),
    ));
    Report { findings }
}

/// `KEY=value` lines of a systemd `EnvironmentFile`: comments, blank lines and
/// surrounding quotes as systemd reads them (no variable expansion).
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(value);
            Some((key.trim().to_string(), unquoted.to_string()))
        })
        .collect()
}

/// The advice for a file this user may not read.
fn permission_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::PermissionDenied {
        "; run doctor as root or as the service's user (sudo -u storyline storyline doctor)"
    } else {
        ""
    }
}

/// The database line, and a migrated copy of the database in memory for the
/// checks that read it (none when there is no usable database).
fn check_database(config: &Config) -> (Finding, Option<Connection>) {
    const TOPIC: &str = "database";
    let path = &config.storage.database;
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let text = format!(
                "{} does not exist yet; `storyline migrate` or the first start creates it",
                path.display()
            );
            return (finding(Verdict::Note, TOPIC, text), None);
        }
        Err(e) => {
            let text = format!("{}: {e}{}", path.display(), permission_hint(&e));
            return (finding(Verdict::Fail, TOPIC, text), None);
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let (pending, copy) = match database_state(path) {
        Ok(state) => state,
        Err(e) => {
            let text = format!(
                "{e:#}\nrestore the last backup if the file is damaged (README, \"Operating a Pi\")"
            );
            return (finding(Verdict::Fail, TOPIC, text), None);
        }
    };
    let line = if mode & 0o077 != 0 {
        finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "{} is mode {mode:04o}, readable by others; run: chmod 600 {0}",
                path.display()
            ),
        )
    } else if pending.is_empty() {
        finding(
            Verdict::Ok,
            TOPIC,
            format!(
                "{} opens, {}, quick_check ok, migrations current",
                path.display(),
                human_size(meta.len())
            ),
        )
    } else {
        finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "{} needs migrations {}; run `storyline migrate` (or restart the service, which applies them)",
                path.display(),
                pending.join(", ")
            ),
        )
    };
    (line, Some(copy))
}

/// Checks the live database and returns the migrations it still needs, found by
/// migrating a copy in memory (the live file is never written), and that copy.
fn database_state(path: &Path) -> Result<(Vec<String>, Connection)> {
    let live = open_read_only(path)?;
    let quick =
        db::quick_check(&live).with_context(|| format!("{}: quick_check", path.display()))?;
    if quick != "ok" {
        bail!("{}: quick_check: {quick}", path.display());
    }
    let mut copy = Connection::open_in_memory()?;
    copy_all_pages(&live, &mut copy)
        .with_context(|| format!("{}: reading the database", path.display()))?;
    let pending = crate::db::migrate(&mut copy).with_context(|| {
        format!(
            "{}: its migrations do not match this storyline {} (was a newer version run on it?)",
            path.display(),
            env!("CARGO_PKG_VERSION")
        )
    })?;
    Ok((pending, copy))
}

/// The key file: present, 32 bytes, owner-only, and the key the stored tokens
/// were sealed with. Missing is only a failure when there are such tokens.
fn check_key_file(path: &Path, tokens: &[TokenRow]) -> Finding {
    const TOPIC: &str = "key file";
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound && tokens.is_empty() => {
            return finding(
                Verdict::Note,
                TOPIC,
                format!(
                    "{} does not exist yet; the next start creates it",
                    path.display()
                ),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!(
                    "{} is missing, and {} Instagram token(s) were sealed with it: restore it \
                     from your backup. Storyline will not start without it (if it is lost for \
                     good, `storyline accounts forget-tokens --yes`, then /connect again)",
                    path.display(),
                    tokens.len()
                ),
            )
        }
        Err(e) => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!("{}: {e}{}", path.display(), permission_hint(&e)),
            )
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let verdict = key_file_verdict(path, meta.is_file(), meta.len(), mode);
    if verdict.verdict != Verdict::Ok || tokens.is_empty() {
        return verdict;
    }
    let key = match crate::keyfile::read(path) {
        Some(key) => key,
        None => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!(
                    "{}: cannot read it{}",
                    path.display(),
                    permission_hint(&io::Error::from(io::ErrorKind::PermissionDenied),)
                ),
            )
        }
    };
    let unopened = tokens
        .iter()
        .filter(|t| crate::crypto::open(&key, &t.sealed_value).is_err())
        .count();
    if unopened > 0 {
        return finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "{} does not open {unopened} of {} sealed Instagram token(s): it is not the key \
                 they were sealed with; restore the right one from your backup, or add the \
                 tokens again (storyline accounts add, or /connect)",
                path.display(),
                tokens.len()
            ),
        );
    }
    Finding {
        text: format!(
            "{}, opens the {} sealed token(s)",
            verdict.text,
            tokens.len()
        ),
        ..verdict
    }
}

/// The pure part of the key file check.
fn key_file_verdict(path: &Path, is_file: bool, len: u64, mode: u32) -> Finding {
    const TOPIC: &str = "key file";
    let shown = path.display();
    if !is_file {
        return finding(Verdict::Fail, TOPIC, format!("{shown} is not a file"));
    }
    if len != KEY_LEN as u64 {
        return finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "{shown} is {len} bytes, not {KEY_LEN}: restore it from your backup (a new key \
                 means connecting Instagram accounts again)"
            ),
        );
    }
    if mode & 0o077 != 0 {
        return finding(
            Verdict::Fail,
            TOPIC,
            format!("{shown} is mode {mode:04o}, readable by others; run: chmod 600 {shown}"),
        );
    }
    finding(
        Verdict::Ok,
        TOPIC,
        format!("{shown}: {KEY_LEN} bytes, mode {mode:04o}"),
    )
}

fn check_media(dir: &Path) -> Finding {
    const TOPIC: &str = "media";
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!(
                    "{} is not a folder; set media.dir to a folder",
                    dir.display()
                ),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!(
                    "{} does not exist; create it (mkdir -p {0}) or set media.dir",
                    dir.display()
                ),
            )
        }
        Err(e) => {
            return finding(
                Verdict::Fail,
                TOPIC,
                format!("{}: {e}{}", dir.display(), permission_hint(&e)),
            )
        }
    }
    let mut counts = MediaCounts::default();
    if let Err(e) = count_media(dir, dir, 0, &mut counts) {
        return finding(
            Verdict::Fail,
            TOPIC,
            format!("{}: cannot read: {e}{}", dir.display(), permission_hint(&e)),
        );
    }
    media_verdict(dir, &counts)
}

#[derive(Debug, Default)]
struct MediaCounts {
    images: u64,
    videos: u64,
    /// Items per category, in name order.
    categories: std::collections::BTreeMap<String, u64>,
    unreadable: u64,
}

/// Deeper than this is a symlink loop, not a photo library (as in the scanner).
const MAX_DEPTH: usize = 32;

/// Counts what the scanner would pick up, without hashing or writing anything.
fn count_media(root: &Path, dir: &Path, depth: usize, counts: &mut MediaCounts) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else {
            counts.unreadable += 1;
            continue;
        };
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            counts.unreadable += 1;
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH && count_media(root, &path, depth + 1, counts).is_err() {
                counts.unreadable += 1;
            }
            continue;
        }
        let Some(kind) = crate::media::kind_of(&path) else {
            continue;
        };
        match kind {
            crate::domain::status::MediaKind::Video => counts.videos += 1,
            _ => counts.images += 1,
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        *counts
            .categories
            .entry(crate::media::category_of(&relative).to_string())
            .or_default() += 1;
    }
    Ok(())
}

fn media_verdict(dir: &Path, counts: &MediaCounts) -> Finding {
    const TOPIC: &str = "media";
    let shown = dir.display();
    if counts.images + counts.videos == 0 {
        return finding(
            Verdict::Note,
            TOPIC,
            format!(
                "{shown} has no photos or videos yet; add some (top-level folders are categories)"
            ),
        );
    }
    let categories = counts
        .categories
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "{shown}: {} {}, {} {} ({categories})",
        counts.images,
        if counts.images == 1 {
            "photo"
        } else {
            "photos"
        },
        counts.videos,
        if counts.videos == 1 {
            "video"
        } else {
            "videos"
        },
    );
    if counts.unreadable > 0 {
        let _ = write!(
            text,
            "; {} entries could not be read (check owner and permissions)",
            counts.unreadable
        );
        return finding(Verdict::Fail, TOPIC, text);
    }
    finding(Verdict::Ok, TOPIC, text)
}

/// getMe, then (when the token works) whether a webhook blocks polling.
fn check_telegram(config: &Config, config_path: &Path, fix: bool) -> Vec<Finding> {
    const TOPIC: &str = "telegram";
    let Some(token) = config.telegram.bot_token.clone() else {
        let env_file = config_path
            .parent()
            .map(|d| d.join(ENV_FILE_NAME))
            .unwrap_or_else(|| PathBuf::from(ENV_FILE_NAME));
        return vec![finding(
            Verdict::Note,
            TOPIC,
            format!(
                "skipped: no bot token; put STORYLINE_TELEGRAM_BOT_TOKEN=... in {} \
                 (or telegram.bot_token in {})",
                env_file.display(),
                config_path.display()
            ),
        )];
    };
    let api_url = &config.telegram.api_url;
    let client = Client::new(api_url, token);
    let me = telegram_verdict(api_url, client.call("getMe", &serde_json::json!({})));
    if me.verdict != Verdict::Ok {
        return vec![me];
    }
    let webhook = client.webhook_host();
    let removed = match (&webhook, fix) {
        (Ok(Some(_)), true) => Some(client.delete_webhook()),
        _ => None,
    };
    vec![
        me,
        webhook_verdict(webhook, removed, config.telegram.delete_webhook),
    ]
}

/// The pure part of the webhook check: a webhook set on the token makes Telegram
/// refuse getUpdates (409), so the daemon cannot poll until it is gone.
fn webhook_verdict(
    webhook: Result<Option<String>, ApiError>,
    removed: Option<Result<(), ApiError>>,
    daemon_removes: bool,
) -> Finding {
    const TOPIC: &str = "webhook";
    match (webhook, removed) {
        (Ok(None), _) => finding(Verdict::Ok, TOPIC, "none set, so polling works"),
        (Ok(Some(host)), Some(Ok(()))) => finding(
            Verdict::Ok,
            TOPIC,
            format!("a webhook to {host} blocked polling; removed it (pending updates kept)"),
        ),
        (Ok(Some(host)), Some(Err(e))) => finding(
            Verdict::Fail,
            TOPIC,
            format!("a webhook to {host} blocks polling, and removing it failed: {e}"),
        ),
        (Ok(Some(host)), None) if daemon_removes => finding(
            Verdict::Note,
            TOPIC,
            format!(
                "a webhook to {host} is set; `storyline run` removes it, as \
                 telegram.delete_webhook = true asks"
            ),
        ),
        (Ok(Some(host)), None) => finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "a webhook to {host} is set on this token, so Telegram refuses polling \
                 (409 Conflict); run `storyline doctor --fix` to remove it (pending updates \
                 are kept), or set telegram.delete_webhook = true"
            ),
        ),
        (Err(e), _) => finding(
            Verdict::Note,
            TOPIC,
            format!("getWebhookInfo: {e}; could not tell whether a webhook blocks polling"),
        ),
    }
}

/// The pure part of the Telegram check: getMe's answer to a line.
fn telegram_verdict(api_url: &str, answer: Result<serde_json::Value, ApiError>) -> Finding {
    const TOPIC: &str = "telegram";
    match answer {
        Ok(me) => {
            let name = me["username"]
                .as_str()
                .map_or_else(|| "the bot".to_string(), |u| format!("@{u}"));
            finding(
                Verdict::Ok,
                TOPIC,
                format!("getMe: {name} answers at {api_url}"),
            )
        }
        Err(ApiError::Api {
            code: code @ (401 | 404),
            description,
            ..
        }) => finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "getMe: the token was refused (Telegram error {code}: {description}); copy it \
                 again from @BotFather (/mybots, API Token)"
            ),
        ),
        Err(e @ ApiError::Network(_)) => finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "getMe: cannot reach {api_url} ({e}); check the network, DNS and telegram.api_url"
            ),
        ),
        Err(e) => finding(Verdict::Fail, TOPIC, format!("getMe: {e}")),
    }
}

fn check_public_url(public_url: Option<&str>) -> Finding {
    const TOPIC: &str = "public_url";
    match public_url {
        None => finding(
            Verdict::Note,
            TOPIC,
            "not set: Instagram publishing and /connect stay off until web.public_url is set",
        ),
        Some(url) if !url.starts_with("https://") => finding(
            Verdict::Note,
            TOPIC,
            format!("{url} is not https; Instagram only reaches https addresses"),
        ),
        Some(url) => finding(Verdict::Ok, TOPIC, url.to_string()),
    }
}

/// The app settings, then the accounts' tokens: an expired one fails.
fn check_instagram(
    app_id: Option<&str>,
    has_secret: bool,
    tokens: &[TokenRow],
    now: chrono::DateTime<chrono::Utc>,
) -> Finding {
    let app = check_instagram_app(app_id, has_secret);
    if tokens.is_empty() || app.verdict == Verdict::Fail {
        return app;
    }
    let expires: Vec<_> = tokens.iter().filter_map(|t| t.expires_at).collect();
    let expired = expires.iter().filter(|t| **t <= now).count();
    let mut text = format!(
        "{}; {} active account(s)",
        app.text.split(':').next().unwrap_or_default(),
        tokens.len()
    );
    if let Some(soonest) = expires.iter().filter(|t| **t > now).min() {
        let _ = write!(
            text,
            ", next token expiry in {} days",
            (*soonest - now).num_days()
        );
    }
    if expired > 0 {
        let _ = write!(
            text,
            "; {expired} token(s) expired: connect those accounts again (/connect in Telegram)"
        );
        return finding(Verdict::Fail, "instagram", text);
    }
    finding(app.verdict, "instagram", text)
}

fn check_instagram_app(app_id: Option<&str>, has_secret: bool) -> Finding {
    const TOPIC: &str = "instagram";
    match (app_id, has_secret) {
        (Some(id), true) => finding(Verdict::Ok, TOPIC, format!("app id {id}, app secret set")),
        (None, false) => finding(
            Verdict::Note,
            TOPIC,
            "no app id or secret: stories go to the chat to be posted by hand; set \
             instagram.app_id and STORYLINE_INSTAGRAM_APP_SECRET to publish through the API",
        ),
        (Some(id), false) => finding(
            Verdict::Fail,
            TOPIC,
            format!(
                "app id {id} is set but no app secret; add STORYLINE_INSTAGRAM_APP_SECRET (or \
                 instagram.app_secret)"
            ),
        ),
        (None, true) => finding(
            Verdict::Fail,
            TOPIC,
            "an app secret is set but no instagram.app_id; add the app id",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn env_files_are_read_as_systemd_reads_them() {
        let parsed = parse_env_file(
            "# secrets\n\nSTORYLINE_TELEGRAM_BOT_TOKEN=\"1:abc\"\n; old\n export A = 'b c' \nNOEQUALS\nEMPTY=\n",
        );
        assert_eq!(
            parsed,
            vec![
                ("STORYLINE_TELEGRAM_BOT_TOKEN".into(), "1:abc".into()),
                ("A".into(), "b c".into()),
                ("EMPTY".into(), String::new()),
            ]
        );
    }

    #[test]
    fn key_file_verdicts() {
        let path = Path::new("/var/lib/storyline/secret.key");
        let check = |is_file, len, mode| {
            let f = key_file_verdict(path, is_file, len, mode);
            format!("{:?} {}", f.verdict, f.text)
        };
        expect!["Ok /var/lib/storyline/secret.key: 32 bytes, mode 0600"]
            .assert_eq(&check(true, 32, 0o600));
        expect!["Ok /var/lib/storyline/secret.key: 32 bytes, mode 0400"]
            .assert_eq(&check(true, 32, 0o400));
        expect!["Fail /var/lib/storyline/secret.key is mode 0644, readable by others; run: chmod 600 /var/lib/storyline/secret.key"]
            .assert_eq(&check(true, 32, 0o644));
        expect!["Fail /var/lib/storyline/secret.key is 5 bytes, not 32: restore it from your backup (a new key means connecting Instagram accounts again)"]
            .assert_eq(&check(true, 5, 0o600));
        expect!["Fail /var/lib/storyline/secret.key is not a file"]
            .assert_eq(&check(false, 4096, 0o700));
    }

    #[test]
    fn instagram_and_public_url_verdicts() {
        let now = chrono::Utc::now();
        let check = |id, secret, tokens: &[TokenRow]| check_instagram(id, secret, tokens, now);
        assert_eq!(check(Some("1"), true, &[]).verdict, Verdict::Ok);
        assert_eq!(check(None, false, &[]).verdict, Verdict::Note);
        assert_eq!(check(Some("1"), false, &[]).verdict, Verdict::Fail);
        assert_eq!(check(None, true, &[]).verdict, Verdict::Fail);
        let token = |days: i64| TokenRow {
            account_id: 1,
            sealed_value: String::new(),
            issued_at: now,
            // As read back from the store: to the second.
            expires_at: Some(chrono::SubsecRound::trunc_subsecs(
                now + chrono::TimeDelta::days(days),
                0,
            )),
            last_refresh_error: None,
            refresh_reported_on: None,
        };
        let fine = check(Some("1"), true, &[token(30), token(12)]);
        expect!["app id 1, app secret set; 2 active account(s), next token expiry in 11 days"]
            .assert_eq(&fine.text);
        assert_eq!(fine.verdict, Verdict::Ok);
        let expired = check(Some("1"), true, &[token(-1), token(12)]);
        assert_eq!(expired.verdict, Verdict::Fail, "{}", expired.text);
        assert_eq!(check_public_url(None).verdict, Verdict::Note);
        assert_eq!(
            check_public_url(Some("http://pi.local")).verdict,
            Verdict::Note
        );
        assert_eq!(
            check_public_url(Some("https://pi.example.net")).verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn telegram_verdicts_say_what_to_do() {
        let api = "https://api.telegram.org";
        let refused = telegram_verdict(
            api,
            Err(ApiError::Api {
                code: 401,
                description: "Unauthorized".into(),
                retry_after: None,
                migrate_to_chat_id: None,
            }),
        );
        expect!["getMe: the token was refused (Telegram error 401: Unauthorized); copy it again from @BotFather (/mybots, API Token)"]
            .assert_eq(&refused.text);
        let down = telegram_verdict(api, Err(ApiError::Network("timed out".into())));
        assert_eq!(down.verdict, Verdict::Fail);
        assert!(down.text.contains("check the network"), "{}", down.text);
        let fine = telegram_verdict(api, Ok(serde_json::json!({"username": "pi_bot"})));
        expect!["getMe: @pi_bot answers at https://api.telegram.org"].assert_eq(&fine.text);
    }

    #[test]
    fn webhook_verdicts_name_only_the_host_and_the_fix() {
        let host = || Ok(Some("hooks.example.org".to_string()));
        let refused = || ApiError::Api {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
            migrate_to_chat_id: None,
        };
        let cases: Vec<(Finding, Verdict, &str)> = vec![
            (
                webhook_verdict(Ok(None), None, false),
                Verdict::Ok,
                "none set, so polling works",
            ),
            (
                webhook_verdict(host(), None, false),
                Verdict::Fail,
                "a webhook to hooks.example.org is set on this token, so Telegram refuses \
                 polling (409 Conflict); run `storyline doctor --fix` to remove it (pending \
                 updates are kept), or set telegram.delete_webhook = true",
            ),
            (
                webhook_verdict(host(), None, true),
                Verdict::Note,
                "a webhook to hooks.example.org is set; `storyline run` removes it, as \
                 telegram.delete_webhook = true asks",
            ),
            (
                webhook_verdict(host(), Some(Ok(())), false),
                Verdict::Ok,
                "a webhook to hooks.example.org blocked polling; removed it (pending updates kept)",
            ),
            (
                webhook_verdict(host(), Some(Err(refused())), false),
                Verdict::Fail,
                "a webhook to hooks.example.org blocks polling, and removing it failed: \
                 Telegram error 401: Unauthorized",
            ),
            (
                webhook_verdict(Err(refused()), None, false),
                Verdict::Note,
                "getWebhookInfo: Telegram error 401: Unauthorized; could not tell whether a \
                 webhook blocks polling",
            ),
        ];
        for (found, verdict, text) in cases {
            assert_eq!((found.verdict, found.text.as_str()), (verdict, text));
        }
    }

    #[test]
    fn the_report_has_one_aligned_line_per_check_and_a_total() {
        let report = Report {
            findings: vec![
                finding(
                    Verdict::Ok,
                    "config",
                    "/etc/storyline/storyline.toml is valid",
                ),
                finding(Verdict::Fail, "key file", "missing\nrestore it"),
                finding(Verdict::Note, "public_url", "not set"),
            ],
        };
        assert!(!report.passed());
        expect![[r#"
            ok    config      /etc/storyline/storyline.toml is valid
            FAIL  key file    missing
                              restore it
            note  public_url  not set
            1 of 3 checks failed.
        "#]]
        .assert_eq(&report.render());
    }

    #[test]
    fn media_counts_per_category() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("quotes/2024")).unwrap();
        fs::create_dir_all(root.join("products")).unwrap();
        fs::create_dir_all(root.join(".trash")).unwrap();
        for file in [
            "quotes/a.jpg",
            "quotes/2024/b.PNG",
            "products/c.mp4",
            "top.webp",
            "notes.txt",
            ".trash/d.jpg",
        ] {
            fs::write(root.join(file), b"x").unwrap();
        }
        let f = check_media(root);
        assert_eq!(f.verdict, Verdict::Ok, "{}", f.text);
        assert!(
            f.text
                .ends_with(": 3 photos, 1 video (products 1, quotes 2, uncategorized 1)"),
            "{}",
            f.text
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(check_media(empty.path()).verdict, Verdict::Note);
        assert_eq!(check_media(&root.join("missing")).verdict, Verdict::Fail);
    }
}
