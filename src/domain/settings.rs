//! Chat settings: the stored row, how it resolves against `[defaults]`, and how a
//! user's typed value becomes a validated setting. Pure: no IO, no SQL.
//!
//! A chat's row keeps `None` for every setting the chat never changed, so a new
//! `[defaults]` in storyline.toml moves every chat that did not override it.

use crate::zone::Tz;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::Defaults;
use crate::domain::tune::{self, format_auto_tune, AutoTune, Metric};

pub const POSTS_PER_DAY_MIN: u32 = 1;
pub const POSTS_PER_DAY_MAX: u32 = 50;
pub const HOUR_MAX: u32 = 23;
/// How long Posted and Skip keep an item out, unless the chat chose otherwise.
pub const DEFAULT_POSTED_LOCK_DAYS: u32 = 30;
pub const DEFAULT_SKIPPED_LOCK_DAYS: u32 = 45;
pub const LOCK_DAYS_MAX: u32 = 3650;
/// The local hour of the daily summary, unless the chat chose another (or none).
pub const DEFAULT_SUMMARY_HOUR: u32 = 9;

/// A chat's settings as stored: `None` means "use the default".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatRow {
    pub chat_id: i64,
    pub title: Option<String>,
    pub dry_run_mode: Option<bool>,
    pub enable_instagram_api: Option<bool>,
    pub is_paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_by: Option<i64>,
    pub posts_per_day: Option<u32>,
    pub posting_hours_start: Option<u32>,
    pub posting_hours_end: Option<u32>,
    pub timezone: Option<String>,
    pub posted_lock_days: Option<u32>,
    pub skipped_lock_days: Option<u32>,
    /// Some(true) = 'auto', Some(false) = 'manual', None = manual.
    pub auto_post: Option<bool>,
    /// None = everyone may press a story's buttons.
    pub story_buttons_admins_only: Option<bool>,
    /// None = on: the daily summary; Some(false) = off.
    pub daily_summary: Option<bool>,
    /// The summary's local hour; None = `DEFAULT_SUMMARY_HOUR`.
    pub daily_summary_hour: Option<u32>,
    /// None or Some(false) = off: the auto-tuner of the category mix.
    pub auto_tune: Option<bool>,
    /// "reach" or "completion"; None = reach.
    pub auto_tune_metric: Option<String>,
    /// The most a weight moves a week; None = `tune::DEFAULT_STEP`.
    pub auto_tune_step: Option<u32>,
}

impl ChatRow {
    pub fn new(chat_id: i64) -> ChatRow {
        ChatRow {
            chat_id,
            ..ChatRow::default()
        }
    }
}

/// The settings a chat runs with: its own values, else `[defaults]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatSettings {
    pub dry_run_mode: bool,
    pub enable_instagram_api: bool,
    pub is_paused: bool,
    #[serde(serialize_with = "serialize_time")]
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_by: Option<i64>,
    pub posts_per_day: u32,
    pub posting_hours_start: u32,
    pub posting_hours_end: u32,
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: Tz,
    pub posted_lock_days: u32,
    pub skipped_lock_days: u32,
    /// Publish unattended at the slot (posting_mode 'auto') rather than on a press.
    pub auto_post: bool,
    /// Only the chat's administrators may press a story's buttons (in a group).
    pub story_buttons_admins_only: bool,
    /// The local hour of the daily summary; None: no summary.
    pub daily_summary_hour: Option<u32>,
    /// The auto-tuner of the category mix; None: off.
    #[serde(serialize_with = "serialize_auto_tune")]
    pub auto_tune: Option<AutoTune>,
}

