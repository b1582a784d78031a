//! The words and buttons of /history: a page of a chat's history (settings
//! changes and story outcomes, newest first, times in the chat's zone) with
//! ◀ ▶ buttons that edit the same message. Pure; every dynamic string is
//! escaped here.

use crate::zone::Tz;

use super::zoned_day;
use crate::domain::callback::{self, Callback};
use crate::domain::history::{Anchor, Entry, Narrow, What};
use crate::domain::markup::{escape_html, plural, Button, Keyboard};
use crate::domain::status::QueueStatus;

/// Where a page stands: which one (0 = newest) of how many, of how many
/// entries, and when the list was first shown (the buttons carry it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePosition {
    pub narrow: Narrow,
    pub page: u32,
    pub pages: u32,
    pub total: u32,
    /// The list as it stood when /history was sent.
    pub anchor: Anchor,
}

fn title(narrow: Narrow) -> &'static str {
    match narrow {
        Narrow::All => "History",
        Narrow::Settings => "Settings history",
        Narrow::Posts => "Posting history",
    }
}

fn icon(entry: &Entry) -> &'static str {
    match &entry.what {
        What::Settings { .. } => "⚙️",
        What::Post { outcome, .. } => match outcome {
            QueueStatus::Posted => "✅",
            QueueStatus::Skipped => "⏭",
            QueueStatus::Rejected => "🚫",
            QueueStatus::Missed => "⏰",
            _ => "⚠️",
        },
    }
}

/// One entry: when and who on the first line, what and why on the second.
pub fn history_entry(entry: &Entry, tz: Tz) -> String {
    let why = entry.why_words();
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" <i>({})</i>", escape_html(&why))
    };
    format!(
        "<b>{}</b> — {}\n{} {}{why}",
        zoned_day(entry.at, tz),
        escape_html(&entry.who_words()),
        icon(entry),
        escape_html(&entry.what_words()),
    )
}

/// A page of /history and its ◀ ▶ buttons (none where there is no page).
pub fn history_page(entries: &[Entry], position: PagePosition, tz: Tz) -> (String, Keyboard) {
    if position.total == 0 {
        let what = match position.narrow {
            Narrow::All => "No settings change or story",
            Narrow::Settings => "No settings change",
            Narrow::Posts => "No story outcome",
        };
        return (
            format!(
                "🕘 <b>{}</b>\n{what} is recorded yet.",
                title(position.narrow)
            ),
            Vec::new(),
        );
    }
    let mut text = format!(
        "🕘 <b>{}</b>, newest first\nPage {} of {} · {} · times in {}\n",
        title(position.narrow),
        position.page + 1,
        position.pages,
        plural(position.total, "entry", "entries"),
        escape_html(tz.name()),
    );
    for entry in entries {
        text.push('\n');
        text.push_str(&history_entry(entry, tz));
        text.push('\n');
    }
    let to = |page: u32| {
        callback::encode(Callback::HistoryPage {
            narrow: position.narrow,
            page,
            anchor: position.anchor,
        })
    };
    let mut row = Vec::new();
    if position.page > 0 {
        row.push(Button::callback("◀ Newer", to(position.page - 1)));
    }
    if position.page + 1 < position.pages {
        row.push(Button::callback("Older ▶", to(position.page + 1)));
    }
    let keyboard = if row.is_empty() {
        Vec::new()
    } else {
        vec![row]
    };
    (text.trim_end().to_string(), keyboard)
}

/// The toast of a page press.
pub fn history_page_toast(page: u32, pages: u32) -> String {
    format!("Page {} of {pages}", page + 1)
}

/// A press on a page that is not there (a forged button, or a list that
/// shrank): answered, nothing edited.
pub fn history_page_gone_alert() -> String {
    "This page of the history is not there. Send /history for a fresh list.".to_string()
}

