//! Loading and validating `storyline.toml`.
//!
//! The file is read into `RawFile`, a private serde mirror in which every section and key
//! is optional and every value that needs checking keeps its byte span. `Config`, the only
//! type the rest of the program sees, is built from it by `validate`, so a value that is
//! out of range never gets past this module and every complaint can name the key and the
//! line it came from.

use std::fmt;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Where `locate` looks when neither `--config` nor `./storyline.toml` is there.
pub const DEFAULT_SYSTEM_PATH: &str = "/etc/storyline/storyline.toml";

const ENV_BOT_TOKEN: &str = "STORYLINE_TELEGRAM_BOT_TOKEN";
const ENV_APP_SECRET: &str = "STORYLINE_INSTAGRAM_APP_SECRET";

pub use crate::secret::{Secret, MASK};

#[derive(Debug, Clone)]
pub struct Config {
    /// The file that was loaded.
    pub source: PathBuf,
    /// The keys that hold a secret in the file itself (not only in the
    /// environment), e.g. "telegram.bot_token": the file must then be private.
    pub secrets_in_file: Vec<&'static str>,
    pub telegram: TelegramConfig,
    pub access: AccessConfig,
    pub storage: StorageConfig,
    pub media: MediaConfig,
    pub web: WebConfig,
    pub instagram: InstagramConfig,
    pub defaults: Defaults,
    pub log: LogConfig,
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// `None` is allowed here: only `run` needs a token, and it says so itself.
    pub bot_token: Option<Secret>,
    /// Without a trailing slash.
    pub api_url: String,
    pub poll_timeout_secs: u64,
    /// Remove a webhook set on the token (which makes getUpdates fail with 409)
    /// instead of only reporting it.
    pub delete_webhook: bool,
}

#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub admin_user_ids: Vec<i64>,
    pub allowed_chat_ids: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Absolute; a relative path in the file is taken from the file's folder.
    pub database: PathBuf,
    /// Absolute; a relative path in the file is taken from the file's folder.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Absolute; a relative path in the file is taken from the file's folder.
    pub dir: PathBuf,
    pub rescan_minutes: u32,
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// `None` when empty in the file; never ends with a slash.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InstagramConfig {
    pub app_id: Option<String>,
    pub app_secret: Option<Secret>,
    /// Without a trailing slash.
    pub api_url: String,
    /// With the Graph API version (`…/v26.0`) and without a trailing slash.
    pub graph_url: String,
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub dry_run_mode: bool,
    pub enable_instagram_api: bool,
    pub posts_per_day: u32,
    pub posting_hours_start: u32,
    pub posting_hours_end: u32,
    pub timezone: crate::zone::Tz,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: log::LevelFilter,
}

/// `[limits]`: each chat's token bucket on commands and button presses. It lives in
/// the daemon's memory, so a restart refills every bucket.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Tokens added per minute (the sustained rate).
    pub commands_per_minute: u32,
    /// The bucket's size: how many may come at once after a quiet spell.
    pub command_burst: u32,
}

/// Why the configuration could not be used. Each line reads `file:line: what is wrong`.
#[derive(Debug)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

/// `--config PATH` if given, else `./storyline.toml` if it exists, else
/// `DEFAULT_SYSTEM_PATH` if it exists, else an error that lists the places looked.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    locate_among(
        explicit,
        Path::new("storyline.toml"),
        Path::new(DEFAULT_SYSTEM_PATH),
    )
}

fn locate_among(
    explicit: Option<&Path>,
    local: &Path,
    system: &Path,
) -> Result<PathBuf, ConfigError> {
    // An explicit path is returned even when missing: `load` then reports the IO error
    // for the file the user actually named, instead of silently using another one.
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    for candidate in [local, system] {
        if candidate.is_file() {
            return Ok(std::path::absolute(candidate).unwrap_or_else(|_| candidate.to_path_buf()));
        }
    }
    Err(ConfigError::new(format!(
        "no configuration file found; looked for {} and {} (use --config PATH)",
        display_local(local),
        system.display()
    )))
}

/// Shows a bare file name as `./name` so the message makes clear it means the
/// current folder.
fn display_local(path: &Path) -> String {
    if path.is_relative() && path.components().count() == 1 {
        format!("./{}", path.display())
    } else {
        path.display().to_string()
    }
}

/// Reads and validates the file. `env` looks up environment variables (pass
/// `|k| std::env::var(k).ok()` in production; tests pass a closure).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|err| ConfigError::new(format!("{}: cannot read: {err}", path.display())))?;
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parent = match source.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base_dir = std::path::absolute(&parent).unwrap_or(parent);
    parse_bytes(&bytes, &source, &base_dir, env)
}

/// Same as `load` from text; relative paths resolve against `base_dir`.
pub fn parse(
    text: &str,
    source: &Path,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let raw = match toml::from_str::<RawFile>(text) {
        Ok(raw) => raw,
        Err(err) => return Err(ConfigError::new(describe_toml_error(text, source, &err))),
    };
    let mut checker = Checker {
        text,
        source,
        base_dir,
        problems: Vec::new(),
    };
    let config = checker.validate(raw, env);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::new(checker.problems.join("\n")))
    }
}

