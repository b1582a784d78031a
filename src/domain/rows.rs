//! Pure: the plain rows the core's texts are made of — an Instagram account as
//! stored (`db::accounts` reads it), its token's health and what a chat sees of
//! its account (`accounts` works them out). `ui` and `wizard` take these, no IO types.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub display_name: String,
    pub instagram_user_id: String,
    /// Without the @.
    pub username: Option<String>,
    pub is_active: bool,
}

/// A token's state without the token, for what is shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHealth {
    DaysLeft(i64),
    Expired,
    ReconnectNeeded,
}

/// What a chat sees of its account in /settings, /status and /accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAccount {
    Account {
        account: Account,
        token: TokenHealth,
    },
    NeedsChoice,
    None,
}

/// "58 days", "expired", "reconnect needed".
pub fn token_health_words(health: TokenHealth) -> String {
    match health {
        TokenHealth::DaysLeft(days) => crate::domain::markup::plural(days, "day", "days"),
        TokenHealth::Expired => "expired".to_string(),
        TokenHealth::ReconnectNeeded => "reconnect needed".to_string(),
    }
}
