//! The settings file: what `/settings export` and `storyline settings export`
//! write, and what an import reads back. Pure: JSON text in and out, no IO.
//!
//! A versioned document, `{"storyline_settings": 1, ...}`: the effective
//! settings, the lock lengths, the category mix and the chosen Instagram
//! account by its username — never a token or any other secret. Reading is
//! strict: every value goes through the menu's own parsers (`settings`), an
//! unknown field is refused by its name, and a file from a newer format is
//! refused rather than half understood. A field left out keeps the chat's
//! current value, so a hand-written file may hold only what it changes.

use std::collections::BTreeMap;

use crate::zone::Tz;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Defaults;
use crate::domain::picker::MIX_WEIGHT_MAX;
use crate::domain::settings::{self, Change, ChatRow, ChatSettings, LOCK_DAYS_MAX};

/// The field that names the format, and the one version this Storyline reads.
pub const FORMAT_FIELD: &str = "storyline_settings";
pub const FORMAT_VERSION: u64 = 1;
/// A settings file is well under 2 KB; anything past this is not one.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// What an export is called, so a reply to it is known for an import.
pub const FILE_NAME_PREFIX: &str = "storyline-settings";

/// What an export holds, before it is written.
pub struct Export<'a> {
    pub chat_id: i64,
    pub title: Option<&'a str>,
    pub exported_at: DateTime<Utc>,
    pub settings: &'a ChatSettings,
    pub mix: &'a BTreeMap<String, u32>,
    /// The chosen account's username (without the @); None when the chat chose none.
    pub account: Option<&'a str>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    storyline_settings: u64,
    exported_at: String,
    chat: ChatOut<'a>,
    settings: SettingsOut<'a>,
    locks: LocksOut,
    category_mix: &'a BTreeMap<String, u32>,
    instagram_account: Option<&'a str>,
}

#[derive(Serialize)]
struct ChatOut<'a> {
    id: i64,
    title: Option<&'a str>,
}

#[derive(Serialize)]
struct SettingsOut<'a> {
    posts_per_day: u32,
    posting_hours_start: u32,
    posting_hours_end: u32,
    timezone: &'a str,
    dry_run_mode: bool,
    enable_instagram_api: bool,
    auto_post: bool,
    story_buttons_admins_only: bool,
    is_paused: bool,
}

#[derive(Serialize)]
struct LocksOut {
    posted_days: u32,
    skipped_days: u32,
}

/// The file's text: pretty JSON, fields in a fixed order, ending in a newline.
pub fn export(export: &Export<'_>) -> String {
    let s = export.settings;
    let file = FileOut {
        storyline_settings: FORMAT_VERSION,
        exported_at: export
            .exported_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        chat: ChatOut {
            id: export.chat_id,
            title: export.title,
        },
        settings: SettingsOut {
            posts_per_day: s.posts_per_day,
            posting_hours_start: s.posting_hours_start,
            posting_hours_end: s.posting_hours_end,
            timezone: s.timezone.name(),
            dry_run_mode: s.dry_run_mode,
            enable_instagram_api: s.enable_instagram_api,
            auto_post: s.auto_post,
            story_buttons_admins_only: s.story_buttons_admins_only,
            is_paused: s.is_paused,
        },
        locks: LocksOut {
            posted_days: s.posted_lock_days,
            skipped_days: s.skipped_lock_days,
        },
        category_mix: export.mix,
        instagram_account: export.account,
    };
    // Serializing plain structs, strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    text
}

/// "storyline-settings-chat-100123-2026-01-05.json"
pub fn file_name(chat_id: i64, at: DateTime<Utc>) -> String {
    let chat = if chat_id < 0 {
        format!("chat-{}", chat_id.unsigned_abs())
    } else {
        format!("chat{chat_id}")
    };
    format!("{FILE_NAME_PREFIX}-{chat}-{}.json", at.format("%Y-%m-%d"))
}

