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

use crate::bot::keyfile::KEY_LEN;
use crate::config::{self, Config};
use crate::db::{self, accounts::TokenRow};
use crate::domain::markup::plural;
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
    if dest.as_os_str().as_encoded_bytes().ends_with(b"/") && !dest.is_dir() {
        // Named as a folder (`backup /mnt/usb/`), so it is one that is missing.
        check_folder(dest.components().as_path())?;
    }
    let dest = if dest.is_dir() {
        dest.join(format!(
            "storyline-{}.db",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    } else {
        dest.to_path_buf()
    };
    // Before anything is written there: a missing folder is the user's to fix,
    // and must not come back as an error about our temporary file.
    check_folder(match dest.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    })?;
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

/// The folder a backup goes to must be there: says which one is missing.
fn check_folder(folder: &Path) -> Result<()> {
    match fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("{} is not a folder", folder.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "folder {} does not exist; create it first (mkdir -p {0}) or give another PATH",
            folder.display()
        ),
        Err(e) => bail!("folder {}: {e}{}", folder.display(), permission_hint(&e)),
    }
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

/// The database at `path` as a private copy in memory with the migrations
/// applied, for commands that only look (`plan`, `check`): the file is only
/// read, and a missing one is not created (the copy is then a new database).
pub fn read_only_copy(path: &Path) -> Result<Connection> {
    let mut copy = Connection::open_in_memory()?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).context(format!("{}: reading the database", path.display())),
        Ok(_) => {
            let live = open_leaving_nothing(path)?;
            copy_all_pages(&live, &mut copy)
                .with_context(|| format!("{}: reading the database", path.display()))?;
        }
    }
    db::migrate(&mut copy).with_context(|| {
        format!(
            "{}: its migrations do not match this storyline {}",
            path.display(),
            env!("CARGO_PKG_VERSION")
        )
    })?;
    Ok(copy)
}

/// Opens the database to read without creating anything beside it. SQLite
/// gives a read-only connection to a WAL database the -wal and -shm files it
/// lacks; without a -wal (no daemon has it open), the file alone is the whole
/// database and is read as immutable instead.
fn open_leaving_nothing(path: &Path) -> Result<Connection> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if fs::symlink_metadata(&wal).is_ok() {
        return open_read_only(path);
    }
    let mut uri = String::from("file:");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' | b'~' => {
                uri.push(char::from(*byte));
            }
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("{}: opening the database", path.display()))
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
        b => plural(b, "byte", "bytes"),
    }
}

// ---- doctor ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Worth knowing, not wrong: a feature left off, a file not created yet.
    Note,
    /// Works, but should be fixed: a secret others can read.
    Warn,
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
                Verdict::Warn => "WARN",
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
        let warned = self
            .findings
            .iter()
            .filter(|f| f.verdict == Verdict::Warn)
            .count();
        if failed == 0 && warned > 0 {
            let _ = writeln!(
                text,
                "All checks passed, with {warned} {} to act on.",
                if warned == 1 { "warning" } else { "warnings" }
            );
        } else if failed == 0 {
            text.push_str("All checks passed.\n");
        } else {
            let _ = writeln!(
                text,
                "{failed} of {} failed.",
                plural(self.findings.len(), "check", "checks")
            );
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
    findings.extend(check_config_secrets(&path, &config.secrets_in_file));
    let (database, copy) = check_database(&config);
    findings.push(database);
    findings.push(check_access(&config, copy.as_ref()));
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

/// A secret in storyline.toml while the file is readable beyond its owner: a
/// warning, with the two ways out (the env file, or a private mode).
fn check_config_secrets(path: &Path, secrets: &[&str]) -> Option<Finding> {
    if secrets.is_empty() {
        return None;
    }
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    secrets_verdict(path, secrets, mode)
}

/// The pure part of `check_config_secrets`.
fn secrets_verdict(path: &Path, secrets: &[&str], mode: u32) -> Option<Finding> {
    let readers = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (_, true) => "everyone on this machine",
        (true, false) => "its group",
        (false, false) => return None,
    };
    let env_file = path
        .parent()
        .map(|d| d.join(ENV_FILE_NAME))
        .unwrap_or_else(|| PathBuf::from(ENV_FILE_NAME));
    let variables = secrets
        .iter()
        .map(|key| match *key {
            "telegram.bot_token" => "STORYLINE_TELEGRAM_BOT_TOKEN=...",
            _ => "STORYLINE_INSTAGRAM_APP_SECRET=...",
        })
        .collect::<Vec<_>>()
        .join(" and ");
    Some(finding(
        Verdict::Warn,
        "secrets",
        format!(
            "{} holds {} and is mode {mode:04o}, readable by {readers}; put {variables} in {} \
             (mode 0600; the service reads it as root) and empty {} here, or, when only its \
             owner runs storyline, run: chmod 600 {0}",
            path.display(),
            secrets.join(" and "),
            env_file.display(),
            if secrets.len() == 1 {
                "the key"
            } else {
                "the keys"
            }
        ),
    ))
}

