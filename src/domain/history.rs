//! Pure: a chat's history as people read it — settings versions (who changed
//! what, old → new, and the stored reason) and posting outcomes (which item,
//! what became of it, how) as one list, newest first. `db::history` reads the
//! entries, `ui::history` pages them for /history, `cli::history` prints them.
//! Words for settings, values and sources live here so the chat and the
//! terminal say the same thing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::domain::status::{PostMethod, QueueStatus};

/// Entries on one /history page. Each line is capped (`LINE_MAX_CHARS`), so a
/// full page stays well inside Telegram's 4096 characters.
pub const PAGE_SIZE: u32 = 8;
/// At most this many characters of what an entry says (its "what" part).
pub const LINE_MAX_CHARS: usize = 300;
/// One value or item name shown in a line is cut to this many characters.
const VALUE_MAX_CHARS: usize = 60;

/// Which entries to show: `/history`, `/history settings`, `/history posts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrow {
    All,
    Settings,
    Posts,
}

impl Narrow {
    /// The letter a page button carries.
    pub fn code(self) -> &'static str {
        match self {
            Narrow::All => "a",
            Narrow::Settings => "s",
            Narrow::Posts => "p",
        }
    }

    pub fn from_code(code: &str) -> Option<Narrow> {
        Some(match code {
            "a" => Narrow::All,
            "s" => Narrow::Settings,
            "p" => Narrow::Posts,
            _ => return None,
        })
    }

    /// The argument of /history: nothing, "settings" or "posts".
    pub fn from_argument(text: &str) -> Option<Narrow> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "" | "all" => Narrow::All,
            "settings" | "setting" => Narrow::Settings,
            "posts" | "post" | "posting" => Narrow::Posts,
            _ => return None,
        })
    }

    pub fn includes_settings(self) -> bool {
        self != Narrow::Posts
    }

    pub fn includes_posts(self) -> bool {
        self != Narrow::Settings
    }
}

/// A /history list as it stood when it was first shown: entries up to that
/// moment and up to those row ids (stored times are to the second, so the ids
/// keep a change made in the same second as /history off its pages). The
/// page buttons carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Unix seconds.
    pub at: i64,
    /// The highest settings_history id then (0: none).
    pub settings_id: i64,
    /// The highest posting_history id then (0: none).
    pub post_id: i64,
}

/// The largest id or time a page button carries, so its data stays within
/// Telegram's 64 bytes (a trillion rows; Unix seconds past the year 5000).
pub const ANCHOR_MAX: i64 = 999_999_999_999;

/// One setting in a stored version's `changes`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SettingChange {
    pub setting: String,
    pub old: Value,
    pub new: Value,
}

/// A version's stored `changes` JSON; a text that does not read as a list of
/// changes reads as none (the version is still shown, with its reason).
pub fn parse_changes(json: &str) -> Vec<SettingChange> {
    serde_json::from_str(json).unwrap_or_default()
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A settings version: the changes (none for a chat's first version) and
    /// the stored reason (the source: menu, wizard, import, …).
    Settings {
        changes: Vec<SettingChange>,
        reason: Option<String>,
    },
    /// A story's outcome: posted, skipped or rejected (posting_history), or a
    /// slot that failed or was missed (posting_queue).
    Post {
        item: Option<String>,
        outcome: QueueStatus,
        method: Option<PostMethod>,
        error: Option<String>,
    },
}

/// One line of a chat's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub chat_id: i64,
    pub at: DateTime<Utc>,
    /// Who did it; None for Storyline itself (the schedule, the system).
    pub user_id: Option<i64>,
    /// "@ada", a first name, or "user 42"; None with `user_id`.
    pub who: Option<String>,
    pub what: What,
}

impl Entry {
    /// "@ada", or "Storyline" when nobody pressed anything.
    pub fn who_words(&self) -> String {
        match (&self.who, self.user_id) {
            (Some(name), _) => name.clone(),
            (None, Some(id)) => format!("user {id}"),
            (None, None) => "Storyline".to_string(),
        }
    }

