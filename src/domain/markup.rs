//! Pure: the plain data the core's texts and keyboards are made of — inline
//! `Button`s and `Keyboard`s, Telegram-HTML escaping, counted nouns (`plural`),
//! why a chat is gone. `ui` and `wizard` build with these; `telegram` sends them
//! (and re-exports them). It depends on nothing, so the CLI, `ops` and the
//! modules below `ui` count with the same `plural`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Button {
    pub fn callback(text: impl Into<String>, data: impl Into<String>) -> Button {
        Button {
            text: text.into(),
            callback_data: Some(data.into()),
            url: None,
        }
    }

    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Button {
        Button {
            text: text.into(),
            callback_data: None,
            url: Some(url.into()),
        }
    }
}

/// An inline keyboard: rows of buttons.
pub type Keyboard = Vec<Vec<Button>>;

/// A keyboard as one line per row of `[text | data]`, for the snapshot tests
/// of the texts and keyboards (`ui`, `wizard`).
#[cfg(test)]
pub fn render(keyboard: &Keyboard) -> String {
    keyboard
        .iter()
        .map(|row| {
            row.iter()
                .map(|b| {
                    format!(
                        "[{} | {}]",
                        b.text,
                        b.callback_data.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Escapes text for Telegram's HTML parse mode.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A count and its noun, agreeing: "1 item", "3 items", "0 items". `one` and
/// `many` may carry more words that agree too ("story was" / "stories were").
/// Any number type: the count is shown as it prints, and only "1" is singular.
pub fn plural(count: impl std::fmt::Display, one: &str, many: &str) -> String {
    let count = count.to_string();
    let noun = if count == "1" { one } else { many };
    format!("{count} {noun}")
}

/// Why a chat no longer gets the bot's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatGone {
    /// A user blocked the bot (or never started it).
    Blocked,
    /// The bot was removed from the group.
    Kicked,
    /// The chat was deleted, or its id is unknown.
    NotFound,
    /// The user deleted their account.
    Deactivated,
}

impl ChatGone {
    /// The name stored in `chats.inactive_reason`.
    pub fn name(self) -> &'static str {
        match self {
            ChatGone::Blocked => "blocked",
            ChatGone::Kicked => "kicked",
            ChatGone::NotFound => "not_found",
            ChatGone::Deactivated => "deactivated",
        }
    }

    pub fn from_name(name: &str) -> Option<ChatGone> {
        [
            ChatGone::Blocked,
            ChatGone::Kicked,
            ChatGone::NotFound,
            ChatGone::Deactivated,
        ]
        .into_iter()
        .find(|gone| gone.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_agrees_with_its_count() {
        let cases: [(String, &str); 7] = [
            (plural(1usize, "item", "items"), "1 item"),
            (plural(0u32, "item", "items"), "0 items"),
            (plural(2i64, "file", "files"), "2 files"),
            (plural(11u64, "day", "days"), "11 days"),
            (plural(-1i64, "day", "days"), "-1 days"),
            (plural(1.5f64, "day", "days"), "1.5 days"),
            (plural(1, "story was", "stories were"), "1 story was"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