/// Who the bot answers to: the configured and paired admins and the chats they
/// serve, or how to pair when there are none yet.
fn check_access(config: &Config, copy: Option<&Connection>) -> Finding {
    const TOPIC: &str = "access";
    let access = match copy {
        Some(conn) => match crate::bot::pairing::Access::read(conn, config, chrono::Utc::now()) {
            Ok(access) => access,
            Err(e) => return finding(Verdict::Fail, TOPIC, format!("reading the admins: {e:#}")),
        },
        None => crate::bot::pairing::Access::from_config(config),
    };
    let verdict = if access.pairing_pending() {
        Verdict::Note
    } else {
        Verdict::Ok
    };
    finding(verdict, TOPIC, access.lines().join("\n"))
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
                    "{} is missing, and {} sealed with it: restore it \
                     from your backup. Storyline will not start without it (if it is lost for \
                     good, `storyline accounts forget-tokens --yes`, then /connect again)",
                    path.display(),
                    plural(tokens.len(), "Instagram token was", "Instagram tokens were")
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
    let key = match crate::bot::keyfile::read(path) {
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
                "{} does not open {unopened} of {}: it is not the key \
                 they were sealed with; restore the right one from your backup, or add the \
                 tokens again (storyline accounts add, or /connect)",
                path.display(),
                plural(
                    tokens.len(),
                    "sealed Instagram token",
                    "sealed Instagram tokens"
                )
            ),
        );
    }
    Finding {
        text: format!(
            "{}, opens the {}",
            verdict.text,
            plural(tokens.len(), "sealed token", "sealed tokens")
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
    // The scanner's own walk, rules and content check, so both count the same.
    let survey = match crate::media::survey(dir) {
        Ok(survey) => survey,
        Err(e) => {
            let hint = e
                .downcast_ref::<io::Error>()
                .map(permission_hint)
                .unwrap_or_default();
            return finding(
                Verdict::Fail,
                TOPIC,
                format!("{}: cannot read: {e:#}{hint}", dir.display()),
            );
        }
    };
    media_verdict(dir, &survey)
}

fn media_verdict(dir: &Path, survey: &crate::media::Survey) -> Finding {
    const TOPIC: &str = "media";
    let shown = dir.display();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let unsupported: usize = survey.unsupported.values().sum();
    let broken: usize = survey.broken.values().map(Vec::len).sum();
    let mut not_posted = Vec::new();
    if unsupported > 0 {
        not_posted.push(plural(
            unsupported,
            "file of a kind not supported",
            "files of kinds not supported",
        ));
    }
    if broken > 0 {
        not_posted.push(plural(broken, "broken file", "broken files"));
    }
    let not_posted = if not_posted.is_empty() {
        String::new()
    } else {
        format!(
            "; not posted: {} (storyline scan names them)",
            not_posted.join(", ")
        )
    };
    if survey.images + survey.videos == 0 {
        return finding(
            Verdict::Note,
            TOPIC,
            format!(
                "{shown} has no photos or videos yet; add some (top-level folders are categories){not_posted}"
            ),
        );
    }
    let categories = survey
        .per_category
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        "{shown}: {}, {} ({categories}){not_posted}",
        plural(survey.images, "photo", "photos"),
        plural(survey.videos, "video", "videos"),
    );
    if survey.unreadable > 0 {
        let _ = write!(
            text,
            "; {} could not be read (check owner and permissions)",
            plural(survey.unreadable, "entry", "entries")
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
            Verdict::Fail,
            TOPIC,
            format!(
                "no bot token, so `storyline run` would stop at once (exit 2); put \
                 STORYLINE_TELEGRAM_BOT_TOKEN=... in {} (or telegram.bot_token in {}); \
                 @BotFather in Telegram gives one",
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
        "{}; {}",
        app.text.split(':').next().unwrap_or_default(),
        plural(tokens.len(), "active account", "active accounts")
    );
    if let Some(soonest) = expires.iter().filter(|t| **t > now).min() {
        let _ = write!(
            text,
            ", next token expiry in {}",
            plural((*soonest - now).num_days(), "day", "days")
        );
    }
    if expired > 0 {
        let _ = write!(
            text,
            "; {} expired: connect {} again (/connect in Telegram)",
            plural(expired, "token", "tokens"),
            if expired == 1 {
                "that account"
            } else {
                "those accounts"
            }
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
        expect!["app id 1, app secret set; 2 active accounts, next token expiry in 11 days"]
            .assert_eq(&fine.text);
        assert_eq!(fine.verdict, Verdict::Ok);
        let expired = check(Some("1"), true, &[token(-1), token(12)]);
        assert_eq!(expired.verdict, Verdict::Fail, "{}", expired.text);
        expect!["app id 1, app secret set; 2 active accounts, next token expiry in 11 days; 1 token expired: connect that account again (/connect in Telegram)"]
            .assert_eq(&expired.text);
        let one = check(Some("1"), true, &[token(2)]);
        expect!["app id 1, app secret set; 1 active account, next token expiry in 1 day"]
            .assert_eq(&one.text);
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
    fn a_warning_passes_and_is_counted() {
        let report = Report {
            findings: vec![
                finding(Verdict::Ok, "config", "valid"),
                finding(Verdict::Warn, "secrets", "readable"),
            ],
        };
        assert!(report.passed());
        expect![[r#"
            ok    config      valid
            WARN  secrets     readable
            All checks passed, with 1 warning to act on.
        "#]]
        .assert_eq(&report.render());
    }

    #[test]
    fn secrets_in_a_readable_config_are_a_warning() {
        let path = Path::new("/etc/storyline/storyline.toml");
        let token = ["telegram.bot_token"];
        for mode in [0o600, 0o400, 0o700] {
            assert_eq!(secrets_verdict(path, &token, mode), None, "{mode:o}");
        }
        let group = secrets_verdict(path, &token, 0o640).unwrap();
        assert_eq!(group.verdict, Verdict::Warn);
        expect!["/etc/storyline/storyline.toml holds telegram.bot_token and is mode 0640, readable by its group; put STORYLINE_TELEGRAM_BOT_TOKEN=... in /etc/storyline/env (mode 0600; the service reads it as root) and empty the key here, or, when only its owner runs storyline, run: chmod 600 /etc/storyline/storyline.toml"].assert_eq(&group.text);
        let both = ["telegram.bot_token", "instagram.app_secret"];
        let others = secrets_verdict(path, &both, 0o644).unwrap();
        expect!["/etc/storyline/storyline.toml holds telegram.bot_token and instagram.app_secret and is mode 0644, readable by everyone on this machine; put STORYLINE_TELEGRAM_BOT_TOKEN=... and STORYLINE_INSTAGRAM_APP_SECRET=... in /etc/storyline/env (mode 0600; the service reads it as root) and empty the keys here, or, when only its owner runs storyline, run: chmod 600 /etc/storyline/storyline.toml"].assert_eq(&others.text);
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
            fs::write(root.join(file), crate::samples::file(file, file.as_bytes())).unwrap();
        }
        let f = check_media(root);
        assert_eq!(f.verdict, Verdict::Ok, "{}", f.text);
        assert!(
            f.text.ends_with(
                ": 3 photos, 1 video (products 1, quotes 2, uncategorized 1); \
                 not posted: 1 file of a kind not supported (storyline scan names them)"
            ),
            "{}",
            f.text
        );

        // The scanner's walk: a symlink loop is refused, not followed 32 deep;
        // a file that is not what its extension says is not counted as media.
        std::os::unix::fs::symlink("..", root.join("quotes/2024/up")).unwrap();
        fs::write(root.join("products/d.mp4"), b"random bytes").unwrap();
        let f = check_media(root);
        assert!(
            f.text.ends_with(
                ": 3 photos, 1 video (products 1, quotes 2, uncategorized 1); \
                 not posted: 1 file of a kind not supported, 1 broken file (storyline scan names them)"
            ),
            "{}",
            f.text
        );

        let empty = tempfile::tempdir().unwrap();
        assert_eq!(check_media(empty.path()).verdict, Verdict::Note);
        assert_eq!(check_media(&root.join("missing")).verdict, Verdict::Fail);
    }
}