fn serialize_auto_tune<S: serde::Serializer>(
    tune: &Option<AutoTune>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match tune {
        Some(tune) => s.serialize_str(&format_auto_tune(Some(*tune))),
        None => s.serialize_none(),
    }
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// A time in a settings snapshot as the store writes one ("2026-11-22T14:02:00Z"),
/// so snapshots read as they always did.
fn serialize_time<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

pub fn resolve(row: &ChatRow, defaults: &Defaults) -> ChatSettings {
    ChatSettings {
        dry_run_mode: row.dry_run_mode.unwrap_or(defaults.dry_run_mode),
        enable_instagram_api: row
            .enable_instagram_api
            .unwrap_or(defaults.enable_instagram_api),
        is_paused: row.is_paused,
        paused_at: row.paused_at,
        paused_by: row.paused_by,
        posts_per_day: row.posts_per_day.unwrap_or(defaults.posts_per_day),
        posting_hours_start: row
            .posting_hours_start
            .unwrap_or(defaults.posting_hours_start),
        posting_hours_end: row.posting_hours_end.unwrap_or(defaults.posting_hours_end),
        // A zone name that no longer parses (it was validated when stored) falls
        // back to the default rather than stopping the chat.
        timezone: row
            .timezone
            .as_deref()
            .and_then(|name| name.parse().ok())
            .unwrap_or(defaults.timezone),
        posted_lock_days: row.posted_lock_days.unwrap_or(DEFAULT_POSTED_LOCK_DAYS),
        skipped_lock_days: row.skipped_lock_days.unwrap_or(DEFAULT_SKIPPED_LOCK_DAYS),
        auto_post: row.auto_post.unwrap_or(false),
        story_buttons_admins_only: row.story_buttons_admins_only.unwrap_or(false),
        daily_summary_hour: row
            .daily_summary
            .unwrap_or(true)
            .then(|| row.daily_summary_hour.unwrap_or(DEFAULT_SUMMARY_HOUR)),
        auto_tune: row.auto_tune.unwrap_or(false).then(|| AutoTune {
            metric: row
                .auto_tune_metric
                .as_deref()
                .and_then(Metric::from_name)
                .unwrap_or(Metric::Reach),
            step: row.auto_tune_step.unwrap_or(tune::DEFAULT_STEP),
        }),
    }
}

/// Auto-tune on (with its metric and, if given, its step) or off. One change,
/// "auto_tune", in the words of `format_auto_tune`.
pub fn apply_auto_tune(
    row: &mut ChatRow,
    defaults: &Defaults,
    tune: Option<(Metric, Option<u32>)>,
) -> Option<Change> {
    let old = resolve(row, defaults).auto_tune;
    match tune {
        Some((metric, step)) => {
            row.auto_tune = Some(true);
            row.auto_tune_metric = Some(metric.name().to_string());
            if let Some(step) = step {
                row.auto_tune_step = Some(step);
            }
        }
        None => row.auto_tune = Some(false),
    }
    let new = resolve(row, defaults).auto_tune;
    (old != new).then(|| Change {
        setting: "auto_tune",
        old: format_auto_tune(old).into(),
        new: format_auto_tune(new).into(),
    })
}

/// The on/off settings the menu toggles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    DryRun,
    InstagramApi,
    Paused,
    AutoPost,
    StoryButtonsAdminsOnly,
}

impl Toggle {
    pub fn setting_name(self) -> &'static str {
        match self {
            Toggle::DryRun => "dry_run_mode",
            Toggle::InstagramApi => "enable_instagram_api",
            Toggle::Paused => "is_paused",
            Toggle::AutoPost => "posting_mode_auto",
            Toggle::StoryButtonsAdminsOnly => "story_buttons_admins_only",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Toggle::DryRun => "Dry run",
            Toggle::InstagramApi => "Instagram API",
            Toggle::Paused => "Paused",
            Toggle::AutoPost => "Auto post",
            Toggle::StoryButtonsAdminsOnly => "Story buttons for admins only",
        }
    }

    pub fn current(self, settings: &ChatSettings) -> bool {
        match self {
            Toggle::DryRun => settings.dry_run_mode,
            Toggle::InstagramApi => settings.enable_instagram_api,
            Toggle::Paused => settings.is_paused,
            Toggle::AutoPost => settings.auto_post,
            Toggle::StoryButtonsAdminsOnly => settings.story_buttons_admins_only,
        }
    }
}

/// One setting that changed, for settings_history and the confirmation text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub setting: &'static str,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// Sets a toggle on the row. Returns the change, or `None` when it already had
/// that value (a second press on a stale menu changes nothing).
pub fn apply_toggle(
    row: &mut ChatRow,
    defaults: &Defaults,
    toggle: Toggle,
    value: bool,
    user_id: i64,
    now: DateTime<Utc>,
) -> Option<Change> {
    let old = toggle.current(&resolve(row, defaults));
    if old == value {
        return None;
    }
    match toggle {
        Toggle::DryRun => row.dry_run_mode = Some(value),
        Toggle::InstagramApi => row.enable_instagram_api = Some(value),
        Toggle::AutoPost => row.auto_post = Some(value),
        Toggle::StoryButtonsAdminsOnly => row.story_buttons_admins_only = Some(value),
        Toggle::Paused => {
            row.is_paused = value;
            row.paused_at = value.then_some(now);
            row.paused_by = value.then_some(user_id);
        }
    }
    Some(Change {
        setting: toggle.setting_name(),
        old: old.into(),
        new: value.into(),
    })
}