fn parse_bytes(
    bytes: &[u8],
    source: &Path,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, source, base_dir, env),
        Err(err) => {
            let offset = err.valid_up_to();
            Err(ConfigError::new(format!(
                "{}:{}: not valid UTF-8 (byte {offset})",
                source.display(),
                line_of(bytes, offset)
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The raw file. Numbers are read as i64 so that a negative or huge value becomes a range
// error naming the key rather than a serde message about u32.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawFile {
    telegram: RawTelegram,
    access: RawAccess,
    storage: RawStorage,
    media: RawMedia,
    web: RawWeb,
    instagram: RawInstagram,
    defaults: RawDefaults,
    log: RawLog,
    limits: RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawTelegram {
    bot_token: Option<Spanned<String>>,
    api_url: Option<Spanned<String>>,
    poll_timeout_secs: Option<Spanned<i64>>,
    delete_webhook: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawAccess {
    admin_user_ids: Option<Vec<i64>>,
    allowed_chat_ids: Option<Vec<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawStorage {
    database: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawMedia {
    dir: Option<Spanned<String>>,
    rescan_minutes: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawWeb {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawInstagram {
    app_id: Option<String>,
    app_secret: Option<String>,
    api_url: Option<Spanned<String>>,
    graph_url: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawDefaults {
    dry_run_mode: Option<bool>,
    enable_instagram_api: Option<bool>,
    posts_per_day: Option<Spanned<i64>>,
    posting_hours_start: Option<Spanned<i64>>,
    posting_hours_end: Option<Spanned<i64>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    commands_per_minute: Option<Spanned<i64>>,
    command_burst: Option<Spanned<i64>>,
}

// ---------------------------------------------------------------------------------------
// Validation. Every check records its problem and returns the default, so one run reports
// every bad key at once instead of making the user fix them one restart at a time.

struct Checker<'a> {
    text: &'a str,
    source: &'a Path,
    base_dir: &'a Path,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn validate(&mut self, raw: RawFile, env: &dyn Fn(&str) -> Option<String>) -> Config {
        let RawFile {
            telegram,
            access,
            storage,
            media,
            web,
            instagram,
            defaults,
            log,
            limits,
        } = raw;
        let secrets_in_file = [
            (
                "telegram.bot_token",
                telegram.bot_token.as_ref().map(|t| t.get_ref()),
            ),
            ("instagram.app_secret", instagram.app_secret.as_ref()),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some_and(|v| !v.trim().is_empty()))
        .map(|(key, _)| key)
        .collect();
        Config {
            source: self.source.to_path_buf(),
            secrets_in_file,
            telegram: TelegramConfig {
                bot_token: self.bot_token(telegram.bot_token, env(ENV_BOT_TOKEN)),
                api_url: self.url(
                    "telegram.api_url",
                    telegram.api_url,
                    "https://api.telegram.org",
                ),
                poll_timeout_secs: self.number(
                    "telegram.poll_timeout_secs",
                    telegram.poll_timeout_secs,
                    50,
                    1..=300,
                ),
                delete_webhook: telegram.delete_webhook.unwrap_or(false),
            },
            access: AccessConfig {
                admin_user_ids: access.admin_user_ids.unwrap_or_default(),
                allowed_chat_ids: access.allowed_chat_ids.unwrap_or_default(),
            },
            storage: StorageConfig {
                database: self.path("storage.database", storage.database, "storyline.db"),
                key_file: self.path("storage.key_file", storage.key_file, "secret.key"),
            },
            media: MediaConfig {
                dir: self.path("media.dir", media.dir, "media"),
                rescan_minutes: self.number(
                    "media.rescan_minutes",
                    media.rescan_minutes,
                    10,
                    1..=1440,
                ),
            },
            web: WebConfig {
                listen: self.listen(web.listen),
                public_url: self.public_url(web.public_url),
            },
            instagram: InstagramConfig {
                app_id: non_empty(instagram.app_id),
                app_secret: secret(instagram.app_secret, env(ENV_APP_SECRET)),
                api_url: self.url(
                    "instagram.api_url",
                    instagram.api_url,
                    "https://api.instagram.com",
                ),
                // Without a version, the pinned one is added: the API version never
                // floats with whatever Instagram serves to unversioned calls.
                graph_url: versioned_graph_url(&self.url(
                    "instagram.graph_url",
                    instagram.graph_url,
                    DEFAULT_GRAPH_URL,
                )),
            },
            defaults: Defaults {
                dry_run_mode: defaults.dry_run_mode.unwrap_or(true),
                enable_instagram_api: defaults.enable_instagram_api.unwrap_or(false),
                posts_per_day: self.number(
                    "defaults.posts_per_day",
                    defaults.posts_per_day,
                    3,
                    1..=50,
                ),
                posting_hours_start: self.number(
                    "defaults.posting_hours_start",
                    defaults.posting_hours_start,
                    14,
                    0..=23,
                ),
                posting_hours_end: self.number(
                    "defaults.posting_hours_end",
                    defaults.posting_hours_end,
                    2,
                    0..=23,
                ),
                timezone: self.timezone(defaults.timezone),
            },
            log: LogConfig {
                level: self.log_level(log.level),
            },
            limits: LimitsConfig {
                commands_per_minute: self.number(
                    "limits.commands_per_minute",
                    limits.commands_per_minute,
                    30,
                    1..=600,
                ),
                command_burst: self.number(
                    "limits.command_burst",
                    limits.command_burst,
                    20,
                    1..=100,
                ),
            },
        }
    }

    /// The token `run` uses (the environment's unless empty, else the file's),
    /// if it has the shape of a Bot API token; the complaint never shows it.
    fn bot_token(
        &mut self,
        from_file: Option<Spanned<String>>,
        from_env: Option<String>,
    ) -> Option<Secret> {
        if let Some(token) = non_empty(from_env) {
            if is_bot_token(&token) {
                return Some(Secret::new(token));
            }
            self.problems
                .push(format!("{ENV_BOT_TOKEN} (environment) {NOT_A_BOT_TOKEN}"));
            return None;
        }
        let from_file = from_file?;
        let span = from_file.span();
        let token = non_empty(Some(from_file.into_inner()))?;
        if is_bot_token(&token) {
            return Some(Secret::new(token));
        }
        self.complain(span, format!("telegram.bot_token {NOT_A_BOT_TOKEN}"));
        None
    }

    fn complain(&mut self, span: Range<usize>, message: String) {
        let line = line_of(self.text.as_bytes(), span.start);
        self.problems
            .push(format!("{}:{line}: {message}", self.source.display()));
    }

    fn number<T>(
        &mut self,
        key: &str,
        value: Option<Spanned<i64>>,
        default: T,
        range: RangeInclusive<i64>,
    ) -> T
    where
        T: TryFrom<i64>,
    {
        let Some(value) = value else {
            return default;
        };
        let number = *value.get_ref();
        match T::try_from(number) {
            Ok(converted) if range.contains(&number) => converted,
            _ => {
                let (low, high) = (range.start(), range.end());
                self.complain(
                    value.span(),
                    format!("{key} = {number} is out of range ({low}–{high})"),
                );
                default
            }
        }
    }

    fn url(&mut self, key: &str, value: Option<Spanned<String>>, default: &str) -> String {
        let Some(value) = value else {
            return default.to_string();
        };
        match check_http_url(value.get_ref()) {
            Ok(url) => url,
            Err(why) => {
                self.complain(value.span(), format!("{key} = {:?} {why}", value.get_ref()));
                default.to_string()
            }
        }
    }

    fn public_url(&mut self, value: Option<Spanned<String>>) -> Option<String> {
        let value = value?;
        if value.get_ref().trim().is_empty() {
            return None;
        }
        match check_http_url(value.get_ref()) {
            Ok(url) => Some(url),
            Err(why) => {
                self.complain(
                    value.span(),
                    format!("web.public_url = {:?} {why} (or be empty)", value.get_ref()),
                );
                None
            }
        }
    }

    fn path(&mut self, key: &str, value: Option<Spanned<String>>, default: &str) -> PathBuf {
        let given = match value {
            Some(value) if value.get_ref().trim().is_empty() => {
                self.complain(value.span(), format!("{key} must not be empty"));
                default.to_string()
            }
            Some(value) => value.into_inner(),
            None => default.to_string(),
        };
        let joined = self.base_dir.join(given);
        // `absolute` only fails when the current folder is gone; the joined path is then
        // the best there is, and the first attempt to open it will say what is wrong.
        std::path::absolute(&joined).unwrap_or(joined)
    }

    fn listen(&mut self, value: Option<Spanned<String>>) -> SocketAddr {
        let default = SocketAddr::from(([127, 0, 0, 1], 8080));
        let Some(value) = value else {
            return default;
        };
        match value.get_ref().trim().parse() {
            Ok(addr) => addr,
            Err(_) => {
                self.complain(
                    value.span(),
                    format!(
                        "web.listen = {:?} is not an IP address and port (e.g. \"127.0.0.1:8080\")",
                        value.get_ref()
                    ),
                );
                default
            }
        }
    }

    fn timezone(&mut self, value: Option<Spanned<String>>) -> crate::zone::Tz {
        let Some(value) = value else {
            return crate::zone::Tz::UTC;
        };
        match value.get_ref().trim().parse() {
            Ok(tz) => tz,
            Err(_) => {
                self.complain(
                    value.span(),
                    format!(
                        "defaults.timezone = {:?} is not a known IANA time zone (e.g. \"Europe/Berlin\")",
                        value.get_ref()
                    ),
                );
                crate::zone::Tz::UTC
            }
        }
    }

    fn log_level(&mut self, value: Option<Spanned<String>>) -> log::LevelFilter {
        let Some(value) = value else {
            return log::LevelFilter::Info;
        };
        // LevelFilter's FromStr ignores case, which is what we want for a hand-edited file.
        match value.get_ref().trim().parse() {
            Ok(level) => level,
            Err(_) => {
                self.complain(
                    value.span(),
                    format!(
                        "log.level = {:?} is not one of off, error, warn, info, debug, trace",
                        value.get_ref()
                    ),
                );
                log::LevelFilter::Info
            }
        }
    }
}

/// Follows the key or variable name in an error; never includes the value.
const NOT_A_BOT_TOKEN: &str = "is not a Telegram bot token: expected digits, a colon, then 30 or \
     more letters, digits, - or _ (the shape @BotFather gives, like 123456789:AAH…); \
     copy it again from @BotFather (/mybots, API Token)";

/// Whether `token` has the shape of a Bot API token: the bot's id (digits), a
/// colon, and a secret of 30 or more URL-safe characters. Anything else could
/// never work, and would not even make a valid request URL.
pub fn is_bot_token(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() >= 30
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The file's value unless the environment has a non-empty one; empty means "not set"
/// in both, so a blank `bot_token = ""` template line does not count as a token.
fn secret(from_file: Option<String>, from_env: Option<String>) -> Option<Secret> {
    non_empty(from_env)
        .or_else(|| non_empty(from_file))
        .map(Secret::new)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Returns the URL without trailing slashes, or the reason it is unusable (worded to
/// follow `key = "value"`).
fn check_http_url(url: &str) -> Result<String, &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace");
    }
    if rest.trim_end_matches('/').is_empty() {
        return Err("has no host after the scheme");
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// 1-based line number of a byte offset; offsets past the end count as the last line.
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

// ---------------------------------------------------------------------------------------
// Turning toml's errors into `file:line: section.key: ...`. toml names the offending
// field for unknown keys but not for wrong types, so the key is found by parsing the text
// again into a spanned tree and looking for the value the error's span points at.

fn describe_toml_error(text: &str, source: &Path, err: &toml::de::Error) -> String {
    let location = match err.span() {
        Some(span) => format!(
            "{}:{}",
            source.display(),
            line_of(text.as_bytes(), span.start)
        ),
        None => source.display().to_string(),
    };
    let message = err.message().trim();
    let what = match DeTable::parse(text) {
        // The text is not TOML at all, so there is no tree to search.
        Err(_) => describe_syntax_error(text, err.span(), message),
        Ok(document) => {
            let mut entries = Vec::new();
            collect_entries(document.get_ref(), "", 0, &mut entries);
            describe_shape_error(&entries, err.span(), message)
        }
    };
    format!("{location}: {what}")
}

fn describe_syntax_error(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    if message == "duplicate key" {
        if let Some(span) = span {
            if let Some(key) = text.get(span.clone()).filter(|k| !k.contains('\n')) {
                let key = key.trim();
                let full = match section_before(text, span.start) {
                    Some(section) if !section.is_empty() => format!("{section}.{key}"),
                    _ => key.to_string(),
                };
                return format!("duplicate key {full}");
            }
        }
    }
    format!("TOML syntax error: {message}")
}

/// The name in the last `[section]` header before `offset`, found by scanning lines;
/// good enough for naming a duplicate key, which is all it is used for.
fn section_before(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    before.lines().rev().find_map(|line| {
        let line = line.trim();
        let inner = line.strip_prefix('[')?;
        let end = inner.find(']')?;
        Some(inner[..end].trim_matches(['[', ' ']).to_string())
    })
}

fn describe_shape_error(entries: &[Entry], span: Option<Range<usize>>, message: &str) -> String {
    let Some(span) = span else {
        return message.to_string();
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(',').trim();
        let entry = entries
            .iter()
            .filter(|e| e.key_span.start <= span.start && span.start < e.key_span.end)
            .max_by_key(|e| e.depth);
        let (path, depth, is_table) = match entry {
            Some(e) => (e.path.as_str(), e.depth, e.found == "a table"),
            None => (field, 0, false),
        };
        let what = match (depth, is_table) {
            (0, true) => format!("unknown section [{path}]"),
            (0, false) => format!("unknown key {path} outside any section"),
            _ => format!("unknown key {path}"),
        };
        return if expected.is_empty() {
            what
        } else {
            format!("{what} ({expected})")
        };
    }
    // Every other serde complaint is about a value; the innermost one containing the
    // span is the one it means.
    let entry = entries
        .iter()
        .filter(|e| e.value_span.start <= span.start && span.end <= e.value_span.end)
        .min_by_key(|e| (e.value_span.len(), usize::MAX - e.depth));
    let Some(entry) = entry else {
        return message.to_string();
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let expected = rest
            .rsplit_once(", expected ")
            .map(|(_, e)| describe_expected(e))
            .unwrap_or_default();
        // An integer where an integer is wanted can only fail by not fitting in i64.
        if entry.found == "an integer" && expected == "an integer" {
            return format!(
                "{} = {} does not fit in a 64-bit integer",
                entry.path, entry.literal
            );
        }
        if !expected.is_empty() {
            return format!("{}: expected {expected}, found {}", entry.path, entry.found);
        }
    }
    format!("{}: {message}", entry.path)
}

/// Rewords serde's name for the type it wanted into what a TOML user would call it.
fn describe_expected(expected: &str) -> String {
    let expected = expected.trim();
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" => {
            "an integer".to_string()
        }
        "a sequence" => "an array".to_string(),
        "a boolean" => "a boolean (true or false)".to_string(),
        _ if expected.starts_with("struct ") => "a table".to_string(),
        _ => expected.to_string(),
    }
}

/// One key or array item of the parsed document, flattened with its dotted path.
struct Entry {
    path: String,
    depth: usize,
    key_span: Range<usize>,
    value_span: Range<usize>,
    found: &'static str,
    /// The integer's text, so "too large" errors can show what was written.
    literal: String,
}

/// toml's parser already refuses deeper nesting than this, but the walk must not depend
/// on that to keep its stack bounded.
const MAX_DEPTH: usize = 64;

fn collect_entries(table: &DeTable<'_>, prefix: &str, depth: usize, out: &mut Vec<Entry>) {
    if depth > MAX_DEPTH {
        return;
    }
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        collect_value(path, key.span(), value, depth, out);
    }
}

fn collect_value(
    path: String,
    key_span: Range<usize>,
    value: &Spanned<DeValue<'_>>,
    depth: usize,
    out: &mut Vec<Entry>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let literal = match value.get_ref() {
        DeValue::Integer(integer) => integer.as_str().to_string(),
        _ => String::new(),
    };
    out.push(Entry {
        path: path.clone(),
        depth,
        key_span,
        value_span: value.span(),
        found: type_with_article(value.get_ref()),
        literal,
    });
    match value.get_ref() {
        DeValue::Table(table) => collect_entries(table, &path, depth + 1, out),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_value(
                    format!("{path}[{index}]"),
                    item.span(),
                    item,
                    depth + 1,
                    out,
                );
            }
        }
        _ => {}
    }
}

fn type_with_article(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

// ---------------------------------------------------------------------------------------
// Showing the resolved configuration.

impl Config {
    /// The resolved configuration as TOML text for `storyline check`: every key, secrets
    /// shown as "********" when set and "" (with a comment "not set") when not. Never the
    /// secret.
    pub fn render_masked(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!(
            "# Resolved configuration from {}",
            self.source.display()
        ));
        line(String::new());
        line("[telegram]".into());
        line(masked(
            "bot_token",
            self.telegram.bot_token.as_ref(),
            ENV_BOT_TOKEN,
        ));
        line(format!("api_url = {}", quote(&self.telegram.api_url)));
        line(format!(
            "poll_timeout_secs = {}",
            self.telegram.poll_timeout_secs
        ));
        line(format!("delete_webhook = {}", self.telegram.delete_webhook));
        line(String::new());
        line("[access]".into());
        line(format!(
            "admin_user_ids = {}",
            id_list(&self.access.admin_user_ids)
        ));
        line(format!(
            "allowed_chat_ids = {}",
            id_list(&self.access.allowed_chat_ids)
        ));
        line(String::new());
        line("[storage]".into());
        line(format!("database = {}", quote_path(&self.storage.database)));
        line(format!("key_file = {}", quote_path(&self.storage.key_file)));
        line(String::new());
        line("[media]".into());
        line(format!("dir = {}", quote_path(&self.media.dir)));
        line(format!("rescan_minutes = {}", self.media.rescan_minutes));
        line(String::new());
        line("[web]".into());
        line(format!("listen = {}", quote(&self.web.listen.to_string())));
        line(optional("public_url", self.web.public_url.as_deref()));
        line(String::new());
        line("[instagram]".into());
        line(optional("app_id", self.instagram.app_id.as_deref()));
        line(masked(
            "app_secret",
            self.instagram.app_secret.as_ref(),
            ENV_APP_SECRET,
        ));
        line(format!("api_url = {}", quote(&self.instagram.api_url)));
        line(format!("graph_url = {}", quote(&self.instagram.graph_url)));
        line(String::new());
        line("[defaults]".into());
        line(format!("dry_run_mode = {}", self.defaults.dry_run_mode));
        line(format!(
            "enable_instagram_api = {}",
            self.defaults.enable_instagram_api
        ));
        line(format!("posts_per_day = {}", self.defaults.posts_per_day));
        line(format!(
            "posting_hours_start = {}",
            self.defaults.posting_hours_start
        ));
        line(format!(
            "posting_hours_end = {}",
            self.defaults.posting_hours_end
        ));
        line(format!(
            "timezone = {}",
            quote(self.defaults.timezone.name())
        ));
        line(String::new());
        line("[log]".into());
        line(format!(
            "level = {}",
            quote(&self.log.level.as_str().to_ascii_lowercase())
        ));
        line(String::new());
        line("[limits]  # per chat, in memory: a restart refills them".into());
        line(format!(
            "commands_per_minute = {}",
            self.limits.commands_per_minute
        ));
        line(format!("command_burst = {}", self.limits.command_burst));
        out
    }
}

fn masked(key: &str, value: Option<&Secret>, env_name: &str) -> String {
    match value {
        Some(_) => format!("{key} = \"{MASK}\""),
        None => format!("{key} = \"\"  # not set (file or {env_name})"),
    }
}

fn optional(key: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => format!("{key} = {}", quote(value)),
        None => format!("{key} = \"\"  # not set"),
    }
}

/// TOML quoting, left to toml so that quotes, backslashes and newlines come out valid.
fn quote(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

fn id_list(ids: &[i64]) -> String {
    let items: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", items.join(", "))
}

// ---- the Graph API's address ------------------------------------------------------

/// The Graph API version this client was checked against: the latest in Meta's Graph
/// API changelog (v26.0, introduced 29 July 2026) and the one the Instagram Platform
/// `/me` reference uses in its request syntax.
pub const GRAPH_API_VERSION: &str = "v26.0";
/// `[instagram] graph_url` when storyline.toml leaves it out.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.instagram.com/v26.0";

/// `graph_url` with its API version: as it is when it ends in one (`…/v25.0`), else with
/// `GRAPH_API_VERSION` added, so the version is pinned whatever storyline.toml says.
pub fn versioned_graph_url(graph_url: &str) -> String {
    let graph_url = graph_url.trim_end_matches('/');
    if unversioned_graph_url(graph_url) != graph_url {
        graph_url.to_string()
    } else {
        format!("{graph_url}/{GRAPH_API_VERSION}")
    }
}

/// `graph_url` without a trailing API version: the base of `/access_token` and
/// `/refresh_access_token`, which the reference calls without one.
pub fn unversioned_graph_url(graph_url: &str) -> &str {
    let graph_url = graph_url.trim_end_matches('/');
    match graph_url.rsplit_once('/') {
        Some((root, last)) if is_api_version(last) && !root.ends_with('/') => root,
        _ => graph_url,
    }
}

/// "v26.0", "v3": a Graph API version path segment.
fn is_api_version(segment: &str) -> bool {
    let Some(number) = segment.strip_prefix('v') else {
        return false;
    };
    let mut parts = number.split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next();
    !major.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.is_none_or(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_EXAMPLE: &str = r#"# Storyline configuration
[telegram]
bot_token = "123456:ABC-file-token-0123456789abcdefghij"
api_url = "http://127.0.0.1:9000/"
poll_timeout_secs = 30
delete_webhook = true

[access]
admin_user_ids = [11, 22]
allowed_chat_ids = [-1001234567890, 42]

[storage]
database = "data/storyline.db"
key_file = "/var/lib/storyline/secret.key"

[media]
dir = "pictures"
rescan_minutes = 5

[web]
listen = "0.0.0.0:8443"
public_url = "https://stories.example.org/"

[instagram]
app_id = "987654"
app_secret = "ig-file-secret"
api_url = "https://api.instagram.com"
graph_url = "https://graph.instagram.com"

[defaults]
dry_run_mode = false
enable_instagram_api = true
posts_per_day = 5
posting_hours_start = 9
posting_hours_end = 23
timezone = "Europe/Berlin"

[log]
level = "DEBUG"

[limits]
commands_per_minute = 12
command_burst = 4
"#;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_with_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let owned: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |key: &str| owned.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        parse(
            text,
            Path::new("storyline.toml"),
            Path::new("/srv/story"),
            &lookup,
        )
    }

    /// Environment variables a case sees, as (name, value).
    type Env = &'static [(&'static str, &'static str)];

    enum Want {
        /// The exact error message.
        Error(&'static str),
        /// Lines that `render_masked` must contain.
        Renders(&'static [&'static str]),
    }

    struct Case {
        name: &'static str,
        text: &'static str,
        env: Env,
        want: Want,
    }

    fn check(case: &Case) {
        let result = parse_with_env(case.text, case.env);
        match (&case.want, result) {
            (Want::Error(expected), Err(err)) => {
                assert_eq!(err.message, *expected, "case {:?}", case.name)
            }
            (Want::Error(expected), Ok(config)) => panic!(
                "case {:?}: expected error {expected:?}, got {config:#?}",
                case.name
            ),
            (Want::Renders(lines), Ok(config)) => {
                let rendered = config.render_masked();
                for line in lines.iter() {
                    assert!(
                        rendered.lines().any(|l| l == *line),
                        "case {:?}: no line {line:?} in\n{rendered}",
                        case.name
                    );
                }
            }
            (Want::Renders(_), Err(err)) => {
                panic!("case {:?}: unexpected error {}", case.name, err.message)
            }
        }
    }

    const CASES: &[Case] = &[
        Case {
            name: "empty file gives every default",
            text: "",
            env: &[],
            want: Want::Renders(&[
                "bot_token = \"\"  # not set (file or STORYLINE_TELEGRAM_BOT_TOKEN)",
                "api_url = \"https://api.telegram.org\"",
                "poll_timeout_secs = 50",
                "delete_webhook = false",
                "admin_user_ids = []",
                "allowed_chat_ids = []",
                "database = \"/srv/story/storyline.db\"",
                "key_file = \"/srv/story/secret.key\"",
                "dir = \"/srv/story/media\"",
                "rescan_minutes = 10",
                "listen = \"127.0.0.1:8080\"",
                "public_url = \"\"  # not set",
                "app_id = \"\"  # not set",
                "app_secret = \"\"  # not set (file or STORYLINE_INSTAGRAM_APP_SECRET)",
                "api_url = \"https://api.instagram.com\"",
                "graph_url = \"https://graph.instagram.com/v26.0\"",
                "dry_run_mode = true",
                "enable_instagram_api = false",
                "posts_per_day = 3",
                "posting_hours_start = 14",
                "posting_hours_end = 2",
                "timezone = \"UTC\"",
                "level = \"info\"",
                "commands_per_minute = 30",
                "command_burst = 20",
            ]),
        },
        Case {
            name: "empty sections give defaults too",
            text: "[telegram]\n[access]\n[storage]\n[media]\n[web]\n[instagram]\n[defaults]\n[log]\n",
            env: &[],
            want: Want::Renders(&["poll_timeout_secs = 50", "timezone = \"UTC\""]),
        },
        Case {
            name: "empty strings mean not set",
            text: "[telegram]\nbot_token = \"\"\n[web]\npublic_url = \"\"\n[instagram]\napp_id = \"\"\napp_secret = \"\"\n",
            env: &[],
            want: Want::Renders(&[
                "bot_token = \"\"  # not set (file or STORYLINE_TELEGRAM_BOT_TOKEN)",
                "public_url = \"\"  # not set",
                "app_id = \"\"  # not set",
                "app_secret = \"\"  # not set (file or STORYLINE_INSTAGRAM_APP_SECRET)",
            ]),
        },
        Case {
            name: "env sets secrets the file leaves empty",
            text: "",
            env: &[
                ("STORYLINE_TELEGRAM_BOT_TOKEN", "654321:ENV-token-0123456789abcdefghijklm"),
                ("STORYLINE_INSTAGRAM_APP_SECRET", "env-secret"),
            ],
            want: Want::Renders(&["bot_token = \"********\"", "app_secret = \"********\""]),
        },
        Case {
            name: "relative and absolute paths",
            text: "[storage]\ndatabase = \"data/x.db\"\nkey_file = \"/etc/storyline/k\"\n[media]\ndir = \"../pics\"\n",
            env: &[],
            want: Want::Renders(&[
                "database = \"/srv/story/data/x.db\"",
                "key_file = \"/etc/storyline/k\"",
                "dir = \"/srv/story/../pics\"",
            ]),
        },
        Case {
            name: "boundaries are accepted",
            text: "[telegram]\npoll_timeout_secs = 300\n[media]\nrescan_minutes = 1440\n[defaults]\nposts_per_day = 1\nposting_hours_start = 0\nposting_hours_end = 23\n",
            env: &[],
            want: Want::Renders(&[
                "poll_timeout_secs = 300",
                "rescan_minutes = 1440",
                "posts_per_day = 1",
                "posting_hours_start = 0",
                "posting_hours_end = 23",
            ]),
        },
        Case {
            name: "urls lose trailing slashes, levels are case-insensitive, ipv6 listens",
            text: "[telegram]\napi_url = \"https://tg.local//\"\n[web]\nlisten = \"[::1]:9000\"\npublic_url = \"http://pi.local:8080/\"\n[log]\nlevel = \"Trace\"\n",
            env: &[],
            want: Want::Renders(&[
                "api_url = \"https://tg.local\"",
                "listen = \"[::1]:9000\"",
                "public_url = \"http://pi.local:8080\"",
                "level = \"trace\"",
            ]),
        },
        Case {
            name: "limits at their boundaries",
            text: "[limits]\ncommands_per_minute = 600\ncommand_burst = 1\n",
            env: &[],
            want: Want::Renders(&["commands_per_minute = 600", "command_burst = 1"]),
        },
        Case {
            name: "limits out of range",
            text: "[limits]\ncommands_per_minute = 0\ncommand_burst = 101\n",
            env: &[],
            want: Want::Error("storyline.toml:2: limits.commands_per_minute = 0 is out of range (1–600)\nstoryline.toml:3: limits.command_burst = 101 is out of range (1–100)"),
        },
        Case {
            name: "posts_per_day zero",
            text: "[telegram]\n\n[defaults]\n\n\n\nposts_per_day = 0\n",
            env: &[],
            want: Want::Error("storyline.toml:7: defaults.posts_per_day = 0 is out of range (1–50)"),
        },
        Case {
            name: "posts_per_day too many",
            text: "[defaults]\nposts_per_day = 51\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.posts_per_day = 51 is out of range (1–50)"),
        },
        Case {
            name: "poll timeout zero",
            text: "[telegram]\npoll_timeout_secs = 0\n",
            env: &[],
            want: Want::Error("storyline.toml:2: telegram.poll_timeout_secs = 0 is out of range (1–300)"),
        },
        Case {
            name: "poll timeout longer than the agent's",
            text: "[telegram]\napi_url = \"https://x\"\npoll_timeout_secs = 301\n",
            env: &[],
            want: Want::Error("storyline.toml:3: telegram.poll_timeout_secs = 301 is out of range (1–300)"),
        },
        Case {
            name: "negative where unsigned",
            text: "[media]\nrescan_minutes = -5\n",
            env: &[],
            want: Want::Error("storyline.toml:2: media.rescan_minutes = -5 is out of range (1–1440)"),
        },
        Case {
            name: "rescan too slow",
            text: "[media]\n\nrescan_minutes = 1441\n",
            env: &[],
            want: Want::Error("storyline.toml:3: media.rescan_minutes = 1441 is out of range (1–1440)"),
        },
        Case {
            name: "hour 24",
            text: "[defaults]\nposting_hours_start = 24\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.posting_hours_start = 24 is out of range (0–23)"),
        },
        Case {
            name: "negative hour",
            text: "[defaults]\nposting_hours_end = -1\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.posting_hours_end = -1 is out of range (0–23)"),
        },
        Case {
            name: "i64 extremes do not overflow the range check",
            text: "[telegram]\npoll_timeout_secs = -9223372036854775808\n",
            env: &[],
            want: Want::Error("storyline.toml:2: telegram.poll_timeout_secs = -9223372036854775808 is out of range (1–300)"),
        },
        Case {
            name: "integer beyond i64",
            text: "[telegram]\npoll_timeout_secs = 99999999999999999999\n",
            env: &[],
            want: Want::Error("storyline.toml:2: telegram.poll_timeout_secs = 99999999999999999999 does not fit in a 64-bit integer"),
        },
        Case {
            name: "chat id beyond i64",
            text: "[access]\nallowed_chat_ids = [\n  1,\n  -99999999999999999999,\n]\n",
            env: &[],
            want: Want::Error("storyline.toml:4: access.allowed_chat_ids[1] = -99999999999999999999 does not fit in a 64-bit integer"),
        },
        Case {
            name: "bad url scheme",
            text: "[instagram]\napi_url = \"ftp://x\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: instagram.api_url = \"ftp://x\" must start with http:// or https://"),
        },
        Case {
            name: "url without host",
            text: "[instagram]\ngraph_url = \"https://\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: instagram.graph_url = \"https://\" has no host after the scheme"),
        },
        Case {
            name: "graph url keeps its own api version, or gets the pinned one",
            text: "[instagram]\ngraph_url = \"https://graph.instagram.com/v25.0/\"\napi_url = \"http://127.0.0.1:9/\"\n",
            env: &[],
            want: Want::Renders(&["graph_url = \"https://graph.instagram.com/v25.0\"", "api_url = \"http://127.0.0.1:9\""]),
        },
        Case {
            name: "graph url without a version gets the pinned one",
            text: "[instagram]\ngraph_url = \"http://127.0.0.1:9/\"\n",
            env: &[],
            want: Want::Renders(&["graph_url = \"http://127.0.0.1:9/v26.0\""]),
        },
        Case {
            name: "bad public url",
            text: "[web]\npublic_url = \"example.org\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: web.public_url = \"example.org\" must start with http:// or https:// (or be empty)"),
        },
        Case {
            name: "listen needs an ip",
            text: "[web]\nlisten = \"localhost:8080\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: web.listen = \"localhost:8080\" is not an IP address and port (e.g. \"127.0.0.1:8080\")"),
        },
        Case {
            name: "unknown time zone",
            text: "[defaults]\ntimezone = \"Mars/Base\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.timezone = \"Mars/Base\" is not a known IANA time zone (e.g. \"Europe/Berlin\")"),
        },
        Case {
            name: "unknown log level",
            text: "[log]\nlevel = \"loud\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: log.level = \"loud\" is not one of off, error, warn, info, debug, trace"),
        },
        Case {
            name: "empty path",
            text: "[storage]\ndatabase = \"\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: storage.database must not be empty"),
        },
        Case {
            name: "every problem is reported at once",
            text: "[defaults]\nposts_per_day = 0\ntimezone = \"Nowhere\"\n[log]\nlevel = \"x\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.posts_per_day = 0 is out of range (1–50)\nstoryline.toml:3: defaults.timezone = \"Nowhere\" is not a known IANA time zone (e.g. \"Europe/Berlin\")\nstoryline.toml:5: log.level = \"x\" is not one of off, error, warn, info, debug, trace"),
        },
        Case {
            name: "unknown key in a section",
            text: "# comment\n[telegram]\nbot_tokn = \"x\"\n",
            env: &[],
            want: Want::Error("storyline.toml:3: unknown key telegram.bot_tokn (expected one of `bot_token`, `api_url`, `poll_timeout_secs`, `delete_webhook`)"),
        },
        Case {
            name: "unknown dotted key",
            text: "defaults.post_per_day = 3\n",
            env: &[],
            want: Want::Error("storyline.toml:1: unknown key defaults.post_per_day (expected one of `dry_run_mode`, `enable_instagram_api`, `posts_per_day`, `posting_hours_start`, `posting_hours_end`, `timezone`)"),
        },
        Case {
            name: "unknown section",
            text: "[telegram]\n\n[telegrm]\nbot_token = \"x\"\n",
            env: &[],
            want: Want::Error("storyline.toml:3: unknown section [telegrm] (expected one of `telegram`, `access`, `storage`, `media`, `web`, `instagram`, `defaults`, `log`, `limits`)"),
        },
        Case {
            name: "key before any section",
            text: "api_url = \"https://x\"\n[telegram]\n",
            env: &[],
            want: Want::Error("storyline.toml:1: unknown key api_url outside any section (expected one of `telegram`, `access`, `storage`, `media`, `web`, `instagram`, `defaults`, `log`, `limits`)"),
        },
        Case {
            name: "other serde errors still name the key",
            text: "[media]\nrescan_minutes = 1e400\n",
            env: &[],
            want: Want::Error("storyline.toml:2: media.rescan_minutes: floating-point number overflowed"),
        },
        Case {
            name: "wrong type for an integer",
            text: "[telegram]\n\n\npoll_timeout_secs = \"50\"\n",
            env: &[],
            want: Want::Error("storyline.toml:4: telegram.poll_timeout_secs: expected an integer, found a string"),
        },
        Case {
            name: "float for an integer",
            text: "[media]\nrescan_minutes = 1.5\n",
            env: &[],
            want: Want::Error("storyline.toml:2: media.rescan_minutes: expected an integer, found a float"),
        },
        Case {
            name: "wrong type for a string",
            text: "[defaults]\ntimezone = 1\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.timezone: expected a string, found an integer"),
        },
        Case {
            name: "a mistyped secret is not echoed",
            text: "[telegram]\nbot_token = 123456789\n",
            env: &[],
            want: Want::Error(
                "storyline.toml:2: telegram.bot_token: expected a string, found an integer",
            ),
        },
        Case {
            name: "wrong type for a boolean",
            text: "[defaults]\ndry_run_mode = \"yes\"\n",
            env: &[],
            want: Want::Error("storyline.toml:2: defaults.dry_run_mode: expected a boolean (true or false), found a string"),
        },
        Case {
            name: "wrong type for a list",
            text: "[access]\nadmin_user_ids = 5\n",
            env: &[],
            want: Want::Error("storyline.toml:2: access.admin_user_ids: expected an array, found an integer"),
        },
        Case {
            name: "wrong type inside a list",
            text: "[access]\nadmin_user_ids = [1, \"2\"]\n",
            env: &[],
            want: Want::Error("storyline.toml:2: access.admin_user_ids[1]: expected an integer, found a string"),
        },
        Case {
            name: "section that is not a table",
            text: "web = \"0.0.0.0\"\n",
            env: &[],
            want: Want::Error("storyline.toml:1: web: expected a table, found a string"),
        },
        Case {
            name: "unclosed header",
            text: "[telegram]\nbot_token = \"x\"\n[web\n",
            env: &[],
            want: Want::Error("storyline.toml:3: TOML syntax error: unclosed table, expected `]`"),
        },
        Case {
            name: "unquoted string",
            text: "[log]\nlevel = verbose\n",
            env: &[],
            want: Want::Error("storyline.toml:2: TOML syntax error: string values must be quoted, expected literal string"),
        },
        Case {
            name: "duplicate key",
            text: "[telegram]\nbot_token = \"a\"\nbot_token = \"b\"\n",
            env: &[],
            want: Want::Error("storyline.toml:3: duplicate key telegram.bot_token"),
        },
    ];

    #[test]
    fn cases() {
        for case in CASES {
            check(case);
        }
    }

    #[test]
    fn full_example_resolves_every_key() {
        let config = parse_with_env(FULL_EXAMPLE, &[]).unwrap();
        let expected = expect_test::expect![[r#"
            # Resolved configuration from storyline.toml

            [telegram]
            bot_token = "********"
            api_url = "http://127.0.0.1:9000"
            poll_timeout_secs = 30
            delete_webhook = true

            [access]
            admin_user_ids = [11, 22]
            allowed_chat_ids = [-1001234567890, 42]

            [storage]
            database = "/srv/story/data/storyline.db"
            key_file = "/var/lib/storyline/secret.key"

            [media]
            dir = "/srv/story/pictures"
            rescan_minutes = 5

            [web]
            listen = "0.0.0.0:8443"
            public_url = "https://stories.example.org"

            [instagram]
            app_id = "987654"
            app_secret = "********"
            api_url = "https://api.instagram.com"
            graph_url = "https://graph.instagram.com/v26.0"

            [defaults]
            dry_run_mode = false
            enable_instagram_api = true
            posts_per_day = 5
            posting_hours_start = 9
            posting_hours_end = 23
            timezone = "Europe/Berlin"

            [log]
            level = "debug"

            [limits]  # per chat, in memory: a restart refills them
            commands_per_minute = 12
            command_burst = 4
        "#]];
        expected.assert_eq(&config.render_masked());
        assert_eq!(
            config.defaults.timezone,
            "Europe/Berlin".parse::<crate::zone::Tz>().unwrap()
        );
        assert_eq!(config.log.level, log::LevelFilter::Debug);
        assert_eq!(config.access.allowed_chat_ids, vec![-1001234567890, 42]);
        assert_eq!(
            config.telegram.bot_token.as_ref().map(Secret::expose),
            Some("123456:ABC-file-token-0123456789abcdefghij")
        );
    }

    #[test]
    fn rendered_config_parses_back_to_the_same_config() {
        let config = parse_with_env(FULL_EXAMPLE, &[]).unwrap();
        // The rendered token is the mask, which is no token: the environment's wins.
        let token = [(ENV_BOT_TOKEN, "123456:ABC-file-token-0123456789abcdefghij")];
        let again = parse_with_env(&config.render_masked(), &token).unwrap();
        // Debug masks secrets, so this compares everything else.
        assert_eq!(format!("{config:?}"), format!("{again:?}"));
    }

    #[test]
    fn a_token_that_cannot_be_a_bot_token_is_refused_without_showing_it() {
        for good in [
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "1:______________________________",
            "  42:abcdefghijklmnopqrstuvwxyz-ABCDE  ",
        ] {
            assert!(
                parse_with_env("", &[(ENV_BOT_TOKEN, good)]).is_ok(),
                "{good}"
            );
            let file = format!("[telegram]\nbot_token = \"{good}\"\n");
            assert!(parse_with_env(&file, &[]).is_ok(), "{good}");
        }
        for bad in [
            "not a token",
            "123456:short-secret",
            "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            ":AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "123456AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDs/w",
            "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5P ALDsaw",
        ] {
            let err = parse_with_env("", &[(ENV_BOT_TOKEN, bad)]).unwrap_err();
            assert!(
                err.message.starts_with(
                    "STORYLINE_TELEGRAM_BOT_TOKEN (environment) is not a Telegram bot token"
                ) && err.message.contains("digits, a colon, then 30 or more"),
                "{bad}: {}",
                err.message
            );
            let file = format!("[log]\nlevel = \"info\"\n[telegram]\nbot_token = \"{bad}\"\n");
            let err = parse_with_env(&file, &[]).unwrap_err();
            assert!(
                err.message.starts_with(
                    "storyline.toml:4: telegram.bot_token is not a Telegram bot token"
                ),
                "{bad}: {}",
                err.message
            );
            for message in [&err.message, &format!("{err}")] {
                assert!(!message.contains(bad.trim()), "{bad} shown in {message}");
            }
        }
        // A good token in the environment wins over a bad one in the file.
        let file = "[telegram]\nbot_token = \"not a token\"\n";
        let good = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
        let config = parse_with_env(file, &[(ENV_BOT_TOKEN, good)]).unwrap();
        assert_eq!(
            config.telegram.bot_token.as_ref().map(Secret::expose),
            Some(good)
        );
    }

    #[test]
    fn secrets_in_the_file_are_named_whatever_the_environment_says() {
        let config = parse_with_env(FULL_EXAMPLE, &[]).unwrap();
        assert_eq!(
            config.secrets_in_file,
            ["telegram.bot_token", "instagram.app_secret"]
        );
        let env = [
            (ENV_BOT_TOKEN, "654321:ENV-token-0123456789abcdefghijklm"),
            (ENV_APP_SECRET, "env-secret"),
        ];
        let config = parse_with_env(FULL_EXAMPLE, &env).unwrap();
        assert_eq!(
            config.secrets_in_file,
            ["telegram.bot_token", "instagram.app_secret"]
        );
        let config = parse_with_env("[telegram]\nbot_token = \" \"\n", &env).unwrap();
        assert!(config.secrets_in_file.is_empty());
        let config = parse_with_env("[instagram]\napp_secret = \"s\"\n", &[]).unwrap();
        assert_eq!(config.secrets_in_file, ["instagram.app_secret"]);
    }

    #[test]
    fn env_overrides_file_secrets_unless_empty() {
        let cases: &[(Env, Option<&str>, Option<&str>)] = &[
            (
                &[],
                Some("123456:ABC-file-token-0123456789abcdefghij"),
                Some("ig-file-secret"),
            ),
            (
                &[
                    (
                        "STORYLINE_TELEGRAM_BOT_TOKEN",
                        "654321:ENV-token-0123456789abcdefghijklm",
                    ),
                    ("STORYLINE_INSTAGRAM_APP_SECRET", "env-secret"),
                ],
                Some("654321:ENV-token-0123456789abcdefghijklm"),
                Some("env-secret"),
            ),
            (
                &[
                    ("STORYLINE_TELEGRAM_BOT_TOKEN", ""),
                    ("STORYLINE_INSTAGRAM_APP_SECRET", ""),
                ],
                Some("123456:ABC-file-token-0123456789abcdefghij"),
                Some("ig-file-secret"),
            ),
        ];
        for (env, token, secret) in cases {
            let config = parse_with_env(FULL_EXAMPLE, env).unwrap();
            assert_eq!(
                config.telegram.bot_token.as_ref().map(Secret::expose),
                *token,
                "{env:?}"
            );
            assert_eq!(
                config.instagram.app_secret.as_ref().map(Secret::expose),
                *secret,
                "{env:?}"
            );
        }
    }

    #[test]
    fn secrets_never_reach_rendered_or_debug_text() {
        let config = parse_with_env(
            FULL_EXAMPLE,
            &[("STORYLINE_INSTAGRAM_APP_SECRET", "env-secret")],
        )
        .unwrap();
        for text in [
            config.render_masked(),
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{}", Secret::new("plain")),
        ] {
            for secret in [
                "123456:ABC-file-token-0123456789abcdefghij",
                "ig-file-secret",
                "env-secret",
                "plain",
            ] {
                assert!(!text.contains(secret), "{secret} leaked into\n{text}");
            }
        }
    }

    #[test]
    fn load_resolves_paths_against_the_file_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storyline.toml");
        std::fs::write(&path, "[storage]\ndatabase = \"db/s.db\"\n").unwrap();
        let config = load(&path, &no_env).unwrap();
        let folder = std::path::absolute(dir.path()).unwrap();
        assert_eq!(config.storage.database, folder.join("db/s.db"));
        assert_eq!(config.media.dir, folder.join("media"));
        assert_eq!(config.source, folder.join("storyline.toml"));
    }

    #[test]
    fn load_reports_unreadable_and_non_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let err = load(&missing, &no_env).unwrap_err();
        assert!(err
            .message
            .starts_with(&format!("{}: cannot read", missing.display())));

        let path = dir.path().join("storyline.toml");
        std::fs::write(&path, b"[log]\nlevel = \"\xff\"\n").unwrap();
        let err = load(&path, &no_env).unwrap_err();
        assert!(
            err.message.ends_with(":2: not valid UTF-8 (byte 15)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn locate_prefers_explicit_then_local_then_system() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("storyline.toml");
        let system = dir.path().join("system.toml");
        let explicit = Path::new("/nowhere/custom.toml");

        assert_eq!(
            locate_among(Some(explicit), &local, &system).unwrap(),
            explicit
        );
        let err = locate_among(None, &local, &system).unwrap_err();
        assert_eq!(
            err.message,
            format!(
                "no configuration file found; looked for {} and {} (use --config PATH)",
                local.display(),
                system.display()
            )
        );
        std::fs::write(&system, "").unwrap();
        assert_eq!(locate_among(None, &local, &system).unwrap(), system);
        std::fs::write(&local, "").unwrap();
        assert_eq!(locate_among(None, &local, &system).unwrap(), local);
    }

    /// xorshift64: deterministic and dependency-free, which is all a fuzz loop needs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"[",
            b"]",
            b"\"",
            b"'",
            b"=",
            b"\n",
            b"#",
            b".",
            b",",
            b"{",
            b"}",
            b"-",
            b"99999999999999999999",
            b"-1",
            b"0",
            b"1e400",
            b"true",
            b"\"\"\"",
            b"\\u",
            b"\xff",
            b"\xe2\x80",
            b"[[a]]",
            b"[telegram]",
            b"poll_timeout_secs = ",
            b"2024-01-01T00:00:00Z",
            b"nan",
            b"inf",
            b"\r",
            b"\t",
            b"\0",
        ];
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let end = (at + 1 + rng.below(8)).min(bytes.len());
                    bytes.drain(at.min(end)..end);
                }
                1 if at < bytes.len() => bytes[at] = rng.next() as u8,
                _ => {
                    let piece = PIECES[rng.below(PIECES.len())];
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
        }
        bytes
    }

    #[test]
    fn no_input_makes_parse_panic() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let source = Path::new("storyline.toml");
        let base = Path::new("/srv/story");
        let mut inputs: Vec<Vec<u8>> = vec![
            format!("a = {}", "[".repeat(100_000)).into_bytes(),
            format!("a = {}", "{a=".repeat(100_000)).into_bytes(),
            "[a]\n".repeat(5_000).into_bytes(),
        ];
        for _ in 0..1_500 {
            let length = rng.below(200);
            inputs.push((0..length).map(|_| rng.next() as u8).collect());
        }
        for _ in 0..3_000 {
            inputs.push(mutate(&mut rng, FULL_EXAMPLE.as_bytes().to_vec()));
        }
        for bytes in &inputs {
            // Only the absence of a panic matters; the error text must still name the file.
            if let Err(err) = parse_bytes(bytes, source, base, &no_env) {
                assert!(err.message.starts_with("storyline.toml"), "{}", err.message);
            }
            let lossy = String::from_utf8_lossy(bytes);
            let _ = parse(&lossy, source, base, &no_env);
        }
    }

    // ---- property tests (`cargo test --lib fuzz_config`) ----

    use crate::fuzz_input::{self, mutations, text_from};
    use proptest::prelude::*;
    use std::net::IpAddr;

    const TOML_ALPHABET: &str = "[]{}=\"'.,#\n\t -_abcdefgilmnoprstuwy0123456789+:TZ\\";

    const TOML_PIECES: &[&[u8]] = &[
        b"[",
        b"]",
        b"\"",
        b"'",
        b"=",
        b"\n",
        b"#",
        b".",
        b",",
        b"{",
        b"}",
        b"-",
        b"99999999999999999999",
        b"-1",
        b"0",
        b"1e400",
        b"true",
        b"\"\"\"",
        b"'''",
        b"\\u",
        b"\\U0010FFFF",
        b"\xff",
        b"\xe2\x80",
        b"[[a]]",
        b"[telegram]",
        b"[defaults]",
        b"poll_timeout_secs = ",
        b"posts_per_day = ",
        b"timezone = ",
        b"listen = ",
        b"2024-01-01T00:00:00Z",
        b"nan",
        b"inf",
        b"\r",
        b"\t",
        b"\0",
        b"a.b.c = 1",
    ];

    fn source() -> &'static Path {
        Path::new("storyline.toml")
    }

    fn base() -> &'static Path {
        Path::new("/srv/story")
    }

    /// Parsing never panics, and an error always names the file.
    fn check_no_panic(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Err(err) = parse_bytes(bytes, source(), base(), &no_env) {
            prop_assert!(err.message.starts_with("storyline.toml"), "{}", err.message);
        }
        if let Err(err) = parse(&String::from_utf8_lossy(bytes), source(), base(), &no_env) {
            prop_assert!(err.message.starts_with("storyline.toml"), "{}", err.message);
        }
        Ok(())
    }

    /// One valid storyline.toml: each key present or not, every present value in
    /// range; toml writes the text.
    #[derive(Debug, Clone)]
    struct ValidFile {
        bot_token: Option<String>,
        telegram_api_url: Option<String>,
        poll_timeout_secs: Option<i64>,
        admin_user_ids: Option<Vec<i64>>,
        allowed_chat_ids: Option<Vec<i64>>,
        database: Option<String>,
        key_file: Option<String>,
        media_dir: Option<String>,
        rescan_minutes: Option<i64>,
        /// Address, port, and spaces around them (which the check trims).
        listen: Option<(IpAddr, u16, String)>,
        /// A blank public_url means "none".
        public_url: Option<String>,
        app_id: Option<String>,
        app_secret: Option<String>,
        instagram_api_url: Option<String>,
        graph_url: Option<String>,
        dry_run_mode: Option<bool>,
        enable_instagram_api: Option<bool>,
        posts_per_day: Option<i64>,
        posting_hours_start: Option<i64>,
        posting_hours_end: Option<i64>,
        timezone: Option<String>,
        level: Option<String>,
        /// Whether a section without keys is still written as `[section]`.
        empty_sections: bool,
    }

    fn any_url() -> impl Strategy<Value = String> {
        "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%-]{0,10}){0,3}/{0,2}"
    }

    fn any_path() -> impl Strategy<Value = String> {
        "/?([a-zA-Z0-9_é .-]{1,8}/){0,3}[a-zA-Z0-9_é.-]{1,8}/?"
    }

    /// A number in `low..=high`, often one of the two ends.
    fn in_range(low: i64, high: i64) -> impl Strategy<Value = i64> {
        prop_oneof![Just(low), Just(high), low..=high]
    }

    /// A value with spaces around it, which the checks trim.
    fn padded(inner: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
        (inner, " {0,2}", " {0,2}").prop_map(|(v, a, b)| format!("{a}{v}{b}"))
    }

    fn any_valid_file() -> impl Strategy<Value = ValidFile> {
        use proptest::option::of;
        let ids = || of(prop::collection::vec(any::<i64>(), 0..4));
        let timezone = prop::sample::select(crate::zone::names());
        let level = (
            prop::sample::select(vec!["off", "error", "warn", "info", "debug", "trace"]),
            any::<bool>(),
        )
            .prop_map(|(l, upper)| {
                if upper {
                    l.to_uppercase()
                } else {
                    l.to_string()
                }
            });
        let listen = (any::<IpAddr>(), any::<u16>(), " {0,1}");
        (
            (
                of(prop_oneof![
                    " {0,2}",
                    padded("[0-9]{1,12}:[A-Za-z0-9_-]{30,46}")
                ]),
                of(any_url()),
                of(in_range(1, 300)),
                ids(),
                ids(),
            ),
            (
                of(any_path()),
                of(any_path()),
                of(any_path()),
                of(in_range(1, 1440)),
            ),
            (of(listen), of(prop_oneof![any_url(), " {0,3}"])),
            (of(".{0,16}"), of(".{0,24}"), of(any_url()), of(any_url())),
            (
                of(any::<bool>()),
                of(any::<bool>()),
                of(in_range(1, 50)),
                of(in_range(0, 23)),
                of(in_range(0, 23)),
                of(padded(timezone)),
            ),
            (of(padded(level)), any::<bool>()),
        )
            .prop_map(
                |(telegram, paths, web, instagram, defaults, (level, empty_sections))| ValidFile {
                    bot_token: telegram.0,
                    telegram_api_url: telegram.1,
                    poll_timeout_secs: telegram.2,
                    admin_user_ids: telegram.3,
                    allowed_chat_ids: telegram.4,
                    database: paths.0,
                    key_file: paths.1,
                    media_dir: paths.2,
                    rescan_minutes: paths.3,
                    listen: web.0,
                    public_url: web.1,
                    app_id: instagram.0,
                    app_secret: instagram.1,
                    instagram_api_url: instagram.2,
                    graph_url: instagram.3,
                    dry_run_mode: defaults.0,
                    enable_instagram_api: defaults.1,
                    posts_per_day: defaults.2,
                    posting_hours_start: defaults.3,
                    posting_hours_end: defaults.4,
                    timezone: defaults.5,
                    level,
                    empty_sections,
                },
            )
    }

    impl ValidFile {
        fn text(&self) -> String {
            use toml::Value as V;
            let mut file = toml::Table::new();
            let mut section = |name: &str, keys: Vec<(&str, Option<V>)>| {
                let table: toml::Table = keys
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect();
                if !table.is_empty() || self.empty_sections {
                    file.insert(name.to_string(), V::Table(table));
                }
            };
            let string = |v: &Option<String>| v.clone().map(V::String);
            let int = |v: Option<i64>| v.map(V::Integer);
            let ids = |v: &Option<Vec<i64>>| {
                v.as_ref()
                    .map(|ids| V::Array(ids.iter().map(|i| V::Integer(*i)).collect()))
            };
            let listen = self.listen.as_ref().map(|(ip, port, pad)| {
                V::String(format!("{pad}{}{pad}", SocketAddr::new(*ip, *port)))
            });
            section(
                "telegram",
                vec![
                    ("bot_token", string(&self.bot_token)),
                    ("api_url", string(&self.telegram_api_url)),
                    ("poll_timeout_secs", int(self.poll_timeout_secs)),
                ],
            );
            section(
                "access",
                vec![
                    ("admin_user_ids", ids(&self.admin_user_ids)),
                    ("allowed_chat_ids", ids(&self.allowed_chat_ids)),
                ],
            );
            section(
                "storage",
                vec![
                    ("database", string(&self.database)),
                    ("key_file", string(&self.key_file)),
                ],
            );
            section(
                "media",
                vec![
                    ("dir", string(&self.media_dir)),
                    ("rescan_minutes", int(self.rescan_minutes)),
                ],
            );
            section(
                "web",
                vec![("listen", listen), ("public_url", string(&self.public_url))],
            );
            section(
                "instagram",
                vec![
                    ("app_id", string(&self.app_id)),
                    ("app_secret", string(&self.app_secret)),
                    ("api_url", string(&self.instagram_api_url)),
                    ("graph_url", string(&self.graph_url)),
                ],
            );
            section(
                "defaults",
                vec![
                    ("dry_run_mode", self.dry_run_mode.map(V::Boolean)),
                    (
                        "enable_instagram_api",
                        self.enable_instagram_api.map(V::Boolean),
                    ),
                    ("posts_per_day", int(self.posts_per_day)),
                    ("posting_hours_start", int(self.posting_hours_start)),
                    ("posting_hours_end", int(self.posting_hours_end)),
                    ("timezone", string(&self.timezone)),
                ],
            );
            section("log", vec![("level", string(&self.level))]);
            toml::to_string(&file).expect("a table of strings, numbers and arrays serialises")
        }

        /// Checks a parsed Config against what the file says and the defaults.
        fn check(&self, config: &Config) -> Result<(), TestCaseError> {
            let trimmed = |v: &Option<String>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            };
            let url = |v: &Option<String>, default: &str| {
                v.as_deref()
                    .map_or(default, |u| u.trim_end_matches('/'))
                    .to_string()
            };
            let path = |v: &Option<String>, default: &str| {
                let joined = base().join(v.as_deref().unwrap_or(default));
                std::path::absolute(&joined).unwrap_or(joined)
            };
            let exposed = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_string());
            let t = &config.telegram;
            prop_assert_eq!(exposed(&t.bot_token), trimmed(&self.bot_token));
            prop_assert_eq!(
                &t.api_url,
                &url(&self.telegram_api_url, "https://api.telegram.org")
            );
            prop_assert_eq!(
                Some(t.poll_timeout_secs),
                u64::try_from(self.poll_timeout_secs.unwrap_or(50)).ok()
            );
            let a = &config.access;
            prop_assert_eq!(
                &a.admin_user_ids,
                &self.admin_user_ids.clone().unwrap_or_default()
            );
            prop_assert_eq!(
                &a.allowed_chat_ids,
                &self.allowed_chat_ids.clone().unwrap_or_default()
            );
            prop_assert_eq!(
                &config.storage.database,
                &path(&self.database, "storyline.db")
            );
            prop_assert_eq!(
                &config.storage.key_file,
                &path(&self.key_file, "secret.key")
            );
            prop_assert_eq!(&config.media.dir, &path(&self.media_dir, "media"));
            prop_assert_eq!(
                i64::from(config.media.rescan_minutes),
                self.rescan_minutes.unwrap_or(10)
            );
            let listen = self
                .listen
                .as_ref()
                .map_or(SocketAddr::from(([127, 0, 0, 1], 8080)), |(ip, port, _)| {
                    SocketAddr::new(*ip, *port)
                });
            prop_assert_eq!(config.web.listen, listen);
            let public_url = trimmed(&self.public_url).map(|u| u.trim_end_matches('/').to_string());
            prop_assert_eq!(&config.web.public_url, &public_url);
            let i = &config.instagram;
            prop_assert_eq!(&i.app_id, &trimmed(&self.app_id));
            prop_assert_eq!(exposed(&i.app_secret), trimmed(&self.app_secret));
            prop_assert_eq!(
                &i.api_url,
                &url(&self.instagram_api_url, "https://api.instagram.com")
            );
            // The Graph API version is pinned: a URL without one gets it added.
            prop_assert_eq!(
                &i.graph_url,
                &versioned_graph_url(&url(&self.graph_url, "https://graph.instagram.com"))
            );
            let d = &config.defaults;
            prop_assert_eq!(d.dry_run_mode, self.dry_run_mode.unwrap_or(true));
            prop_assert_eq!(
                d.enable_instagram_api,
                self.enable_instagram_api.unwrap_or(false)
            );
            prop_assert_eq!(i64::from(d.posts_per_day), self.posts_per_day.unwrap_or(3));
            prop_assert_eq!(
                i64::from(d.posting_hours_start),
                self.posting_hours_start.unwrap_or(14)
            );
            prop_assert_eq!(
                i64::from(d.posting_hours_end),
                self.posting_hours_end.unwrap_or(2)
            );
            prop_assert_eq!(
                d.timezone.name(),
                self.timezone.as_deref().map_or("UTC", str::trim)
            );
            let level = self
                .level
                .as_deref()
                .map_or("info".to_string(), |l| l.trim().to_lowercase());
            prop_assert_eq!(config.log.level.as_str().to_lowercase(), level);
            Ok(())
        }
    }

    proptest! {
        #![proptest_config(fuzz_input::config(256))]

        /// Valid files are accepted with every value as written (or its default),
        /// and what `storyline check` prints parses back to the same Config.
        #[test]
        fn fuzz_config_valid_files_are_accepted(file in any_valid_file()) {
            let text = file.text();
            let config = parse(&text, source(), base(), &no_env)
                .map_err(|err| TestCaseError::fail(format!("{}\n---\n{text}", err.message)))?;
            file.check(&config)?;
            let rendered = config.render_masked();
            // The rendered token is the mask, which is no token: the environment's wins.
            let token_env = |key: &str| {
                (key == ENV_BOT_TOKEN && config.telegram.bot_token.is_some())
                    .then(|| "1:rendered-token-0123456789abcdefghij".to_string())
            };
            let again = parse(&rendered, source(), base(), &token_env)
                .map_err(|err| TestCaseError::fail(format!("{}\n---\n{rendered}", err.message)))?;
            prop_assert_eq!(format!("{config:?}"), format!("{again:?}"));
        }

        /// A token from the environment or the file is taken exactly when it has
        /// a bot token's shape; the error about one never shows it.
        #[test]
        fn fuzz_config_bot_token_shape(
            token in prop_oneof!["[ -~]{0,60}", " ?[0-9]{0,10}:[A-Za-z0-9_-]{25,40} ?"],
            in_file: bool,
        ) {
            let file = format!("[telegram]\nbot_token = {}\n", toml::Value::String(token.clone()));
            let env_token = token.clone();
            let env = move |key: &str| (key == ENV_BOT_TOKEN).then(|| env_token.clone());
            let result = if in_file {
                parse(&file, source(), base(), &no_env)
            } else {
                parse("", source(), base(), &env)
            };
            let trimmed = token.trim();
            match result {
                Ok(config) => {
                    prop_assert!(trimmed.is_empty() || is_bot_token(trimmed), "{token:?} accepted");
                    prop_assert_eq!(
                        config.telegram.bot_token.as_ref().map(Secret::expose),
                        (!trimmed.is_empty()).then_some(trimmed)
                    );
                }
                Err(err) => {
                    prop_assert!(!is_bot_token(trimmed), "{token:?} refused: {}", err.message);
                    prop_assert!(err.message.contains("is not a Telegram bot token"), "{}", err.message);
                    if trimmed.len() >= 12 {
                        prop_assert!(!err.message.contains(trimmed), "{}", err.message);
                    }
                }
            }
        }

        /// Valid files truncated, flipped or spliced give a Config or an error
        /// naming the file, never a panic.
        #[test]
        fn fuzz_config_mutated_valid_files(
            file in any_valid_file(),
            changes in mutations(TOML_PIECES),
        ) {
            check_no_panic(&fuzz_input::mutate(file.text().as_bytes(), &changes))?;
        }

        /// The same for the full example, which sets every key.
        #[test]
        fn fuzz_config_mutated_example(changes in mutations(TOML_PIECES)) {
            check_no_panic(&fuzz_input::mutate(FULL_EXAMPLE.as_bytes(), &changes))?;
        }

        /// Arbitrary text and bytes never panic.
        #[test]
        fn fuzz_config_arbitrary_text(text in text_from(TOML_ALPHABET, 200)) {
            check_no_panic(text.as_bytes())?;
        }

        #[test]
        fn fuzz_config_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            check_no_panic(&bytes)?;
        }
    }
}
