//! Pure: the plain data the core's texts and keyboards are made of — inline
//! `Button`s and `Keyboard`s, Telegram-HTML escaping, why a chat is gone.
//! `ui` and `wizard` build with these; `telegram` sends them (and re-exports them).

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