pub fn apply_posts_per_day(row: &mut ChatRow, defaults: &Defaults, value: u32) -> Option<Change> {
    let old = resolve(row, defaults).posts_per_day;
    row.posts_per_day = Some(value);
    (old != value).then(|| Change {
        setting: "posts_per_day",
        old: old.into(),
        new: value.into(),
    })
}

pub fn apply_hours(row: &mut ChatRow, defaults: &Defaults, start: u32, end: u32) -> Vec<Change> {
    let before = resolve(row, defaults);
    row.posting_hours_start = Some(start);
    row.posting_hours_end = Some(end);
    let mut changes = Vec::new();
    if before.posting_hours_start != start {
        changes.push(Change {
            setting: "posting_hours_start",
            old: before.posting_hours_start.into(),
            new: start.into(),
        });
    }
    if before.posting_hours_end != end {
        changes.push(Change {
            setting: "posting_hours_end",
            old: before.posting_hours_end.into(),
            new: end.into(),
        });
    }
    changes
}

/// The daily summary at a local hour, or off (`None`; the hour is kept for
/// when it is switched on again). One change, "daily_summary_hour": the hour
/// or null.
pub fn apply_summary_hour(
    row: &mut ChatRow,
    defaults: &Defaults,
    value: Option<u32>,
) -> Option<Change> {
    let old = resolve(row, defaults).daily_summary_hour;
    row.daily_summary = Some(value.is_some());
    if let Some(hour) = value {
        row.daily_summary_hour = Some(hour);
    }
    (old != value).then(|| Change {
        setting: "daily_summary_hour",
        old: old.into(),
        new: value.into(),
    })
}

/// The daily summary's hour as typed: "9", "09:00", or "off".
pub fn parse_summary_hour(text: &str) -> Result<Option<u32>, String> {
    let t = text.trim();
    if ["off", "no", "none"]
        .iter()
        .any(|word| t.eq_ignore_ascii_case(word))
    {
        return Ok(None);
    }
    parse_hour(t).map(Some).map_err(|_| {
        format!("Send the hour of the daily summary, a whole number from 0 to {HOUR_MAX} (24-hour clock), or “off”.")
    })
}

/// What a user typed for posts per day, checked. The error is the whole reply.
pub fn parse_posts_per_day(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    match trimmed.parse::<i64>() {
        Ok(n) if (POSTS_PER_DAY_MIN as i64..=POSTS_PER_DAY_MAX as i64).contains(&n) => Ok(n as u32),
        Ok(_) => Err(format!(
            "Posts per day must be between {POSTS_PER_DAY_MIN} and {POSTS_PER_DAY_MAX}."
        )),
        Err(_) => Err(format!(
            "Posts per day must be a whole number between {POSTS_PER_DAY_MIN} and {POSTS_PER_DAY_MAX}."
        )),
    }
}

/// A posting window typed as "14-2" (both ends) or "14" (the start; the end is asked next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursInput {
    Window { start: u32, end: u32 },
    StartOnly(u32),
}

/// A typed value a prompt asks for, shared by the /settings menu and the /init
/// wizard: they ask the same questions and must take the same answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    PostsPerDay,
    /// "14-2", or "14" and the end asked next.
    Hours,
    /// The end of a window whose start was typed before (`None`: lost).
    HoursEnd {
        start: Option<u32>,
    },
    Timezone,
    /// Days an item stays locked after ✅ Posted and after ⏭ Skip.
    Locks,
    /// The daily summary's local hour, or "off".
    SummaryHour,
}

/// A checked answer to an `Asked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    PostsPerDay(u32),
    Hours {
        start: u32,
        end: u32,
    },
    /// Only the start of a window: ask for its end next.
    HoursStart(u32),
    Timezone(Tz),
    Locks {
        posted: u32,
        skipped: u32,
    },
    /// The daily summary at this local hour; `None`: off.
    SummaryHour(Option<u32>),
    /// The end of a window whose start is lost: drop the prompt rather than guess.
    Lost,
}

