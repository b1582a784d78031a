//! What the bot says about a settings file: the export's caption, the import's
//! prompt, its differences (old → new per setting) with ✅ Apply / ✖️ Cancel, and
//! every refusal. Pure; dynamic strings are HTML-escaped here.

use crate::zone::Tz;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::zoned_day;
use crate::domain::callback::{self, Callback};
use crate::domain::markup::{escape_html, plural, Button, Keyboard};
use crate::domain::settings::Change;

/// One setting as an import would change it, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub label: &'static str,
    pub old: String,
    pub new: String,
}

fn label(setting: &str) -> &'static str {
    match setting {
        "posts_per_day" => "Posts per day",
        "posting_hours_start" => "Posting hours start",
        "posting_hours_end" => "Posting hours end",
        "timezone" => "Time zone",
        "dry_run_mode" => "Dry run",
        "enable_instagram_api" => "Instagram API",
        "posting_mode_auto" => "Auto post",
        "story_buttons_admins_only" => "Story buttons for admins only",
        "is_paused" => "Paused",
        "posted_lock_days" => "Lock after Posted",
        "skipped_lock_days" => "Lock after Skip",
        "category_mix" => "Category mix",
        "active_account_id" => "Instagram account",
        _ => "Setting",
    }
}

fn words(setting: &str, value: &Value) -> String {
    match (setting, value) {
        (_, Value::Bool(true)) => "on".to_string(),
        (_, Value::Bool(false)) => "off".to_string(),
        ("posting_hours_start" | "posting_hours_end", Value::Number(hour)) => {
            format!("{:02}:00", hour.as_u64().unwrap_or_default())
        }
        ("posted_lock_days" | "skipped_lock_days", Value::Number(days)) => {
            plural(days, "day", "days")
        }
        (_, Value::String(text)) => text.clone(),
        (_, Value::Null) => "none".to_string(),
        (_, other) => other.to_string(),
    }
}

/// A settings change in words.
pub fn difference(change: &Change) -> Difference {
    Difference {
        label: label(change.setting),
        old: words(change.setting, &change.old),
        new: words(change.setting, &change.new),
    }
}

/// The chosen account's change: "@old" → "@new" ("none" before a first choice).
pub fn account_difference(old: Option<&str>, new: &str) -> Difference {
    Difference {
        label: label("active_account_id"),
        old: old.map_or_else(|| "none".to_string(), |name| format!("@{name}")),
        new: format!("@{new}"),
    }
}

fn difference_lines(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(|d| {
            format!(
                "• {}: {} → <b>{}</b>\n",
                d.label,
                escape_html(&d.old),
                escape_html(&d.new)
            )
        })
        .collect()
}

/// The caption under an exported file (at most 1024 characters).
pub fn export_caption(title: Option<&str>, at: DateTime<Utc>, tz: Tz) -> String {
    let of = title.map_or_else(String::new, |t| format!(" of {}", escape_html(t)));
    format!(
        "⚙️ <b>Settings{of}</b>, {}.\n\nTo load them into this chat or another, send this file \
         back as a reply to this message, or after /settings import. Nothing changes before \
         you press ✅ Apply.",
        zoned_day(at, tz)
    )
}

pub fn import_prompt() -> String {
    "📥 Send me the settings file (the .json from /settings export) as a document, \
     or /cancel. You will see what it changes before anything does."
        .to_string()
}

/// The differences of a file and its buttons.
pub fn import_preview(differences: &[Difference], import_id: i64) -> (String, Keyboard) {
    let text = format!(
        "📥 <b>This file changes {}:</b>\n{}\nPress ✅ Apply to change {}, or ✖️ Cancel.",
        plural(differences.len(), "setting", "settings"),
        difference_lines(differences),
        if differences.len() == 1 { "it" } else { "them" }
    );
    let keyboard = vec![vec![
        Button::callback(
            "✅ Apply",
            callback::encode(Callback::Import {
                id: import_id,
                apply: true,
            }),
        ),
        Button::callback(
            "✖️ Cancel",
            callback::encode(Callback::Import {
                id: import_id,
                apply: false,
            }),
        ),
    ]];
    (text, keyboard)
}

pub fn import_applied_text(differences: &[Difference]) -> String {
    format!(
        "✅ <b>Imported: {} changed.</b>\n{}",
        plural(differences.len(), "setting", "settings"),
        difference_lines(differences)
    )
}

pub fn import_cancelled_text() -> String {
    "✖️ Import cancelled; nothing was changed.".to_string()
}