    /// What happened, in words: "Posts per day 3 → 5; Time zone UTC → Europe/Berlin",
    /// "quotes/a.jpg posted". Cut to `LINE_MAX_CHARS`.
    pub fn what_words(&self) -> String {
        let text = match &self.what {
            What::Settings { changes, .. } if changes.is_empty() => {
                "settings recorded as they were".to_string()
            }
            What::Settings { changes, .. } => changes
                .iter()
                .map(change_words)
                .collect::<Vec<_>>()
                .join("; "),
            What::Post { item, outcome, .. } => format!(
                "{} {}",
                item.as_deref()
                    .map(item_words)
                    .unwrap_or_else(|| "(no item)".to_string()),
                outcome_words(*outcome)
            ),
        };
        cut(&text, LINE_MAX_CHARS)
    }

    /// Why, or how: the source of a settings change ("menu", "wizard",
    /// "import", "CLI", …) or how a story went ("by hand", "Instagram API",
    /// and a failure's error).
    pub fn why_words(&self) -> String {
        match &self.what {
            What::Settings { reason, .. } => reason
                .as_deref()
                .map(source_words)
                .unwrap_or("not recorded")
                .to_string(),
            What::Post {
                outcome,
                method,
                error,
                ..
            } => {
                let how = match (outcome, method) {
                    (QueueStatus::Missed, _) => "Storyline was not running".to_string(),
                    (_, Some(method)) => method_words(*method).to_string(),
                    (_, None) => String::new(),
                };
                match error {
                    Some(error) if *outcome != QueueStatus::Missed => {
                        let error = cut(error, VALUE_MAX_CHARS * 2);
                        if how.is_empty() {
                            error
                        } else {
                            format!("{how}: {error}")
                        }
                    }
                    _ => how,
                }
            }
        }
    }

    pub fn is_settings(&self) -> bool {
        matches!(self.what, What::Settings { .. })
    }
}

/// A stored reason as the source people know it by. Reasons written before
/// these words existed read as they are.
pub fn source_words(reason: &str) -> &str {
    match reason {
        "settings menu" | "account selector" => "menu",
        "initial setup" => "wizard",
        "chat created" => "new chat",
        "import" => "import",
        "auto-tune" | "auto_tune" => "auto-tune",
        "cli" | "CLI" => "CLI",
        other => other,
    }
}

/// A stored setting name as the menu calls it.
pub fn setting_label(setting: &str) -> &str {
    match setting {
        "dry_run_mode" => "Dry run",
        "enable_instagram_api" => "Instagram API",
        "is_paused" => "Paused",
        "posting_mode_auto" => "Auto post",
        "story_buttons_admins_only" => "Story buttons for admins only",
        "posts_per_day" => "Posts per day",
        "posting_hours_start" => "Posting from",
        "posting_hours_end" => "Posting until",
        "timezone" => "Time zone",
        "posted_lock_days" => "Rest after posted (days)",
        "skipped_lock_days" => "Rest after skipped (days)",
        "category_mix" => "Category mix",
        "active_account_id" => "Instagram account",
        "daily_summary_hour" => "Daily summary",
        "auto_tune" => "Auto-tune mix",
        "auto_tune_bounds" => "Auto-tune bounds",
        other => other,
    }
}

/// A stored value in words: on/off, "14:00" for an hour, "#3" for an account.
pub fn value_words(setting: &str, value: &Value) -> String {
    let text = match (setting, value) {
        (_, Value::Bool(true)) => "on".to_string(),
        (_, Value::Bool(false)) => "off".to_string(),
        ("active_account_id", Value::Null) => "none".to_string(),
        // The summary switched off is stored as no hour.
        ("daily_summary_hour", Value::Null) => "off".to_string(),
        (_, Value::Null) => "default".to_string(),
        ("posting_hours_start" | "posting_hours_end" | "daily_summary_hour", Value::Number(n)) => {
            match n.as_u64() {
                Some(hour) => format!("{hour:02}:00"),
                None => n.to_string(),
            }
        }
        ("active_account_id", Value::Number(n)) => format!("#{n}"),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    };
    cut(&text, VALUE_MAX_CHARS)
}

/// "Posts per day 3 → 5"
pub fn change_words(change: &SettingChange) -> String {
    format!(
        "{} {} → {}",
        setting_label(&change.setting),
        value_words(&change.setting, &change.old),
        value_words(&change.setting, &change.new)
    )
}