/// Reads `text` as the answer to `asked`, or says why it cannot be one.
pub fn read_answer(asked: Asked, text: &str) -> Result<Answer, String> {
    Ok(match asked {
        Asked::PostsPerDay => Answer::PostsPerDay(parse_posts_per_day(text)?),
        Asked::Hours => match parse_hours(text)? {
            HoursInput::Window { start, end } => Answer::Hours { start, end },
            HoursInput::StartOnly(start) => Answer::HoursStart(start),
        },
        Asked::HoursEnd { start } => {
            let end = parse_hour(text)?;
            match start {
                Some(start) => Answer::Hours { start, end },
                None => Answer::Lost,
            }
        }
        Asked::Timezone => Answer::Timezone(parse_timezone(text)?),
        Asked::Locks => {
            let (posted, skipped) = parse_lock_days(text)?;
            Answer::Locks { posted, skipped }
        }
        Asked::SummaryHour => Answer::SummaryHour(parse_summary_hour(text)?),
    })
}

pub fn parse_hour(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let t = t.strip_suffix(":00").unwrap_or(t).trim();
    match t.parse::<i64>() {
        Ok(n) if (0..=HOUR_MAX as i64).contains(&n) => Ok(n as u32),
        _ => Err(format!(
            "An hour must be a whole number from 0 to {HOUR_MAX} (24-hour clock)."
        )),
    }
}

pub fn parse_hours(text: &str) -> Result<HoursInput, String> {
    let t = text.trim();
    let dashes: &[char] = &['-', '–', '—'];
    match t
        .split_once(dashes)
        .or_else(|| t.split_once(char::is_whitespace))
    {
        Some((start, end)) => {
            let start = parse_hour(start)?;
            let end = parse_hour(end)?;
            Ok(HoursInput::Window { start, end })
        }
        None => parse_hour(t).map(HoursInput::StartOnly),
    }
}

pub fn apply_timezone(row: &mut ChatRow, defaults: &Defaults, tz: Tz) -> Option<Change> {
    let old = resolve(row, defaults).timezone;
    row.timezone = Some(tz.name().to_string());
    (old != tz).then(|| Change {
        setting: "timezone",
        old: old.name().into(),
        new: tz.name().into(),
    })
}

pub fn apply_lock_days(
    row: &mut ChatRow,
    defaults: &Defaults,
    posted: u32,
    skipped: u32,
) -> Vec<Change> {
    let before = resolve(row, defaults);
    row.posted_lock_days = Some(posted);
    row.skipped_lock_days = Some(skipped);
    let mut changes = Vec::new();
    if before.posted_lock_days != posted {
        changes.push(Change {
            setting: "posted_lock_days",
            old: before.posted_lock_days.into(),
            new: posted.into(),
        });
    }
    if before.skipped_lock_days != skipped {
        changes.push(Change {
            setting: "skipped_lock_days",
            old: before.skipped_lock_days.into(),
            new: skipped.into(),
        });
    }
    changes
}

/// An IANA time zone name as typed ("europe/berlin" is accepted too).
pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    let t = text.trim();
    crate::zone::find(t).ok_or_else(|| {
        "That is not a time zone name I know. Use an IANA name such as Europe/Berlin, \
             America/New_York or UTC."
            .to_string()
    })
}

/// Lock lengths typed as "30 45" (days Posted and Skip keep an item out).
pub fn parse_lock_days(text: &str) -> Result<(u32, u32), String> {
    let parts: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '/')
        .filter(|p| !p.is_empty())
        .collect();
    let err = || {
        format!(
            "Send two whole numbers of days from 0 to {LOCK_DAYS_MAX}: after Posted, then after Skip (like “30 45”)."
        )
    };
    let [posted, skipped] = parts.as_slice() else {
        return Err(err());
    };
    let day = |p: &str| p.parse::<u32>().ok().filter(|d| *d <= LOCK_DAYS_MAX);
    match (day(posted), day(skipped)) {
        (Some(p), Some(s)) => Ok((p, s)),
        _ => Err(err()),
    }
}