pub fn import_unchanged_text() -> String {
    "✅ This file holds the settings this chat already has: nothing to change.".to_string()
}

/// A file that changes nothing because one of its fields is wrong.
pub fn import_refused_text(field: &str, why: &str) -> String {
    format!(
        "⚠️ <b>This file cannot be imported.</b>\n<code>{}</code>: {}\n\nNothing was changed.",
        escape_html(field),
        escape_html(why)
    )
}

pub fn import_too_big_text(limit_kb: u64) -> String {
    format!(
        "⚠️ That file is over {limit_kb} KB; a settings file from /settings export is far \
         smaller. Nothing was changed."
    )
}

pub fn import_not_a_settings_file_text() -> String {
    "⚠️ That is not a settings file: send the .json file that /settings export made, as a \
     document. Nothing was changed."
        .to_string()
}

pub fn import_download_failed_text() -> String {
    "⚠️ I could not fetch that file from Telegram just now. Please send it again; nothing \
     was changed."
        .to_string()
}

/// Apply pressed after the settings changed since the differences were shown.
pub fn import_stale_text() -> String {
    "⚠️ The settings changed since this file was read, so these differences are out of \
     date. Send the file again to see them anew; nothing was changed."
        .to_string()
}

/// Apply or Cancel on an import already applied, cancelled or expired (an alert).
pub fn import_gone_alert() -> String {
    "This import is no longer waiting. Send the file again.".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_shows_each_change_old_to_new() {
        let changes = [
            Change {
                setting: "posts_per_day",
                old: 3.into(),
                new: 5.into(),
            },
            Change {
                setting: "posting_hours_end",
                old: 2.into(),
                new: 23.into(),
            },
            Change {
                setting: "dry_run_mode",
                old: true.into(),
                new: false.into(),
            },
            Change {
                setting: "posted_lock_days",
                old: 30.into(),
                new: 1.into(),
            },
            Change {
                setting: "category_mix",
                old: "every category alike".into(),
                new: "<quotes> 100%".into(),
            },
        ];
        let mut differences: Vec<Difference> = changes.iter().map(difference).collect();
        differences.push(account_difference(None, "shop"));
        let (text, keyboard) = import_preview(&differences, 12);
        expect_test::expect![[r#"
            📥 <b>This file changes 6 settings:</b>
            • Posts per day: 3 → <b>5</b>
            • Posting hours end: 02:00 → <b>23:00</b>
            • Dry run: on → <b>off</b>
            • Lock after Posted: 30 days → <b>1 day</b>
            • Category mix: every category alike → <b>&lt;quotes&gt; 100%</b>
            • Instagram account: none → <b>@shop</b>

            Press ✅ Apply to change them, or ✖️ Cancel."#]]
        .assert_eq(&text);
        let data: Vec<(&str, Option<&str>)> = keyboard[0]
            .iter()
            .map(|b| (b.text.as_str(), b.callback_data.as_deref()))
            .collect();
        assert_eq!(
            data,
            [
                ("✅ Apply", Some("1:imp:a:12")),
                ("✖️ Cancel", Some("1:imp:c:12"))
            ]
        );
        expect_test::expect![[r#"
            ✅ <b>Imported: 1 setting changed.</b>
            • Instagram account: @old → <b>@shop</b>
        "#]]
        .assert_eq(&import_applied_text(&[account_difference(
            Some("old"),
            "shop",
        )]));
    }

    #[test]
    fn refusals_and_the_caption() {
        expect_test::expect![[r#"
            ⚠️ <b>This file cannot be imported.</b>
            <code>settings.&lt;x&gt;</code>: is not a field Storyline knows

            Nothing was changed."#]]
        .assert_eq(&import_refused_text(
            "settings.<x>",
            "is not a field Storyline knows",
        ));
        let at: DateTime<Utc> = "2026-07-05T09:30:00Z".parse().unwrap();
        expect_test::expect![[r#"
            ⚙️ <b>Settings of Shop &amp; Co</b>, Sun 05 Jul 11:30 CEST.

            To load them into this chat or another, send this file back as a reply to this message, or after /settings import. Nothing changes before you press ✅ Apply."#]]
        .assert_eq(&export_caption(
            Some("Shop & Co"),
            at,
            "Europe/Berlin".parse::<crate::zone::Tz>().unwrap(),
        ));
        assert!(import_too_big_text(64).contains("over 64 KB"));
    }
}