/// A file as read: every field it sets, checked. `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsFile {
    pub posts_per_day: Option<u32>,
    pub posting_hours_start: Option<u32>,
    pub posting_hours_end: Option<u32>,
    pub timezone: Option<Tz>,
    pub dry_run_mode: Option<bool>,
    pub enable_instagram_api: Option<bool>,
    pub auto_post: Option<bool>,
    pub story_buttons_admins_only: Option<bool>,
    pub is_paused: Option<bool>,
    pub posted_lock_days: Option<u32>,
    pub skipped_lock_days: Option<u32>,
    /// Names are checked against the library when the file is applied.
    pub category_mix: Option<BTreeMap<String, u32>>,
    /// A username without the @, matched against the chat's accounts when applied.
    pub instagram_account: Option<String>,
}

/// Why a file changes nothing: the field (as a path in the file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub why: String,
}

impl Refusal {
    pub fn new(field: impl Into<String>, why: impl Into<String>) -> Refusal {
        Refusal {
            field: field.into(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

/// Fields only there for people (where and when the file was made).
const INFORMATIONAL: &[&str] = &["exported_at", "chat"];
const TOP_LEVEL: &[&str] = &[
    FORMAT_FIELD,
    "exported_at",
    "chat",
    "settings",
    "locks",
    "category_mix",
    "instagram_account",
];
const SETTINGS: &[&str] = &[
    "posts_per_day",
    "posting_hours_start",
    "posting_hours_end",
    "timezone",
    "dry_run_mode",
    "enable_instagram_api",
    "auto_post",
    "story_buttons_admins_only",
    "is_paused",
];
const LOCKS: &[&str] = &["posted_days", "skipped_days"];

/// Reads a settings file, or says which field is wrong and why.
pub fn parse(text: &str) -> Result<SettingsFile, Refusal> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(Refusal::new(
            "file",
            format!("is larger than {} KB", MAX_FILE_BYTES / 1024),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Refusal::new("file", format!("is not valid JSON ({e})")))?;
    let Value::Object(top) = value else {
        return Err(Refusal::new(
            "file",
            "is not a settings file: it must be a JSON object, as /settings export writes it",
        ));
    };
    check_version(top.get(FORMAT_FIELD))?;
    check_known(&top, TOP_LEVEL, "")?;
    let mut file = SettingsFile::default();
    if let Some(settings) = top.get("settings") {
        let settings = object(settings, "settings")?;
        check_known(settings, SETTINGS, "settings.")?;
        read_settings(settings, &mut file)?;
    }
    if let Some(locks) = top.get("locks") {
        let locks = object(locks, "locks")?;
        check_known(locks, LOCKS, "locks.")?;
        file.posted_lock_days = lock_days(locks, "posted_days")?;
        file.skipped_lock_days = lock_days(locks, "skipped_days")?;
    }
    if let Some(mix) = top.get("category_mix") {
        file.category_mix = Some(read_mix(mix)?);
    }
    file.instagram_account = match top.get("instagram_account") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(read_username(name)?),
        Some(_) => {
            return Err(Refusal::new(
                "instagram_account",
                "must be a username in quotes, or null",
            ))
        }
    };
    debug_assert!(INFORMATIONAL.iter().all(|f| TOP_LEVEL.contains(f)));
    Ok(file)
}

fn check_version(value: Option<&Value>) -> Result<(), Refusal> {
    let Some(value) = value else {
        return Err(Refusal::new(
            FORMAT_FIELD,
            "is missing: this is not a settings file made by /settings export",
        ));
    };
    match value.as_u64() {
        Some(FORMAT_VERSION) => Ok(()),
        Some(newer) if newer > FORMAT_VERSION => Err(Refusal::new(
            FORMAT_FIELD,
            format!(
                "is {newer}: the file comes from a newer Storyline, and this one reads format \
                 {FORMAT_VERSION} only. Update Storyline, or export the settings again with this version"
            ),
        )),
        _ => Err(Refusal::new(
            FORMAT_FIELD,
            format!("must be the format number {FORMAT_VERSION}"),
        )),
    }
}

fn check_known(fields: &Map<String, Value>, known: &[&str], prefix: &str) -> Result<(), Refusal> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        Some(unknown) => Err(Refusal::new(
            format!("{prefix}{unknown}"),
            format!(
                "is not a field Storyline knows (it knows {})",
                known
                    .iter()
                    .filter(|f| **f != FORMAT_FIELD)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn object<'v>(value: &'v Value, field: &str) -> Result<&'v Map<String, Value>, Refusal> {
    value
        .as_object()
        .ok_or_else(|| Refusal::new(field, "must be an object { … }"))
}

/// A number as the menu would have been sent it: its text, so the menu's parser
/// (and its explanation) decides.
fn number_text(value: &Value, field: &str) -> Result<String, Refusal> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(Refusal::new(field, "must be a number")),
    }
}

fn boolean(value: &Value, field: &str) -> Result<bool, Refusal> {
    value
        .as_bool()
        .ok_or_else(|| Refusal::new(field, "must be true or false"))
}

fn read_settings(fields: &Map<String, Value>, file: &mut SettingsFile) -> Result<(), Refusal> {
    for (name, value) in fields {
        let field = format!("settings.{name}");
        match name.as_str() {
            "posts_per_day" => {
                let text = number_text(value, &field)?;
                file.posts_per_day = Some(
                    settings::parse_posts_per_day(&text)
                        .map_err(|why| Refusal::new(&field, why))?,
                );
            }
            "posting_hours_start" | "posting_hours_end" => {
                let text = number_text(value, &field)?;
                let hour = settings::parse_hour(&text).map_err(|why| Refusal::new(&field, why))?;
                if name == "posting_hours_start" {
                    file.posting_hours_start = Some(hour);
                } else {
                    file.posting_hours_end = Some(hour);
                }
            }
            "timezone" => {
                let Value::String(zone) = value else {
                    return Err(Refusal::new(field, "must be a time zone name in quotes"));
                };
                file.timezone =
                    Some(settings::parse_timezone(zone).map_err(|why| Refusal::new(&field, why))?);
            }
            "dry_run_mode" => file.dry_run_mode = Some(boolean(value, &field)?),
            "enable_instagram_api" => file.enable_instagram_api = Some(boolean(value, &field)?),
            "auto_post" => file.auto_post = Some(boolean(value, &field)?),
            "story_buttons_admins_only" => {
                file.story_buttons_admins_only = Some(boolean(value, &field)?)
            }
            "is_paused" => file.is_paused = Some(boolean(value, &field)?),
            _ => return Err(Refusal::new(field, "is not a field Storyline knows")),
        }
    }
    Ok(())
}

fn lock_days(fields: &Map<String, Value>, name: &str) -> Result<Option<u32>, Refusal> {
    let Some(value) = fields.get(name) else {
        return Ok(None);
    };
    let field = format!("locks.{name}");
    let why = format!("must be a whole number of days from 0 to {LOCK_DAYS_MAX}");
    // The menu's parser reads both lengths at once; the file has each alone.
    let text = number_text(value, &field)?;
    match settings::parse_lock_days(&format!("{text} 0")) {
        Ok((days, _)) => Ok(Some(days)),
        Err(_) => Err(Refusal::new(field, why)),
    }
}

fn read_mix(value: &Value) -> Result<BTreeMap<String, u32>, Refusal> {
    let fields = object(value, "category_mix")?;
    let mut mix = BTreeMap::new();
    for (name, weight) in fields {
        let field = format!("category_mix.{name}");
        let weight = weight
            .as_u64()
            .filter(|w| *w <= u64::from(MIX_WEIGHT_MAX))
            .ok_or_else(|| {
                Refusal::new(
                    &field,
                    format!("must be a whole number from 0 to {MIX_WEIGHT_MAX}"),
                )
            })?;
        mix.insert(name.clone(), weight as u32);
    }
    if !mix.is_empty() && mix.values().all(|w| *w == 0) {
        return Err(Refusal::new(
            "category_mix",
            "needs at least one weight above 0 ({} treats every category alike)",
        ));
    }
    Ok(mix)
}

fn read_username(name: &str) -> Result<String, Refusal> {
    let name = name.trim();
    let name = name.strip_prefix('@').unwrap_or(name);
    let valid = !name.is_empty()
        && name.len() <= 30
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    if valid {
        Ok(name.to_string())
    } else {
        Err(Refusal::new(
            "instagram_account",
            "must be an Instagram username (letters, digits, . and _), or null",
        ))
    }
}

/// Sets on the row every setting the file gives a new value, and says what
/// changed; a setting the file leaves out, or gives its current value, is
/// untouched (so it keeps following `[defaults]` if it did). A pause records
/// who and when, as the menu's does.
pub fn apply_to_row(
    row: &mut ChatRow,
    defaults: &Defaults,
    file: &SettingsFile,
    by: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let before = settings::resolve(row, defaults);
    let mut changes = Vec::new();
    let mut change = |setting: &'static str, old: Value, new: Value| {
        let differs = old != new;
        if differs {
            changes.push(Change { setting, old, new });
        }
        differs
    };
    if let Some(n) = file.posts_per_day {
        if change("posts_per_day", before.posts_per_day.into(), n.into()) {
            row.posts_per_day = Some(n);
        }
    }
    if let Some(h) = file.posting_hours_start {
        if change(
            "posting_hours_start",
            before.posting_hours_start.into(),
            h.into(),
        ) {
            row.posting_hours_start = Some(h);
        }
    }
    if let Some(h) = file.posting_hours_end {
        if change(
            "posting_hours_end",
            before.posting_hours_end.into(),
            h.into(),
        ) {
            row.posting_hours_end = Some(h);
        }
    }
    if let Some(tz) = file.timezone {
        if change("timezone", before.timezone.name().into(), tz.name().into()) {
            row.timezone = Some(tz.name().to_string());
        }
    }
    if let Some(v) = file.dry_run_mode {
        if change("dry_run_mode", before.dry_run_mode.into(), v.into()) {
            row.dry_run_mode = Some(v);
        }
    }
    if let Some(v) = file.enable_instagram_api {
        if change(
            "enable_instagram_api",
            before.enable_instagram_api.into(),
            v.into(),
        ) {
            row.enable_instagram_api = Some(v);
        }
    }
    if let Some(v) = file.auto_post {
        if change("posting_mode_auto", before.auto_post.into(), v.into()) {
            row.auto_post = Some(v);
        }
    }
    if let Some(v) = file.story_buttons_admins_only {
        if change(
            "story_buttons_admins_only",
            before.story_buttons_admins_only.into(),
            v.into(),
        ) {
            row.story_buttons_admins_only = Some(v);
        }
    }
    if let Some(v) = file.is_paused {
        if change("is_paused", before.is_paused.into(), v.into()) {
            row.is_paused = v;
            row.paused_at = v.then_some(now);
            row.paused_by = if v { by } else { None };
        }
    }
    if let Some(days) = file.posted_lock_days {
        if change(
            "posted_lock_days",
            before.posted_lock_days.into(),
            days.into(),
        ) {
            row.posted_lock_days = Some(days);
        }
    }
    if let Some(days) = file.skipped_lock_days {
        if change(
            "skipped_lock_days",
            before.skipped_lock_days.into(),
            days.into(),
        ) {
            row.skipped_lock_days = Some(days);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            dry_run_mode: true,
            enable_instagram_api: false,
            posts_per_day: 3,
            posting_hours_start: 14,
            posting_hours_end: 2,
            timezone: crate::zone::Tz::UTC,
        }
    }

    fn t0() -> DateTime<Utc> {
        "2026-01-05T09:30:00Z".parse().unwrap()
    }

    fn exported(row: &ChatRow, mix: &BTreeMap<String, u32>, account: Option<&str>) -> String {
        export(&Export {
            chat_id: -100123,
            title: Some("Shop <team>"),
            exported_at: t0(),
            settings: &settings::resolve(row, &defaults()),
            mix,
            account,
        })
    }

    #[test]
    fn an_export_reads_as_its_fields_in_order() {
        let mut row = ChatRow::new(-100123);
        row.posts_per_day = Some(5);
        row.timezone = Some("Europe/Berlin".into());
        let mix = BTreeMap::from([("quotes".to_string(), 2), ("tips".to_string(), 1)]);
        expect_test::expect![[r#"
            {
              "storyline_settings": 1,
              "exported_at": "2026-01-05T09:30:00Z",
              "chat": {
                "id": -100123,
                "title": "Shop <team>"
              },
              "settings": {
                "posts_per_day": 5,
                "posting_hours_start": 14,
                "posting_hours_end": 2,
                "timezone": "Europe/Berlin",
                "dry_run_mode": true,
                "enable_instagram_api": false,
                "auto_post": false,
                "story_buttons_admins_only": false,
                "is_paused": false
              },
              "locks": {
                "posted_days": 30,
                "skipped_days": 45
              },
              "category_mix": {
                "quotes": 2,
                "tips": 1
              },
              "instagram_account": "shop"
            }
        "#]]
        .assert_eq(&exported(&row, &mix, Some("shop")));
        assert_eq!(
            file_name(-100123, t0()),
            "storyline-settings-chat-100123-2026-01-05.json"
        );
    }

    #[test]
    fn an_export_read_back_changes_nothing() {
        let mut row = ChatRow::new(-100123);
        row.posts_per_day = Some(5);
        row.is_paused = true;
        row.paused_by = Some(7);
        row.paused_at = Some(t0());
        let mix = BTreeMap::from([("quotes".to_string(), 2)]);
        let file = parse(&exported(&row, &mix, Some("shop"))).unwrap();
        assert_eq!(file.category_mix, Some(mix));
        assert_eq!(file.instagram_account.as_deref(), Some("shop"));
        let before = row.clone();
        let later = t0() + chrono::Duration::hours(5);
        assert_eq!(
            apply_to_row(&mut row, &defaults(), &file, Some(9), later),
            vec![]
        );
        // Nothing the file repeats is pinned: unchanged settings keep their defaults.
        assert_eq!(row, before);
    }

    #[test]
    fn only_what_differs_is_set_and_reported() {
        let mut row = ChatRow::new(1);
        let file = SettingsFile {
            posts_per_day: Some(3),
            posting_hours_end: Some(23),
            timezone: Some("Europe/Berlin".parse::<crate::zone::Tz>().unwrap()),
            is_paused: Some(true),
            posted_lock_days: Some(7),
            ..SettingsFile::default()
        };
        let changes = apply_to_row(&mut row, &defaults(), &file, None, t0());
        let shown: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {} -> {}", c.setting, c.old, c.new))
            .collect();
        expect_test::expect![[r#"
            posting_hours_end 2 -> 23
            timezone "UTC" -> "Europe/Berlin"
            is_paused false -> true
            posted_lock_days 30 -> 7"#]]
        .assert_eq(&shown.join("\n"));
        assert_eq!(row.posts_per_day, None, "3 is the default already");
        assert_eq!((row.paused_at, row.paused_by), (Some(t0()), None));
    }

    fn refusal(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_bad_file_says_which_field_and_why() {
        let cases = [
            ("", "file: is not valid JSON"),
            ("[1]", "file: is not a settings file"),
            ("{}", "storyline_settings: is missing"),
            (
                r#"{"storyline_settings": 2}"#,
                "storyline_settings: is 2: the file comes from a newer Storyline",
            ),
            (
                r#"{"storyline_settings": "1"}"#,
                "storyline_settings: must be the format number 1",
            ),
            (
                r#"{"storyline_settings": 1, "colour": "red"}"#,
                "colour: is not a field Storyline knows",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"posts": 3}}"#,
                "settings.posts: is not a field",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"posts_per_day": 51}}"#,
                "settings.posts_per_day: Posts per day must be between 1 and 50.",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"posts_per_day": 2.5}}"#,
                "settings.posts_per_day: Posts per day must be a whole number",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"posts_per_day": "3"}}"#,
                "settings.posts_per_day: must be a number",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"posting_hours_end": 24}}"#,
                "settings.posting_hours_end: An hour must be a whole number from 0 to 23",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"timezone": "Mars/Base"}}"#,
                "settings.timezone: That is not a time zone name I know",
            ),
            (
                r#"{"storyline_settings": 1, "settings": {"dry_run_mode": "yes"}}"#,
                "settings.dry_run_mode: must be true or false",
            ),
            (
                r#"{"storyline_settings": 1, "settings": []}"#,
                "settings: must be an object",
            ),
            (
                r#"{"storyline_settings": 1, "locks": {"posted_days": 4000}}"#,
                "locks.posted_days: must be a whole number of days from 0 to 3650",
            ),
            (
                r#"{"storyline_settings": 1, "locks": {"posted_days": -1}}"#,
                "locks.posted_days: must be",
            ),
            (
                r#"{"storyline_settings": 1, "category_mix": {"quotes": 1001}}"#,
                "category_mix.quotes: must be a whole number from 0 to 1000",
            ),
            (
                r#"{"storyline_settings": 1, "category_mix": {"quotes": 0}}"#,
                "category_mix: needs at least one weight above 0",
            ),
            (
                r#"{"storyline_settings": 1, "instagram_account": 5}"#,
                "instagram_account: must be a username",
            ),
            (
                r#"{"storyline_settings": 1, "instagram_account": "a b"}"#,
                "instagram_account: must be an Instagram username",
            ),
        ];
        for (text, expected) in cases {
            let got = refusal(text);
            assert!(
                got.starts_with(expected),
                "{text}\n  got: {got}\n want: {expected}"
            );
        }
        let big = format!(
            r#"{{"storyline_settings": 1, "chat": "{}"}}"#,
            "x".repeat(70_000)
        );
        assert_eq!(refusal(&big), "file: is larger than 64 KB");
    }

    #[test]
    fn a_partial_file_sets_only_its_fields() {
        let file = parse(
            "\u{feff}{\"storyline_settings\": 1, \"settings\": {\"posts_per_day\": 7}, \
             \"category_mix\": {}, \"instagram_account\": \"@Shop.Main\"}",
        )
        .unwrap();
        assert_eq!(
            file,
            SettingsFile {
                posts_per_day: Some(7),
                category_mix: Some(BTreeMap::new()),
                instagram_account: Some("Shop.Main".into()),
                ..SettingsFile::default()
            }
        );
    }

    mod fuzz {
        use super::*;
        use crate::fuzz_input::{self, mutate_text, mutations};
        use proptest::prelude::*;

        const DICTIONARY: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b"null",
            b"true",
            b"1e999",
            b"-1",
            b"18446744073709551616",
            b"\"storyline_settings\"",
            b"\"settings\"",
            b"\"category_mix\"",
            b"\"locks\"",
            b"\\u0000",
            b"\xef\xbb\xbf",
        ];

        fn sample() -> String {
            let mix = BTreeMap::from([("quotes".to_string(), 2), ("tips".to_string(), 1)]);
            let mut row = ChatRow::new(-5);
            row.timezone = Some("America/New_York".into());
            exported(&row, &mix, Some("shop"))
        }

        proptest! {
            #![proptest_config(fuzz_input::config(256))]

            #[test]
            fn fuzz_settings_file_arbitrary_text(text in fuzz_input::text_from("{}[]\":,0123456789truefalsn ", 300)) {
                let _ = parse(&text);
            }

            #[test]
            fn fuzz_settings_file_mutated_exports(edits in mutations(DICTIONARY)) {
                let text = mutate_text(&sample(), &edits);
                if let Ok(file) = parse(&text) {
                    // Whatever reads must apply without surprises.
                    let mut row = ChatRow::new(-5);
                    let _ = apply_to_row(&mut row, &defaults(), &file, Some(1), t0());
                    let s = settings::resolve(&row, &defaults());
                    prop_assert!((1..=50).contains(&s.posts_per_day));
                    prop_assert!(s.posting_hours_start <= 23 && s.posting_hours_end <= 23);
                    prop_assert!(s.posted_lock_days <= LOCK_DAYS_MAX);
                }
            }
        }
    }
}