pub fn history_usage_text() -> String {
    "Use /history for everything, /history settings for settings changes or /history posts \
     for what became of the stories."
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::history::parse_changes;
    use crate::domain::status::PostMethod;
    use expect_test::expect;

    fn entries() -> Vec<Entry> {
        let at = |t: &str| t.parse().unwrap();
        vec![
            Entry {
                chat_id: 1,
                at: at("2026-07-04T13:32:00Z"),
                user_id: Some(42),
                who: Some("@a<d>a".into()),
                what: What::Settings {
                    changes: parse_changes(
                        r#"[{"setting":"timezone","old":"UTC","new":"Europe/Berlin"},{"setting":"category_mix","old":"all","new":"q&a 2"}]"#,
                    ),
                    reason: Some("settings menu".into()),
                },
            },
            Entry {
                chat_id: 1,
                at: at("2026-01-04T12:00:00Z"),
                user_id: None,
                who: None,
                what: What::Post {
                    item: Some("quotes/<b>.jpg".into()),
                    outcome: QueueStatus::Posted,
                    method: Some(PostMethod::InstagramApi),
                    error: None,
                },
            },
        ]
    }

    fn position(page: u32, pages: u32) -> PagePosition {
        PagePosition {
            narrow: Narrow::All,
            page,
            pages,
            total: 17,
            anchor: Anchor {
                at: 1_767_225_600,
                settings_id: 31,
                post_id: 7,
            },
        }
    }

    fn buttons(keyboard: &Keyboard) -> Vec<(String, String)> {
        keyboard
            .iter()
            .flatten()
            .map(|b| (b.text.clone(), b.callback_data.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_page_in_the_chats_zone_escaped() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (text, keyboard) = history_page(&entries(), position(1, 3), tz);
        expect![[r#"
            🕘 <b>History</b>, newest first
            Page 2 of 3 · 17 entries · times in Europe/Berlin

            <b>Sat 04 Jul 15:32 CEST</b> — @a&lt;d&gt;a
            ⚙️ Time zone UTC → Europe/Berlin; Category mix all → q&amp;a 2 <i>(menu)</i>

            <b>Sun 04 Jan 13:00 CET</b> — Storyline
            ✅ quotes/&lt;b&gt;.jpg posted <i>(Instagram API)</i>"#]]
        .assert_eq(&text);
        assert_eq!(
            buttons(&keyboard),
            [
                (
                    "◀ Newer".to_string(),
                    "1:hist:a:0:1767225600:31:7".to_string()
                ),
                (
                    "Older ▶".to_string(),
                    "1:hist:a:2:1767225600:31:7".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_ends_have_one_button_and_one_page_none() {
        let tz = Tz::UTC;
        let (_, first) = history_page(&entries(), position(0, 3), tz);
        assert_eq!(buttons(&first).len(), 1);
        assert_eq!(buttons(&first)[0].0, "Older ▶");
        let (_, last) = history_page(&entries(), position(2, 3), tz);
        assert_eq!(buttons(&last)[0].0, "◀ Newer");
        let (_, only) = history_page(&entries(), position(0, 1), tz);
        assert!(only.is_empty());
    }

    #[test]
    fn nothing_recorded() {
        let empty = PagePosition {
            narrow: Narrow::Posts,
            total: 0,
            ..position(0, 1)
        };
        let (text, keyboard) = history_page(&[], empty, Tz::UTC);
        expect![[r#"
            🕘 <b>Posting history</b>
            No story outcome is recorded yet."#]]
        .assert_eq(&text);
        assert!(keyboard.is_empty());
    }

    #[test]
    fn a_full_page_of_the_longest_lines_fits_a_message() {
        let long = "x".repeat(500);
        let entry = Entry {
            chat_id: 1,
            at: "2026-01-04T12:00:00Z".parse().unwrap(),
            user_id: Some(1),
            who: Some(format!("@{}", "u".repeat(32))),
            what: What::Post {
                item: Some(long.clone()),
                outcome: QueueStatus::Failed,
                method: Some(PostMethod::Manual),
                error: Some(long),
            },
        };
        let page: Vec<Entry> = (0..crate::domain::history::PAGE_SIZE)
            .map(|_| entry.clone())
            .collect();
        let (text, _) = history_page(
            &page,
            position(0, 2),
            "America/Argentina/ComodRivadavia".parse().unwrap(),
        );
        assert!(text.chars().count() < 4096, "{}", text.chars().count());
    }
}