/// "14:00–02:00"; equal hours are a window of the whole day (see
/// `schedule::window_for`): "all day", or "all day from 09:00" when the day
/// starts at another hour than midnight (the slots spread from there).
pub fn format_window(start: u32, end: u32) -> String {
    match (start, end) {
        (0, 0) => "all day".to_string(),
        (start, end) if start == end => format!("all day from {start:02}:00"),
        (start, end) => format!("{start:02}:00–{end:02}:00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_of_typed_answers_for_the_menu_and_the_wizard() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let cases = [
            (Asked::PostsPerDay, "4", Ok(Answer::PostsPerDay(4))),
            (
                Asked::Hours,
                "9-21",
                Ok(Answer::Hours { start: 9, end: 21 }),
            ),
            (Asked::Hours, "14", Ok(Answer::HoursStart(14))),
            (
                Asked::HoursEnd { start: Some(14) },
                "2",
                Ok(Answer::Hours { start: 14, end: 2 }),
            ),
            (Asked::HoursEnd { start: None }, "2", Ok(Answer::Lost)),
            (
                Asked::Timezone,
                "Europe/Berlin",
                Ok(Answer::Timezone(berlin)),
            ),
            (
                Asked::Locks,
                "30 7",
                Ok(Answer::Locks {
                    posted: 30,
                    skipped: 7,
                }),
            ),
            (Asked::SummaryHour, "7", Ok(Answer::SummaryHour(Some(7)))),
            (
                Asked::SummaryHour,
                "21:00",
                Ok(Answer::SummaryHour(Some(21))),
            ),
            (Asked::SummaryHour, " Off ", Ok(Answer::SummaryHour(None))),
        ];
        for (asked, text, expected) in cases {
            assert_eq!(read_answer(asked, text), expected, "{asked:?} {text:?}");
        }
        for (asked, text) in [
            (Asked::PostsPerDay, "many"),
            (Asked::Hours, "25-3"),
            (Asked::HoursEnd { start: Some(9) }, "noon"),
            (Asked::HoursEnd { start: None }, "noon"),
            (Asked::Timezone, "Mars/Olympus"),
            (Asked::Locks, "-1"),
            (Asked::SummaryHour, "24"),
            (Asked::SummaryHour, "later"),
        ] {
            let error = read_answer(asked, text).unwrap_err();
            assert!(!error.is_empty(), "{asked:?} {text:?}");
        }
    }

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

    #[test]
    fn null_columns_follow_the_defaults() {
        let mut row = ChatRow::new(1);
        let s = resolve(&row, &defaults());
        assert_eq!(
            (s.dry_run_mode, s.posts_per_day, s.posting_hours_start),
            (true, 3, 14)
        );
        row.posts_per_day = Some(7);
        row.timezone = Some("Europe/Berlin".into());
        let s = resolve(&row, &defaults());
        assert_eq!(s.posts_per_day, 7);
        assert_eq!(
            s.timezone,
            "Europe/Berlin".parse::<crate::zone::Tz>().unwrap()
        );
        row.timezone = Some("Not/AZone".into());
        assert_eq!(resolve(&row, &defaults()).timezone, crate::zone::Tz::UTC);
    }

    #[test]
    fn toggles_record_change_once() {
        let t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut row = ChatRow::new(1);
        let change = apply_toggle(&mut row, &defaults(), Toggle::DryRun, false, 9, t);
        assert_eq!(
            change,
            Some(Change {
                setting: "dry_run_mode",
                old: true.into(),
                new: false.into()
            })
        );
        assert_eq!(
            apply_toggle(&mut row, &defaults(), Toggle::DryRun, false, 9, t),
            None
        );
        let paused_at = t + chrono::Duration::milliseconds(250);
        apply_toggle(&mut row, &defaults(), Toggle::Paused, true, 9, paused_at);
        assert_eq!(
            (row.is_paused, row.paused_by, row.paused_at),
            (true, Some(9), Some(paused_at))
        );
        // The snapshot holds the time as the store writes it, to the second.
        let snapshot = serde_json::to_value(resolve(&row, &defaults())).unwrap();
        assert_eq!(snapshot["paused_at"], "2026-01-01T00:00:00Z");
        apply_toggle(&mut row, &defaults(), Toggle::Paused, false, 10, t);
        assert_eq!(
            (row.is_paused, row.paused_by, row.paused_at),
            (false, None, None)
        );
    }

    #[test]
    fn the_daily_summary_is_on_at_nine_until_changed_and_off_keeps_the_hour() {
        let mut row = ChatRow::new(1);
        assert_eq!(resolve(&row, &defaults()).daily_summary_hour, Some(9));
        let change = apply_summary_hour(&mut row, &defaults(), Some(7));
        assert_eq!(
            change.map(|c| (c.setting, c.old, c.new)),
            Some(("daily_summary_hour", 9.into(), 7.into()))
        );
        assert_eq!(apply_summary_hour(&mut row, &defaults(), Some(7)), None);
        let off = apply_summary_hour(&mut row, &defaults(), None);
        assert_eq!(
            off.map(|c| (c.old, c.new)),
            Some((7.into(), serde_json::Value::Null))
        );
        assert_eq!(resolve(&row, &defaults()).daily_summary_hour, None);
        assert_eq!(
            (row.daily_summary, row.daily_summary_hour),
            (Some(false), Some(7))
        );
    }

    fn check_posts(input: &str, expected: Result<u32, &str>) {
        let got = parse_posts_per_day(input);
        match expected {
            Ok(n) => assert_eq!(got, Ok(n), "input {input:?}"),
            Err(fragment) => {
                let err = got.expect_err(input);
                assert!(err.contains(fragment), "{input:?}: {err}");
            }
        }
    }

    #[test]
    fn posts_per_day_values() {
        for (input, expected) in [
            ("5", Ok(5)),
            (" 50 ", Ok(50)),
            ("1", Ok(1)),
            ("0", Err("between 1 and 50")),
            ("51", Err("between 1 and 50")),
            ("-3", Err("between 1 and 50")),
            ("abc", Err("whole number")),
            ("", Err("whole number")),
            ("3.5", Err("whole number")),
            ("99999999999999999999999", Err("whole number")),
        ] {
            check_posts(input, expected);
        }
    }

    #[test]
    fn hours_values() {
        use HoursInput::*;
        for (input, expected) in [
            ("14-2", Ok(Window { start: 14, end: 2 })),
            ("9 – 21", Ok(Window { start: 9, end: 21 })),
            ("09:00-21:00", Ok(Window { start: 9, end: 21 })),
            ("0 23", Ok(Window { start: 0, end: 23 })),
            ("7", Ok(StartOnly(7))),
            ("25", Err(())),
            ("14-24", Err(())),
            ("-1", Err(())),
            ("a-b", Err(())),
            ("", Err(())),
        ] {
            assert_eq!(
                parse_hours(input).map_err(|_| ()),
                expected,
                "input {input:?}"
            );
        }
        assert!(parse_hour("25").unwrap_err().contains("0 to 23"));
    }

    #[test]
    fn timezones_and_lock_days() {
        assert_eq!(
            parse_timezone(" Europe/Berlin "),
            Ok("Europe/Berlin".parse::<crate::zone::Tz>().unwrap())
        );
        assert_eq!(
            parse_timezone("america/new_york"),
            Ok("America/New_York".parse::<crate::zone::Tz>().unwrap())
        );
        assert_eq!(
            parse_timezone("Mars/Base"),
            Err(
                "That is not a time zone name I know. Use an IANA name such as \
                 Europe/Berlin, America/New_York or UTC."
                    .to_string()
            )
        );
        assert!(parse_timezone("").is_err());
        assert_eq!(parse_lock_days("30 45"), Ok((30, 45)));
        assert_eq!(parse_lock_days("0,7"), Ok((0, 7)));
        for bad in ["30", "30 45 60", "a b", "-1 4", "9999 1", ""] {
            assert!(parse_lock_days(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_read_as_hours_or_all_day() {
        let shown: Vec<String> = [(14, 2), (9, 21), (0, 23), (0, 0), (9, 9), (23, 23)]
            .iter()
            .map(|&(start, end)| format!("{start}-{end}: {}", format_window(start, end)))
            .collect();
        expect_test::expect![[r#"
            14-2: 14:00–02:00
            9-21: 09:00–21:00
            0-23: 00:00–23:00
            0-0: all day
            9-9: all day from 09:00
            23-23: all day from 23:00"#]]
        .assert_eq(&shown.join("\n"));
    }

    #[test]
    fn parsers_never_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let c = ['1', '2', '-', ' ', ':', '0', '–', 'x', '9', '\u{0}', 'é']
                    [(seed % 11) as usize];
                s.push(c);
            }
            let _ = parse_hours(&s);
            let _ = parse_posts_per_day(&s);
            let _ = parse_timezone(&s);
            let _ = parse_lock_days(&s);
        }
    }
}