fn outcome_words(outcome: QueueStatus) -> &'static str {
    match outcome {
        QueueStatus::Posted => "posted",
        QueueStatus::Skipped => "skipped",
        QueueStatus::Rejected => "rejected",
        QueueStatus::Failed => "failed",
        QueueStatus::Missed => "missed",
        QueueStatus::Pending | QueueStatus::Sending | QueueStatus::Sent => "waiting",
    }
}

fn method_words(method: PostMethod) -> &'static str {
    match method {
        PostMethod::Manual => "by hand",
        PostMethod::InstagramApi => "Instagram API",
        PostMethod::DryRun => "dry run",
    }
}

/// An item's path, its end kept when long (the file name says the most).
fn item_words(path: &str) -> String {
    let count = path.chars().count();
    if count <= VALUE_MAX_CHARS {
        return path.to_string();
    }
    let tail: String = path.chars().skip(count - (VALUE_MAX_CHARS - 1)).collect();
    format!("…{tail}")
}

/// `text` cut to at most `max` characters, "…" marking a cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// How many pages `total` entries make (at least one, for "nothing yet").
pub fn page_count(total: u32) -> u32 {
    total.div_ceil(PAGE_SIZE).max(1)
}

/// The value a setting had at `at`, from the versions that changed it
/// (`changes`, oldest first): the new value of the last change at or before
/// `at`, else the old value of the first one after. None when it never
/// changed. For what a version's snapshot does not hold (the category mix).
pub fn value_at(
    setting: &str,
    versions: &[(DateTime<Utc>, Vec<SettingChange>)],
    at: DateTime<Utc>,
) -> Option<Value> {
    let mut before = None;
    for (from, changes) in versions {
        for change in changes.iter().filter(|c| c.setting == setting) {
            if *from <= at {
                before = Some(change.new.clone());
            } else {
                return Some(before.unwrap_or_else(|| change.old.clone()));
            }
        }
    }
    before
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn settings_entry(changes: &str, reason: Option<&str>) -> Entry {
        Entry {
            chat_id: 1,
            at: at("2026-01-04T13:32:00Z"),
            user_id: Some(42),
            who: Some("@ada".into()),
            what: What::Settings {
                changes: parse_changes(changes),
                reason: reason.map(str::to_string),
            },
        }
    }

    #[test]
    fn narrowing_words_and_codes() {
        for (argument, expected) in [
            ("", Some(Narrow::All)),
            (" settings ", Some(Narrow::Settings)),
            ("Posts", Some(Narrow::Posts)),
            ("everything", None),
        ] {
            assert_eq!(Narrow::from_argument(argument), expected, "{argument:?}");
        }
        for narrow in [Narrow::All, Narrow::Settings, Narrow::Posts] {
            assert_eq!(Narrow::from_code(narrow.code()), Some(narrow));
        }
        assert_eq!(Narrow::from_code("x"), None);
        assert!(!Narrow::Posts.includes_settings() && Narrow::Posts.includes_posts());
        assert!(Narrow::Settings.includes_settings() && !Narrow::Settings.includes_posts());
    }

    #[test]
    fn a_settings_version_says_what_changed_and_where_it_came_from() {
        let entry = settings_entry(
            r#"[{"setting":"posts_per_day","old":3,"new":5},
                {"setting":"posting_hours_start","old":14,"new":9},
                {"setting":"dry_run_mode","old":true,"new":false},
                {"setting":"active_account_id","old":null,"new":3}]"#,
            Some("settings menu"),
        );
        assert_eq!(
            entry.what_words(),
            "Posts per day 3 → 5; Posting from 14:00 → 09:00; Dry run on → off; Instagram account none → #3"
        );
        assert_eq!(entry.why_words(), "menu");
        assert_eq!(entry.who_words(), "@ada");
        let first = settings_entry("[]", Some("chat created"));
        assert_eq!(first.what_words(), "settings recorded as they were");
        assert_eq!(first.why_words(), "new chat");
        // A reason nobody mapped reads as stored; garbage changes read as none.
        let odd = settings_entry("not json", Some("/dryrun"));
        assert_eq!(odd.what_words(), "settings recorded as they were");
        assert_eq!(odd.why_words(), "/dryrun");
        // The settings of the daily summary and of auto-tune, in the menu's words.
        let summary_and_tune = settings_entry(
            r#"[{"setting":"daily_summary_hour","old":9,"new":7},
                {"setting":"daily_summary_hour","old":7,"new":null},
                {"setting":"auto_tune","old":"off","new":"completion, up to 30 a week"},
                {"setting":"auto_tune_bounds","old":"none","new":"quotes=50-400"}]"#,
            Some("settings menu"),
        );
        assert_eq!(
            summary_and_tune.what_words(),
            "Daily summary 09:00 → 07:00; Daily summary 07:00 → off; \
             Auto-tune mix off → completion, up to 30 a week; Auto-tune bounds none → quotes=50-400"
        );
        for (reason, source) in [
            ("initial setup", "wizard"),
            ("import", "import"),
            ("auto-tune", "auto-tune"),
            ("cli", "CLI"),
        ] {
            assert_eq!(source_words(reason), source);
        }
    }

    #[test]
    fn a_post_says_item_outcome_and_how() {
        let post = |outcome, method, error: Option<&str>, user| Entry {
            chat_id: 1,
            at: at("2026-01-04T13:32:00Z"),
            user_id: user,
            who: user.map(|_| "@bo".to_string()),
            what: What::Post {
                item: Some("quotes/a.jpg".into()),
                outcome,
                method,
                error: error.map(str::to_string),
            },
        };
        let by_hand = post(QueueStatus::Posted, Some(PostMethod::Manual), None, Some(7));
        assert_eq!(by_hand.what_words(), "quotes/a.jpg posted");
        assert_eq!(by_hand.why_words(), "by hand");
        let api = post(
            QueueStatus::Posted,
            Some(PostMethod::InstagramApi),
            None,
            None,
        );
        assert_eq!(api.who_words(), "Storyline");
        assert_eq!(api.why_words(), "Instagram API");
        let failed = post(QueueStatus::Failed, None, Some("file too big"), None);
        assert_eq!(failed.why_words(), "file too big");
        let missed = post(QueueStatus::Missed, None, Some("the slot passed"), None);
        assert_eq!(missed.why_words(), "Storyline was not running");
        let long = Entry {
            what: What::Post {
                item: Some(format!("{}/end.jpg", "deep".repeat(40))),
                outcome: QueueStatus::Skipped,
                method: None,
                error: None,
            },
            ..by_hand
        };
        let words = long.what_words();
        assert!(
            words.starts_with('…') && words.ends_with("end.jpg skipped"),
            "{words}"
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let many: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    r#"{{"setting":"category_mix","old":"{}","new":"b{i}"}}"#,
                    "a".repeat(100)
                )
            })
            .collect();
        let entry = settings_entry(&format!("[{}]", many.join(",")), None);
        let words = entry.what_words();
        assert_eq!(words.chars().count(), LINE_MAX_CHARS);
        assert!(words.ends_with('…'));
        assert_eq!(entry.why_words(), "not recorded");
    }

    #[test]
    fn pages() {
        for (total, pages) in [(0, 1), (1, 1), (8, 1), (9, 2), (17, 3)] {
            assert_eq!(page_count(total), pages, "{total}");
        }
    }

    #[test]
    fn a_value_between_changes() {
        let change = |old: &str, new: &str| SettingChange {
            setting: "category_mix".into(),
            old: json!(old),
            new: json!(new),
        };
        let versions = vec![
            (at("2026-01-02T00:00:00Z"), vec![change("all", "a")]),
            (at("2026-01-05T00:00:00Z"), vec![]),
            (at("2026-01-09T00:00:00Z"), vec![change("a", "b")]),
        ];
        let value = |t| value_at("category_mix", &versions, at(t));
        assert_eq!(value("2026-01-01T00:00:00Z"), Some(json!("all")));
        assert_eq!(value("2026-01-02T00:00:00Z"), Some(json!("a")));
        assert_eq!(value("2026-01-08T23:59:59Z"), Some(json!("a")));
        assert_eq!(value("2027-01-01T00:00:00Z"), Some(json!("b")));
        assert_eq!(
            value_at("timezone", &versions, at("2026-01-03T00:00:00Z")),
            None
        );
    }
}
