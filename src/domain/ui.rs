//! What the bot says: message texts and inline keyboards. Pure functions of the
//! data they show; every dynamic string is HTML-escaped here.

pub mod history;
pub mod insights;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::zone::Tz;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::callback::{self, Ask, Callback, StoryAction};
use crate::domain::html_fit::{self, Piece};
use crate::domain::markup::{escape_html, plural, Button, ChatGone, Keyboard};
use crate::domain::rows::{token_health_words, Account, ChatAccount, TokenHealth};
use crate::domain::settings::{format_window, ChatSettings, Toggle};
use crate::domain::summary::{days_of_stories, CategoryDay, Summary, TOKEN_WARNING_DAYS};

/// The texts of settings export and import.
pub mod settings_file;
pub mod tune;

/// The commands registered with setMyCommands and listed by /help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("settings", "Show and change this chat's settings"),
    ("next", "Send the next story now"),
    ("queue", "The next slots and their stories"),
    ("schedule", "The plan for the next days (/schedule 7)"),
    ("scan", "Look for new, changed and removed media"),
    ("connect", "Connect an Instagram account"),
    ("status", "Mode, pause state and schedule at a glance"),
    ("accounts", "Instagram accounts and their tokens"),
    (
        "history",
        "Settings changes and story outcomes (/history posts)",
    ),
    ("insights", "Story results per category (/insights 30)"),
    ("pause", "Pause posting in this chat"),
    ("resume", "Resume posting in this chat"),
    ("dryrun", "Turn dry run on or off (/dryrun on|off)"),
    ("cancel", "Abandon a value the bot asked for"),
    ("help", "What Storyline does and its commands"),
    ("init", "Set up this chat step by step"),
    ("start", "Welcome, and set up a chat (admins)"),
];

pub fn help_text() -> String {
    let mut text = String::from(
        "📖 <b>Storyline</b> spreads the photos and videos in its media folder over each day \
         as Instagram Stories: at each slot it sends the story here for someone to post, \
         or publishes it itself through the Instagram API.\n\n<b>Commands</b>\n",
    );
    for (command, description) in COMMANDS {
        text.push_str(&format!("/{command} — {}\n", escape_html(description)));
    }
    text
}

pub fn welcome_text(chat_just_enabled: bool) -> String {
    let first = if chat_just_enabled {
        "✅ <b>Storyline is now set up for this chat.</b>\n\n"
    } else {
        "👋 <b>Welcome to Storyline.</b>\n\n"
    };
    format!(
        "{first}Send /init to be walked through the set-up, or open /settings to choose dry run, \
         posts per day and posting hours. /help lists every command."
    )
}

/// The reply to `/start CODE` with the pairing code `storyline run` printed.
pub fn paired_text() -> String {
    format!(
        "🔑 <b>Paired: you are now an admin of this Storyline.</b> The code is used up; \
         your /start sets up other chats too.\n\n{}",
        welcome_text(true)
    )
}

pub fn refusal_text(chat_id: i64) -> String {
    format!(
        "Sorry, this bot is not set up for this chat.\n\n\
         If you run this Storyline, add this chat's id <code>{chat_id}</code> to \
         <code>allowed_chat_ids</code> in storyline.toml, or have an admin send /start here \
         (or /init, to be walked through the set-up)."
    )
}

fn on_off(value: bool) -> &'static str {
    if value {
        "ON"
    } else {
        "off"
    }
}

fn window_label(settings: &ChatSettings) -> String {
    format!(
        "{} {}",
        format_window(settings.posting_hours_start, settings.posting_hours_end),
        settings.timezone.name()
    )
}

/// Who may press Posted / Skip / Reject under a story.
fn story_buttons_words(admins_only: bool) -> &'static str {
    if admins_only {
        "admins only"
    } else {
        "everyone"
    }
}

fn pause_line(settings: &ChatSettings, paused_by: Option<&str>) -> String {
    if !settings.is_paused {
        return "▶️ Active".to_string();
    }
    let mut line = "⏸️ Paused".to_string();
    if let Some(name) = paused_by {
        line.push_str(&format!(" by {}", escape_html(name)));
    }
    if let Some(at) = settings.paused_at {
        line.push_str(&format!(" since {}", zoned_day(at, settings.timezone)));
    }
    line
}

/// The /settings message: a summary and the keyboard that changes it.
pub fn settings_menu(
    settings: &ChatSettings,
    paused_by: Option<&str>,
    mix: &str,
    account: &ChatAccount,
) -> (String, Keyboard) {
    let text = format!(
        "⚙️ <b>Settings</b>\n\n\
         Dry run: <b>{}</b>{}\n\
         Instagram API: <b>{}</b>\n\
         Instagram account: {}\n\
         Posting: <b>{}</b>\n\
         Story buttons: <b>{}</b>\n\
         Posts per day: <b>{}</b>\n\
         Hours: <b>{}</b>\n\
         Categories: <b>{}</b>\n\
         Daily summary: <b>{}</b>\n\n\
         Tap a button to change a setting.",
        on_off(settings.dry_run_mode),
        if settings.dry_run_mode {
            " (nothing is published)"
        } else {
            ""
        },
        on_off(settings.enable_instagram_api),
        account_menu_line(account),
        pause_line(settings, paused_by),
        story_buttons_words(settings.story_buttons_admins_only),
        settings.posts_per_day,
        escape_html(&window_label(settings)),
        escape_html(mix),
        summary_hour_words(settings.daily_summary_hour),
    );
    let toggle = |t: Toggle, current: bool| {
        let label = format!("{} {}", if current { "✅" } else { "⬜" }, t.label());
        Button::callback(
            label,
            callback::encode(Callback::Set {
                toggle: t,
                value: !current,
            }),
        )
    };
    let pause = Button::callback(
        if settings.is_paused {
            "⏸️ Paused (tap to resume)"
        } else {
            "▶️ Active (tap to pause)"
        },
        callback::encode(Callback::Set {
            toggle: Toggle::Paused,
            value: !settings.is_paused,
        }),
    );
    let admins_only = settings.story_buttons_admins_only;
    let story_buttons = Button::callback(
        format!(
            "{} Story buttons: {}",
            if admins_only { "🔒" } else { "👥" },
            story_buttons_words(admins_only)
        ),
        callback::encode(Callback::Set {
            toggle: Toggle::StoryButtonsAdminsOnly,
            value: !admins_only,
        }),
    );
    let keyboard = vec![
        vec![toggle(Toggle::DryRun, settings.dry_run_mode)],
        vec![toggle(Toggle::InstagramApi, settings.enable_instagram_api)],
        vec![toggle(Toggle::AutoPost, settings.auto_post)],
        vec![story_buttons],
        vec![pause],
        vec![Button::callback(
            account_button_label(account),
            callback::encode(Callback::AccountMenu),
        )],
        vec![Button::callback(
            format!("Posts/Day: {}", settings.posts_per_day),
            callback::encode(Callback::Ask(Ask::PostsPerDay)),
        )],
        vec![Button::callback(
            format!("Hours: {}", window_label(settings)),
            callback::encode(Callback::Ask(Ask::Hours)),
        )],
        vec![Button::callback(
            format!("🌍 Time zone: {}", settings.timezone.name()),
            callback::encode(Callback::Ask(Ask::Timezone)),
        )],
        vec![Button::callback(
            format!("🗂 Categories: {mix}"),
            callback::encode(Callback::Ask(Ask::Categories)),
        )],
        vec![Button::callback(
            format!(
                "🔒 Locks: posted {}d · skipped {}d",
                settings.posted_lock_days, settings.skipped_lock_days
            ),
            callback::encode(Callback::Ask(Ask::Locks)),
        )],
        vec![Button::callback(
            format!(
                "🗞 Daily summary: {}",
                summary_hour_words(settings.daily_summary_hour)
            ),
            callback::encode(Callback::Ask(Ask::Summary)),
        )],
        vec![Button::callback(
            format!(
                "📈 Auto-tune mix: {}",
                match settings.auto_tune {
                    Some(tune) => tune.metric.name(),
                    None => "off",
                }
            ),
            callback::encode(Callback::Ask(Ask::Tune)),
        )],
        vec![
            Button::callback("📋 Queue", callback::encode(Callback::ShowQueue)),
            Button::callback("📅 Schedule", callback::encode(Callback::ShowSchedule)),
        ],
        vec![
            Button::callback("🔄 Refresh", callback::encode(Callback::Refresh)),
            Button::callback("✖️ Close", callback::encode(Callback::Close)),
        ],
    ];
    (text, keyboard)
}

/// "@brand", or the account's name when it has no username.
fn account_handle(account: &Account) -> String {
    match &account.username {
        Some(username) => format!("@{username}"),
        None => account.display_name.clone(),
    }
}

/// "58 days left", "token expired", "reconnect needed".
fn token_note(token: TokenHealth) -> String {
    match token {
        TokenHealth::DaysLeft(_) => format!("{} left", token_health_words(token)),
        TokenHealth::Expired => "token expired, reconnect needed".to_string(),
        TokenHealth::ReconnectNeeded => token_health_words(token),
    }
}

const ADD_ACCOUNT_HINT: &str =
    "<code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code>";

/// A chat with no account of its own, nor one shared with it.
fn no_account_text() -> String {
    format!(
        "This chat has no Instagram account yet. Connect one with /connect.\n\n\
         On the Pi, {ADD_ACCOUNT_HINT} adds one, and \
         <code>storyline accounts share ID --chat CHAT</code> lets this chat use one that \
         another chat connected."
    )
}

fn account_menu_line(account: &ChatAccount) -> String {
    match account {
        ChatAccount::Account { account, token } => format!(
            "<b>{}</b> ({})",
            escape_html(&account_handle(account)),
            token_note(*token)
        ),
        ChatAccount::NeedsChoice => "<b>choose one</b> (tap 📸 Account)".to_string(),
        ChatAccount::None => {
            "<b>none</b> — add one with <code>storyline accounts add</code>".to_string()
        }
    }
}

fn account_button_label(account: &ChatAccount) -> String {
    match account {
        ChatAccount::Account { account, .. } => format!("📸 Account: {}", account_handle(account)),
        ChatAccount::NeedsChoice => "📸 Account: choose…".to_string(),
        ChatAccount::None => "📸 Account: none".to_string(),
    }
}

/// "Main Brand (@brand_main)"
fn account_title(account: &Account) -> String {
    match &account.username {
        Some(username) => format!("{} (@{username})", account.display_name),
        None => account.display_name.clone(),
    }
}

/// The account selector of the /settings menu (seed 001): one button per
/// active account, ✅ on the one the chat uses, and Back.
pub fn account_selector(accounts: &[Account], current: Option<i64>) -> (String, Keyboard) {
    let mut text = String::from("📸 <b>Instagram account</b>\n\n");
    if accounts.is_empty() {
        text.push_str(&no_account_text());
    } else {
        text.push_str(&format!(
            "Choose the account this chat posts to.\n\n\
             To add another, run {ADD_ACCOUNT_HINT} on the Pi."
        ));
    }
    let mut keyboard: Keyboard = accounts
        .iter()
        .map(|account| {
            let mark = if current == Some(account.id) {
                "✅ "
            } else {
                ""
            };
            vec![Button::callback(
                format!("{mark}{}", account_title(account)),
                callback::encode(Callback::Account(account.id)),
            )]
        })
        .collect();
    keyboard.push(vec![
        Button::callback("➕ Add account", callback::encode(Callback::AddAccount)),
        Button::callback("← Back", callback::encode(Callback::BackToSettings)),
    ]);
    (text, keyboard)
}

pub fn account_chosen_toast(account: &Account, changed: bool) -> String {
    let text = format!("Instagram account: {}", account_handle(account));
    if changed {
        text
    } else {
        format!("{text} already")
    }
}

pub fn account_unavailable_text() -> String {
    "That account is not available any more. Pick another one.".to_string()
}

/// /accounts: the accounts this chat may use and their tokens, and which one it uses.
pub fn accounts_text(statuses: &[(Account, TokenHealth)], chat: &ChatAccount) -> String {
    if statuses.is_empty() {
        return format!("📸 {}", no_account_text());
    }
    let current = match chat {
        ChatAccount::Account { account, .. } => Some(account.id),
        _ => None,
    };
    let mut text = String::from("📸 <b>Instagram accounts</b>\n");
    for (account, token) in statuses {
        text.push_str(&format!(
            "\n{} {} — {}",
            if current == Some(account.id) {
                "✅"
            } else {
                "•"
            },
            escape_html(&account_title(account)),
            token_note(*token)
        ));
    }
    text.push_str(&match chat {
        ChatAccount::Account { account, .. } => format!(
            "\n\nThis chat posts to {}. Change it in /settings.",
            escape_html(&account_handle(account))
        ),
        _ => "\n\nThis chat has not chosen an account yet: /settings → 📸 Account.".to_string(),
    });
    text
}

fn account_status_line(account: &ChatAccount) -> String {
    match account {
        ChatAccount::Account { account, token } => format!(
            "{} ({})",
            escape_html(&account_handle(account)),
            token_note(*token)
        ),
        ChatAccount::NeedsChoice => "not chosen yet (/settings)".to_string(),
        ChatAccount::None => "none".to_string(),
    }
}

pub fn settings_closed_text() -> String {
    "⚙️ Settings closed. Send /settings to open them again.".to_string()
}

pub fn cancel_keyboard() -> Keyboard {
    vec![vec![Button::callback(
        "✖️ Cancel",
        callback::encode(Callback::Cancel),
    )]]
}

pub fn posts_per_day_prompt(current: u32) -> String {
    format!(
        "🔢 How many stories a day? Reply with a number from {} to {} (now {current}), \
         or /cancel.",
        crate::domain::settings::POSTS_PER_DAY_MIN,
        crate::domain::settings::POSTS_PER_DAY_MAX
    )
}

pub fn hours_prompt(settings: &ChatSettings) -> String {
    format!(
        "🕑 Posting hours, in {} (now {}). Reply with start and end hour from 0 to 23, \
         like <code>14-2</code> (the window may wrap past midnight), or just the start hour. \
         /cancel to keep them.",
        escape_html(settings.timezone.name()),
        format_window(settings.posting_hours_start, settings.posting_hours_end)
    )
}

pub fn timezone_prompt(current: Tz) -> String {
    format!(
        "🌍 Time zone for the posting hours (now {}). Reply with an IANA name such as \
         <code>Europe/Berlin</code> or <code>America/New_York</code>, or /cancel.",
        escape_html(current.name())
    )
}

pub fn timezone_set_text(tz: Tz) -> String {
    format!("✅ Time zone set to <b>{}</b>.", escape_html(tz.name()))
}

pub fn categories_prompt(mix: &str, categories: &[(String, i64)]) -> String {
    let mut text = format!(
        "🗂 Category mix (now {}). Reply with weights like <code>quotes=50 products=50</code> \
         (a category left out is not posted), or <code>reset</code> for every category alike, or /cancel.\n\nCategories:",
        escape_html(mix)
    );
    if categories.is_empty() {
        text.push_str(" none yet; add folders to the media folder and /scan.");
    }
    for (name, count) in categories {
        text.push_str(&format!(
            "\n• {} ({})",
            escape_html(name),
            plural(count, "item", "items")
        ));
    }
    text
}

pub fn categories_set_text(mix: &str) -> String {
    format!("✅ Category mix set: <b>{}</b>.", escape_html(mix))
}

pub fn locks_prompt(posted: u32, skipped: u32) -> String {
    format!(
        "🔒 How many days an item stays out after ✅ Posted and after ⏭ Skip (now {posted} and {skipped}). \
         Reply with two numbers like <code>30 45</code>, or /cancel. 🚫 Reject keeps an item out for good."
    )
}

pub fn locks_set_text(posted: u32, skipped: u32) -> String {
    format!("✅ Posted items rest <b>{posted}</b> days, skipped ones <b>{skipped}</b> days.")
}

/// "09:00", or "off".
pub fn summary_hour_words(hour: Option<u32>) -> String {
    match hour {
        Some(hour) => format!("{hour:02}:00"),
        None => "off".to_string(),
    }
}

pub fn summary_hour_prompt(current: Option<u32>, tz: Tz) -> String {
    format!(
        "🗞 Each day at this hour ({}) the chat gets a summary of the day before and what is ahead          (now {}). Reply with an hour from 0 to 23, or <code>off</code>, or /cancel.",
        escape_html(tz.name()),
        summary_hour_words(current)
    )
}

pub fn summary_hour_set_text(hour: Option<u32>, tz: Tz) -> String {
    match hour {
        Some(hour) => format!(
            "✅ The daily summary comes at <b>{hour:02}:00</b> ({}).",
            escape_html(tz.name())
        ),
        None => "✅ The daily summary is <b>off</b>.".to_string(),
    }
}

pub fn hours_end_prompt(start: u32) -> String {
    format!("🕑 Start hour {start:02}:00. Now the end hour, from 0 to 23, or /cancel.")
}

pub fn invalid_value_text(error: &str, sent: &str) -> String {
    let sent: String = sent.chars().take(40).collect();
    format!(
        "⚠️ {} You sent “{}”. Nothing was changed; try again or /cancel.",
        escape_html(error),
        escape_html(&sent)
    )
}

pub fn posts_per_day_set_text(value: u32) -> String {
    format!("✅ Posts per day set to <b>{value}</b>.")
}

pub fn hours_set_text(settings: &ChatSettings) -> String {
    format!(
        "✅ Posting hours set to <b>{}</b>.",
        escape_html(&window_label(settings))
    )
}

pub fn cancelled_text() -> String {
    "Cancelled. Nothing was changed.".to_string()
}

pub fn nothing_to_cancel_text() -> String {
    "There is nothing to cancel.".to_string()
}

/// Toast shown after a toggle press.
pub fn toggle_answer(toggle: Toggle, value: bool, changed: bool) -> String {
    let state = match (toggle, value) {
        (Toggle::Paused, true) => "Posting paused".to_string(),
        (Toggle::Paused, false) => "Posting resumed".to_string(),
        (Toggle::StoryButtonsAdminsOnly, v) => {
            format!("Story buttons: {}", story_buttons_words(v))
        }
        (t, v) => format!("{} {}", t.label(), if v { "ON" } else { "off" }),
    };
    if changed {
        state
    } else {
        format!("{state} already")
    }
}

pub fn dry_run_text(value: bool, changed: bool) -> String {
    let what = if value {
        "🧪 Dry run is <b>ON</b>: stories are prepared and shown here, nothing is published."
    } else {
        "🚀 Dry run is <b>off</b>: stories are published for real."
    };
    if changed {
        what.to_string()
    } else {
        format!("{what} (It already was.)")
    }
}

pub fn paused_text(by: &str, already: bool) -> String {
    if already {
        "⏸️ Posting was already paused. /resume to continue.".to_string()
    } else {
        format!(
            "⏸️ Posting paused by {}. /resume to continue.",
            escape_html(by)
        )
    }
}

pub fn resumed_text(by: &str, already: bool) -> String {
    if already {
        "▶️ Posting is not paused.".to_string()
    } else {
        format!("▶️ Posting resumed by {}.", escape_html(by))
    }
}

pub fn unknown_command_text(command: &str) -> String {
    format!(
        "I don't know /{}. /help lists what I can do.",
        escape_html(command)
    )
}

pub fn dryrun_usage_text() -> String {
    "Use /dryrun on, /dryrun off, or just /dryrun to switch.".to_string()
}

pub fn format_uptime(uptime: Duration) -> String {
    let secs = uptime.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {}s", secs % 60)
    }
}

/// What happens to a story at its slot, as `publish::route` decides it now; /status
/// says it in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostingMode {
    /// Storyline publishes it through the Instagram API (dry run: without a call).
    Published,
    /// Sent here with buttons for a person to post; `auto_post_button` when 🤖 Auto
    /// post on the story can publish it through the Instagram API.
    ByHand { auto_post_button: bool },
    /// Auto post is on but cannot publish now (the reason): sent here for a person.
    ByHandBecause(String),
}

/// The /status mode line: what will really happen at the next slot.
fn mode_line(dry_run: bool, mode: &PostingMode, account: &ChatAccount) -> String {
    let by_hand = if dry_run {
        "🧪 Dry run: stories come here at their slots to try the buttons; nothing is published"
    } else {
        "✋ Stories come here at their slots for someone to post by hand"
    };
    match mode {
        PostingMode::Published => {
            let handle = match account {
                ChatAccount::Account { account, .. } => escape_html(&account_handle(account)),
                _ => "the chat's account".to_string(),
            };
            if dry_run {
                format!(
                    "🧪 Dry run: Auto post goes through publishing as {handle} at each slot \
                     without calling Instagram; nothing is published"
                )
            } else {
                format!(
                    "🚀 Auto post: each story is published to Instagram as {handle} at its slot"
                )
            }
        }
        PostingMode::ByHand {
            auto_post_button: true,
        } => format!("{by_hand} (🤖 Auto post on a story publishes it)"),
        PostingMode::ByHand {
            auto_post_button: false,
        } => by_hand.to_string(),
        PostingMode::ByHandBecause(reason) => format!(
            "{by_hand}. Auto post is on but cannot publish: {}",
            escape_html(reason)
        ),
    }
}

pub fn status_text(
    settings: &ChatSettings,
    mode: &PostingMode,
    paused_by: Option<&str>,
    account: &ChatAccount,
    uptime: Duration,
) -> String {
    let mode = mode_line(settings.dry_run_mode, mode, account);
    format!(
        "📊 <b>Status</b>\n\n\
         Mode: {mode}\n\
         Posting: {}\n\
         Posts per day: {}\n\
         Hours: {}\n\
         Instagram API: {}\n\
         Instagram account: {}\n\
         Uptime: {}",
        pause_line(settings, paused_by),
        settings.posts_per_day,
        escape_html(&window_label(settings)),
        on_off(settings.enable_instagram_api),
        account_status_line(account),
        format_uptime(uptime),
    )
}

/// What the /status health block shows (gathered by `bot::health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFacts {
    /// Seconds since the last successful getUpdates; None before the first.
    pub last_poll_secs_ago: Option<i64>,
    pub database_bytes: i64,
    pub last_backup: Option<DateTime<Utc>>,
    pub media_items: i64,
    pub last_scan: Option<DateTime<Utc>>,
    /// The chat's account's token; None without an account.
    pub token: Option<TokenHealth>,
    /// The newest failed background run this chat may hear of: what, when, why.
    pub last_error: Option<(String, DateTime<Utc>, String)>,
}

/// How long a run's error may be in /status.
const HEALTH_ERROR_CHARS: usize = 200;

/// The /status health block: Telegram, database, media, token, last error; times
/// in the chat's zone.
pub fn health_block(facts: &HealthFacts, tz: Tz) -> String {
    let poll = match facts.last_poll_secs_ago {
        Some(secs) => format!("last poll {} ago", plural(secs.max(0), "second", "seconds")),
        None => "not polled yet".to_string(),
    };
    let backup = match facts.last_backup {
        Some(at) => format!("last backup {}", zoned_day(at, tz)),
        None => "never backed up (storyline backup)".to_string(),
    };
    let scan = match facts.last_scan {
        Some(at) => format!("last scan {}", zoned_day(at, tz)),
        None => "not scanned yet".to_string(),
    };
    let token = match facts.token {
        Some(TokenHealth::DaysLeft(days)) => format!("{} left", plural(days, "day", "days")),
        Some(other) => token_health_words(other),
        None => "no account".to_string(),
    };
    let error = match &facts.last_error {
        Some((what, at, why)) => {
            let mut why = why.clone();
            if let Some((cut, _)) = why.char_indices().nth(HEALTH_ERROR_CHARS) {
                why.truncate(cut);
                why.push('…');
            }
            format!(
                "{} at {}: {}",
                escape_html(what),
                zoned_day(*at, tz),
                escape_html(&why)
            )
        }
        None => "none".to_string(),
    };
    format!(
        "\n\n🩺 <b>Health</b>\n\
         Telegram: {poll}\n\
         Database: {}, {backup}\n\
         Media: {}, {scan}\n\
         Instagram token: {token}\n\
         Last error: {error}",
        human_size(facts.database_bytes),
        plural(facts.media_items.max(0), "item", "items"),
    )
}

/// "1.2 MB", "512 bytes".
fn human_size(bytes: i64) -> String {
    match bytes.max(0) {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / f64::from(1 << 10)),
        b => plural(b, "byte", "bytes"),
    }
}

/// Told once, when `storyline chats disable` switches the chat off.
pub fn chat_disabled_text() -> String {
    "⏸ This chat was switched off by the operator. Its settings, queue and history are \
     kept; Storyline sends nothing here until it is switched on again."
        .to_string()
}

/// Told once, when `storyline chats enable` switches the chat on again.
pub fn chat_enabled_text() -> String {
    "▶️ This chat was switched on again by the operator: stories and commands work as before."
        .to_string()
}

/// The answer to a command in a chat switched off (at most one an hour).
pub fn chat_disabled_notice_text() -> String {
    "⏸ This chat is switched off by the operator; Storyline does not answer here until \
     it is switched on again."
        .to_string()
}

/// The alert on a button pressed in a chat switched off.
pub fn chat_disabled_alert() -> String {
    "This chat is switched off by the operator.".to_string()
}

/// "14:32": for lists whose heading names the zone (/queue, /schedule).
fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M").to_string()
}

fn local_day(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%a %d %b %H:%M").to_string()
}

/// "14:32 CET": a time on its own is in the chat's zone and names it, by the
/// abbreviation the zone uses at that instant (CET/CEST, EST/EDT; "+04" where
/// the zone has none), so a time read in summer says it is summer time. The
/// abbreviations are letters, digits and signs: nothing to escape.
fn zoned_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M %Z").to_string()
}

/// "Sun 22 Nov 14:32 CET"
fn zoned_day(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

/// What gives way first when a story's caption would pass Telegram's limit:
/// error texts and warnings, then the file name, then the category. The slot,
/// the labels and the newest line (an outcome) stay whole.
const SHRINK_DETAIL: u8 = 0;
const SHRINK_FILE_NAME: u8 = 1;
const SHRINK_CATEGORY: u8 = 2;

/// The caption of a story: category, file, slot time and the dry-run mark, then
/// `lines` (a note, an outcome) after a blank line; within Telegram's caption
/// limit, shortened with "…" as `SHRINK_*` says.
pub fn story_caption(
    category: &str,
    path: &str,
    slot: DateTime<Utc>,
    tz: Tz,
    dry_run: bool,
    lines: &[Piece],
) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut pieces = vec![
        Piece::fixed("📸 <b>"),
        Piece::shrinkable(escape_html(category), SHRINK_CATEGORY, 12),
        Piece::fixed("</b> · "),
        Piece::shrinkable(escape_html(name), SHRINK_FILE_NAME, 24),
        Piece::fixed(format!("\n🕑 Slot {}", zoned_day(slot, tz))),
    ];
    if dry_run {
        pieces.push(Piece::fixed("\n🧪 [dry run]"));
    }
    if !lines.is_empty() {
        pieces.push(Piece::fixed("\n\n"));
        pieces.extend_from_slice(lines);
    }
    html_fit::fit_pieces(&pieces, html_fit::MAX_CAPTION_UNITS)
}

/// A line of a story caption that never gives way (an outcome, a label).
pub fn caption_line(html: impl Into<String>) -> Vec<Piece> {
    vec![Piece::fixed(html)]
}

/// A warning under a published story's line; its text may be shortened.
pub fn warning_line(warning: &str) -> Vec<Piece> {
    vec![
        Piece::fixed("\n⚠️ "),
        Piece::shrinkable(escape_html(warning), SHRINK_DETAIL, 20),
    ]
}

pub const INSTAGRAM_URL: &str = "https://www.instagram.com/";

pub fn story_keyboard(queue_id: i64) -> Keyboard {
    story_buttons(queue_id, false)
}

/// The story buttons; `offer_auto_post` adds "🤖 Auto post" when the chat can
/// publish through the Instagram API.
pub fn story_buttons(queue_id: i64, offer_auto_post: bool) -> Keyboard {
    let button = |text: &str, action| {
        Button::callback(text, callback::encode(Callback::Story { action, queue_id }))
    };
    let mut last = Vec::new();
    if offer_auto_post {
        last.push(button("🤖 Auto post", StoryAction::AutoPost));
    }
    last.push(Button::link("📲 Open Instagram", INSTAGRAM_URL));
    vec![
        vec![
            button("✅ Posted", StoryAction::Posted),
            button("⏭ Skip", StoryAction::Skip),
            button("🚫 Reject", StoryAction::Reject),
        ],
        last,
    ]
}

/// "✅ Published to Instagram as @brand at 14:32"
pub fn published_line(username: &str, at: DateTime<Utc>, tz: Tz, dry_run: bool) -> String {
    if dry_run {
        format!(
            "🧪 <b>Dry run: would have been published to Instagram as @{} at {}</b> (no Instagram call was made)",
            escape_html(username),
            zoned_time(at, tz)
        )
    } else {
        format!(
            "✅ <b>Published to Instagram as @{} at {}</b>",
            escape_html(username),
            zoned_time(at, tz)
        )
    }
}

pub fn connect_text(minutes: i64) -> String {
    format!(
        "🔗 Tap the button to connect an Instagram professional account (the link works once, for \
         {}). If the page after Instagram's login does not open, copy the whole \
         address from the browser and paste it here.",
        plural(minutes, "minute", "minutes")
    )
}

pub fn refresh_failed_text(username: &str, error: &str, days_left: i64) -> String {
    format!(
        "⚠️ The Instagram access token of @{} could not be renewed: {}. It expires in {}; \
         reconnect the account before then, or stories will come here to post by hand.",
        escape_html(username),
        escape_html(error),
        plural(days_left, "day", "days")
    )
}

/// Told once to each chat of an account whose token cannot read insights.
pub fn insights_permission_text(username: &str) -> String {
    format!(
        "📊 Storyline cannot read the insights of @{}'s stories: the account was connected \
         without the permission “instagram_business_manage_insights”. To see /insights, send \
         /connect, log in again and allow access to insights. Publishing goes on as before.",
        escape_html(username)
    )
}

/// Why a story that was meant to be published came to the chat instead, for its
/// caption: the reason (Instagram's error text, say) may be shortened.
pub fn not_published_note(reason: &str) -> Vec<Piece> {
    vec![
        Piece::fixed("⚠️ Not published automatically: "),
        Piece::shrinkable(escape_html(reason), SHRINK_DETAIL, 40),
    ]
}

pub fn unknown_outcome_text(path: &str, username: &str) -> String {
    format!(
        "⚠️ I could not tell whether {} was published to Instagram as @{}: the answer to the \
         publish request never came. Please check Instagram, then tell me.",
        escape_html(path),
        escape_html(username)
    )
}

pub fn unknown_outcome_keyboard(queue_id: i64) -> Keyboard {
    let button = |text: &str, action| {
        Button::callback(text, callback::encode(Callback::Story { action, queue_id }))
    };
    vec![vec![
        button("✅ It is on Instagram", StoryAction::WasPublished),
        button("🔁 Publish again", StoryAction::PublishAgain),
    ]]
}

pub fn reject_confirm_keyboard(queue_id: i64) -> Keyboard {
    let button = |text: &str, action| {
        Button::callback(text, callback::encode(Callback::Story { action, queue_id }))
    };
    vec![vec![
        button("🚫 Yes, never post it", StoryAction::RejectConfirmed),
        button("↩️ Keep it", StoryAction::RejectCancelled),
    ]]
}

fn outcome_word(status: &str) -> &'static str {
    match status {
        "posted" => "Posted",
        "skipped" => "Skipped",
        "rejected" => "Rejected",
        _ => "Decided",
    }
}

/// "✅ Posted by @ada at 14:32", appended to a decided story's caption.
pub fn outcome_line(status: &str, by: &str, at: DateTime<Utc>, tz: Tz) -> String {
    let icon = match status {
        "posted" => "✅",
        "skipped" => "⏭",
        _ => "🚫",
    };
    format!(
        "{icon} <b>{} by {} at {}</b>",
        outcome_word(status),
        escape_html(by),
        zoned_time(at, tz)
    )
}

pub fn decision_toast(status: &str) -> String {
    match status {
        "posted" => "Marked as posted".to_string(),
        "skipped" => "Skipped".to_string(),
        _ => "Rejected for good".to_string(),
    }
}

/// The alert for a press on a story that was already decided.
pub fn already_decided_text(status: &str, by: &str, at: DateTime<Utc>, tz: Tz) -> String {
    format!(
        "Already {} by {by} at {}.",
        outcome_word(status).to_lowercase(),
        zoned_time(at, tz)
    )
}

pub fn missed_text(count: usize, next: Option<DateTime<Utc>>, tz: Tz) -> String {
    let mut text = format!(
        "⏰ {} missed while Storyline was not running; {} not sent now.",
        plural(count, "scheduled story was", "scheduled stories were"),
        if count == 1 { "it is" } else { "they are" }
    );
    if let Some(next) = next {
        text.push_str(&format!(" Posting resumes at {}.", zoned_day(next, tz)));
    }
    text
}

pub fn running_dry_text(eligible: usize, posts_per_day: u32) -> String {
    let days = eligible as f64 / f64::from(posts_per_day.max(1));
    format!(
        "📉 Only {} left to post: about {days:.1} days at {posts_per_day} a day. \
         Add photos or videos to the media folder (then /scan).",
        plural(eligible, "item", "items")
    )
}

pub fn nothing_to_post_text() -> String {
    "📭 Nothing to post: every item is resting after a recent post or skip, or the media folder is empty. \
     Add photos or videos to the media folder, then /scan."
        .to_string()
}

/// Instead of `nothing_to_post_text` when the media folder itself is missing
/// (`dir` as configured).
pub fn media_folder_missing_text(dir: &str) -> String {
    format!(
        "📭 Nothing to post: the media folder <code>{}</code> is missing. Create it (or set \
         <code>[media] dir</code> in storyline.toml), add photos or videos, then /scan.",
        escape_html(dir)
    )
}

/// A line under /status while the media folder is missing.
pub fn media_folder_missing_line(dir: &str) -> String {
    format!(
        "\n⚠️ The media folder <code>{}</code> is missing: nothing is posted until it is back.",
        escape_html(dir)
    )
}

/// The chat's chosen categories have nothing left, though others do.
pub fn mix_ran_dry_text<'a>(categories: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = categories
        .into_iter()
        .map(|c| format!("<b>{}</b>", escape_html(c)))
        .collect();
    format!(
        "📭 This slot was skipped: the categories in your mix ({}) have nothing left to post, \
         and the others are left out of the mix. Add files to those folders and /scan, or \
         change the mix in /settings → Categories.",
        names.join(", ")
    )
}

/// Sizes in decimal megabytes, as Telegram states its limits.
pub fn too_large_text(path: &str, size: u64, limit: u64, is_video: bool) -> String {
    format!(
        "⚠️ {} is {:.1} MB; Telegram lets bots send {} up to {} MB, so it was not sent and will not be picked again. \
         Make it smaller to use it.",
        escape_html(path),
        size as f64 / 1e6,
        if is_video { "videos" } else { "photos" },
        limit / 1_000_000
    )
}

/// A photo Telegram would not show even as a preview; `reason` says why.
pub fn unshowable_photo_text(path: &str, reason: &str) -> String {
    format!(
        "⚠️ {} cannot be shown in this chat: {}. It was not sent and will not be picked again.",
        escape_html(path),
        escape_html(reason)
    )
}

pub fn story_refused_text(name: &str, reason: &str) -> String {
    format!(
        "⚠️ Telegram refused the story {}: {}",
        escape_html(name),
        escape_html(reason)
    )
}

fn status_note(status: &str) -> &'static str {
    match status {
        "sent" => " — waiting for a decision",
        "sending" => " — sending",
        _ => "",
    }
}

pub fn queue_line(at: DateTime<Utc>, tz: Tz, path: Option<&str>, status: &str) -> String {
    format!(
        "• {} — {}{}",
        local_day(at, tz),
        path.map(escape_html)
            .unwrap_or_else(|| "(nothing left to pick)".to_string()),
        status_note(status)
    )
}

pub fn queue_text(lines: &[String], tz: Tz) -> String {
    if lines.is_empty() {
        return "📋 Nothing is queued. Slots are planned for the posting hours; /schedule shows the next days."
            .to_string();
    }
    format!(
        "📋 <b>Queue</b> ({})\n{}",
        escape_html(tz.name()),
        lines.join("\n")
    )
}

/// One day of /schedule: slot times with the item for each.
pub struct PlannedDay {
    pub date: NaiveDate,
    pub slots: Vec<(DateTime<Utc>, Option<String>, String)>,
}

pub fn schedule_text(days: &[PlannedDay], tz: Tz, paused: bool) -> String {
    let mut text = format!("📅 <b>Schedule</b> ({})", escape_html(tz.name()));
    if paused {
        text.push_str("\n⏸️ Posting is paused: these slots will be skipped until /resume.");
    }
    for day in days {
        text.push_str(&format!("\n\n<b>{}</b>", day.date.format("%a %d %b")));
        if day.slots.is_empty() {
            text.push_str("\n• nothing planned");
        }
        for (at, path, status) in &day.slots {
            text.push_str(&format!(
                "\n• {} {}{}",
                local(*at, tz),
                path.as_deref()
                    .map(escape_html)
                    .unwrap_or_else(|| "(nothing left to pick)".to_string()),
                status_note(status)
            ));
        }
    }
    text
}

pub fn scan_started_text() -> String {
    "🔎 Scanning the media folder…".to_string()
}

pub fn scan_report_text(summary: &str) -> String {
    format!("🔎 <b>Scan finished</b>\n{}", escape_html(summary))
}

/// Broken files named per extension; the rest are counted.
const BROKEN_NAMES_SHOWN: usize = 5;

/// What a scan did (`summary`), then a line per extension it does not post
/// ("3 .heic files: not supported, export as JPEG") and per extension of
/// broken files, named ("1 broken .png file: broken.png"). Plain text for the
/// command line; `scan_report_text` escapes it for the chat.
pub fn scan_text(
    summary: &str,
    unsupported: &BTreeMap<String, usize>,
    broken: &BTreeMap<String, Vec<String>>,
) -> String {
    let files = |n: usize| if n == 1 { "file" } else { "files" };
    let mut text = summary.to_string();
    for (extension, &count) in unsupported {
        let what = if extension.is_empty() {
            format!("{count} {} without an extension", files(count))
        } else {
            format!("{count} .{extension} {}", files(count))
        };
        text.push_str(&format!(
            "\n{what}: not supported{}",
            unsupported_hint(extension)
        ));
    }
    for (extension, paths) in broken {
        let count = paths.len();
        let mut names = paths
            .iter()
            .take(BROKEN_NAMES_SHOWN)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if count > BROKEN_NAMES_SHOWN {
            names.push_str(&format!(" and {} more", count - BROKEN_NAMES_SHOWN));
        }
        text.push_str(&format!(
            "\n{count} broken .{extension} {}: {names}",
            files(count)
        ));
    }
    text
}

/// What to do with a file of an extension Storyline does not post, when there
/// is a usual answer.
fn unsupported_hint(extension: &str) -> &'static str {
    match extension {
        "heic" | "heif" | "avif" | "tif" | "tiff" | "bmp" | "dng" | "raw" | "cr2" | "cr3"
        | "nef" | "arw" | "orf" | "rw2" | "raf" | "psd" => ", export as JPEG",
        "gif" | "avi" | "mkv" | "webm" | "m4v" | "wmv" | "flv" | "3gp" | "mpg" | "mpeg" | "mts"
        | "m2ts" => ", convert to MP4",
        _ => "",
    }
}

pub fn scan_failed_text(error: &str) -> String {
    format!("⚠️ The scan failed: {}", escape_html(error))
}

/// An administrators' command sent by someone else in a group.
pub fn admins_only_text(command: &str) -> String {
    format!(
        "🔒 /{} is for this chat's administrators.",
        escape_html(command)
    )
}

/// A settings button pressed by someone else (a callback alert: at most 200 characters).
pub fn admins_only_alert() -> String {
    "🔒 Only this chat's administrators can change its settings.".to_string()
}

/// A story's button pressed by a member where the chat keeps them for administrators.
pub fn story_buttons_admins_only_alert() -> String {
    "🔒 In this chat only administrators decide stories.".to_string()
}

/// Telegram did not answer whether the user administers the chat.
pub fn role_unknown_text() -> String {
    "⏳ Telegram did not say whether you are an administrator here. Please try again in a minute."
        .to_string()
}

/// Told once when a chat goes over its command limit (`[limits]`); the next
/// commands get no answer until the bucket is full again.
pub fn slow_down_text(retry_in_secs: u64) -> String {
    format!(
        "🐢 That is a lot of commands at once. I will skip the next ones for a moment \
         and answer again in about {}; what I skip is not done later.",
        plural(retry_in_secs, "second", "seconds")
    )
}

/// A button pressed over the chat's limit (a callback toast: at most 200 characters).
pub fn slow_down_press_alert(retry_in_secs: u64) -> String {
    format!(
        "🐢 Too many presses at once; nothing was done. Try again in {}.",
        plural(retry_in_secs, "second", "seconds")
    )
}

pub fn error_text() -> String {
    "⚠️ Something went wrong handling that; nothing was changed. Please try again.".to_string()
}

/// Told once in a supergroup that Telegram made of a served group.
pub fn chat_migrated_text() -> String {
    "This group became a supergroup; Storyline moved its settings and queue along.".to_string()
}

/// A press on a message of a group that has since become a supergroup.
pub fn chat_moved_alert() -> String {
    "This group became a supergroup; send /settings there for fresh buttons.".to_string()
}

/// Told once to each admin, in private, when Telegram stops delivering to a chat.
pub fn chat_inactive_text(chat_id: i64, title: Option<&str>, gone: ChatGone) -> String {
    let chat = match title {
        Some(title) => format!("<b>{}</b> (<code>{chat_id}</code>)", escape_html(title)),
        None => format!("chat <code>{chat_id}</code>"),
    };
    let why = match gone {
        ChatGone::Blocked => "the bot was blocked there",
        ChatGone::Kicked => "the bot was removed from it",
        ChatGone::NotFound => "Telegram no longer knows that chat (deleted?)",
        ChatGone::Deactivated => "its user deleted their account",
    };
    format!(
        "⚠️ Storyline stopped posting to {chat}: {why}. Its settings and queue are kept; \
         posting resumes as soon as someone writes in that chat again."
    )
}

// ---- the daily summary ---------------------------------------------------------------

/// "2 posted · 1 skipped": the counts that are not zero (all five with `all`).
fn day_counts(day: &CategoryDay, all: bool) -> String {
    let mut parts: Vec<String> = [
        (day.posted, "posted"),
        (day.skipped, "skipped"),
        (day.rejected, "rejected"),
        (day.failed, "failed"),
        (day.missed, "missed"),
    ]
    .iter()
    .filter(|(n, _)| all || *n > 0)
    .map(|(n, word)| format!("{n} {word}"))
    .collect();
    if day.open > 0 {
        parts.push(format!("{} open", day.open));
    }
    parts.join(" · ")
}

/// The daily summary of `summary.covers` and what is ahead, in the chat's zone.
pub fn daily_summary_text(summary: &Summary, tz: Tz) -> String {
    let mut text = format!(
        "🗞 <b>Daily summary</b> · {}",
        summary.covers.format("%a %d %b")
    );
    if let Some(hour) = summary.late_hour {
        text.push_str(&format!(
            "\n<i>(late: Storyline was not running at {hour:02}:00)</i>"
        ));
    }
    let mut total = CategoryDay::default();
    for day in &summary.categories {
        total.posted += day.posted;
        total.skipped += day.skipped;
        total.rejected += day.rejected;
        total.failed += day.failed;
        total.missed += day.missed;
        total.open += day.open;
    }
    if total.total() == 0 {
        text.push_str("\n\n<b>Yesterday</b>: no stories were planned.");
    } else {
        text.push_str(&format!(
            "\n\n<b>Yesterday</b>: {}",
            plural(total.total(), "story", "stories")
        ));
        for day in &summary.categories {
            let name = match &day.category {
                Some(category) => escape_html(category),
                None => "nothing left to pick".to_string(),
            };
            text.push_str(&format!("\n• {name}: {}", day_counts(day, false)));
        }
        text.push_str(&format!("\nTotal: {}", day_counts(&total, true)));
    }
    let p = &summary.publishing;
    if p.any() {
        let mut parts = vec![
            format!("{} published by the API", p.by_api),
            format!("{} fell back to people", p.fell_back),
            format!("{} failed", p.failed),
        ];
        if p.dry_run > 0 {
            parts.push(format!("{} in dry run", p.dry_run));
        }
        if p.pending_or_unknown > 0 {
            parts.push(format!("{} not finished", p.pending_or_unknown));
        }
        text.push_str(&format!("\n<b>Publishing</b>: {}", parts.join(" · ")));
    }

    if let Some(results) = summary
        .results
        .as_ref()
        .and_then(insights::daily_results_text)
    {
        text.push_str("\n\n");
        text.push_str(&results);
    }

    text.push_str("\n\n<b>Ahead</b>");
    let days = days_of_stories(summary.eligible, summary.posts_per_day);
    text.push_str(&format!(
        "\n{} {} of stories left ({} at {} a day)",
        if days < 7 { "⚠️" } else { "📦" },
        plural(days, "day", "days"),
        plural(summary.eligible, "item", "items"),
        summary.posts_per_day
    ));
    let mut needs: Vec<String> = Vec::new();
    if let Some((handle, token)) = &summary.token {
        let handle = escape_html(handle);
        match token {
            TokenHealth::DaysLeft(days) if *days <= TOKEN_WARNING_DAYS => text.push_str(&format!(
                "\n⚠️ The token of {handle} expires in {}: reconnect it with /connect",
                plural(days, "day", "days")
            )),
            TokenHealth::DaysLeft(days) => text.push_str(&format!(
                "\n🔑 Token of {handle}: {} left",
                plural(days, "day", "days")
            )),
            TokenHealth::Expired => {
                needs.push(format!("the token of {handle} has expired: /connect"))
            }
            TokenHealth::ReconnectNeeded => needs.push(format!(
                "the token of {handle} cannot be used: reconnect it with /connect"
            )),
        }
    }
    if summary.paused {
        text.push_str("\n⏸️ Posting is paused (/resume)");
    } else if summary.next_slots.is_empty() {
        text.push_str("\n⏭ Nothing planned yet");
    } else {
        let next: Vec<String> = summary
            .next_slots
            .iter()
            .map(|at| zoned_day(*at, tz))
            .collect();
        text.push_str(&format!("\n⏭ Next: {}", next.join(", ")));
    }

    if summary.waiting_for_decision > 0 {
        needs.insert(
            0,
            format!(
                "{} waiting for a decision in this chat",
                plural(summary.waiting_for_decision, "story", "stories")
            ),
        );
    }
    if summary.unknown_outcomes > 0 {
        needs.insert(
            usize::from(summary.waiting_for_decision > 0),
            format!(
                "{} with an unknown outcome: check Instagram and answer the question above",
                plural(summary.unknown_outcomes, "publish", "publishes")
            ),
        );
    }
    if needs.is_empty() {
        text.push_str("\n\n✅ Nothing needs a person.");
    } else {
        text.push_str("\n\n<b>Needs a person</b>");
        for need in needs {
            text.push_str(&format!("\n• {need}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::markup::render;
    use expect_test::expect;

    fn settings() -> ChatSettings {
        ChatSettings {
            dry_run_mode: true,
            enable_instagram_api: false,
            is_paused: false,
            paused_at: None,
            paused_by: None,
            posts_per_day: 3,
            posting_hours_start: 14,
            posting_hours_end: 2,
            timezone: "Europe/Berlin".parse::<crate::zone::Tz>().unwrap(),
            posted_lock_days: 30,
            skipped_lock_days: 45,
            auto_post: false,
            story_buttons_admins_only: false,
            daily_summary_hour: Some(9),
            auto_tune: None,
        }
    }

    fn account(id: i64, name: &str, username: Option<&str>) -> Account {
        Account {
            id,
            display_name: name.to_string(),
            instagram_user_id: format!("1784{id}"),
            username: username.map(str::to_string),
            is_active: true,
        }
    }

    fn brand() -> ChatAccount {
        ChatAccount::Account {
            account: account(3, "Main Brand", Some("brand")),
            token: TokenHealth::DaysLeft(58),
        }
    }

    #[test]
    fn pairing_answers_the_new_admin() {
        expect![[r#"
            🔑 <b>Paired: you are now an admin of this Storyline.</b> The code is used up; your /start sets up other chats too.

            ✅ <b>Storyline is now set up for this chat.</b>

            Send /init to be walked through the set-up, or open /settings to choose dry run, posts per day and posting hours. /help lists every command."#]].assert_eq(&paired_text());
    }

    #[test]
    fn account_selector_marks_the_chats_account() {
        let accounts = [
            account(3, "Main Brand", Some("brand")),
            account(12, "<Promo>", None),
        ];
        let (text, keyboard) = account_selector(&accounts, Some(3));
        expect![[r#"
            📸 <b>Instagram account</b>

            Choose the account this chat posts to.

            To add another, run <code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code> on the Pi."#]]
        .assert_eq(&text);
        expect![[r#"
            [✅ Main Brand (@brand) | 1:acct:3]
            [<Promo> | 1:acct:12]
            [➕ Add account | 1:acct:add] [← Back | 1:back]"#]]
        .assert_eq(&render(&keyboard));
        let (text, keyboard) = account_selector(&[], None);
        expect![[r#"
            📸 <b>Instagram account</b>

            This chat has no Instagram account yet. Connect one with /connect.

            On the Pi, <code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code> adds one, and <code>storyline accounts share ID --chat CHAT</code> lets this chat use one that another chat connected."#]]
        .assert_eq(&text);
        expect!["[➕ Add account | 1:acct:add] [← Back | 1:back]"].assert_eq(&render(&keyboard));
    }

    #[test]
    fn account_lines_in_the_menu_status_and_accounts() {
        let lines: Vec<String> = [
            brand(),
            ChatAccount::Account {
                account: account(12, "<Promo>", None),
                token: TokenHealth::ReconnectNeeded,
            },
            ChatAccount::Account {
                account: account(4, "Old", Some("old")),
                token: TokenHealth::Expired,
            },
            ChatAccount::NeedsChoice,
            ChatAccount::None,
        ]
        .iter()
        .map(|a| {
            format!(
                "{} | {} | {}",
                account_menu_line(a),
                account_button_label(a),
                account_status_line(a)
            )
        })
        .collect();
        expect![[r#"
            <b>@brand</b> (58 days left) | 📸 Account: @brand | @brand (58 days left)
            <b>&lt;Promo&gt;</b> (reconnect needed) | 📸 Account: <Promo> | &lt;Promo&gt; (reconnect needed)
            <b>@old</b> (token expired, reconnect needed) | 📸 Account: @old | @old (token expired, reconnect needed)
            <b>choose one</b> (tap 📸 Account) | 📸 Account: choose… | not chosen yet (/settings)
            <b>none</b> — add one with <code>storyline accounts add</code> | 📸 Account: none | none"#]]
        .assert_eq(&lines.join("\n"));
        let statuses = [
            (
                account(3, "Main Brand", Some("brand")),
                TokenHealth::DaysLeft(1),
            ),
            (account(12, "<Promo>", None), TokenHealth::ReconnectNeeded),
        ];
        expect![[r#"
            📸 <b>Instagram accounts</b>

            ✅ Main Brand (@brand) — 1 day left
            • &lt;Promo&gt; — reconnect needed

            This chat posts to @brand. Change it in /settings."#]]
        .assert_eq(&accounts_text(&statuses, &brand()));
        expect![[r#"
            📸 <b>Instagram accounts</b>

            • Main Brand (@brand) — 1 day left
            • &lt;Promo&gt; — reconnect needed

            This chat has not chosen an account yet: /settings → 📸 Account."#]]
        .assert_eq(&accounts_text(&statuses, &ChatAccount::NeedsChoice));
        expect![[r#"
            📸 This chat has no Instagram account yet. Connect one with /connect.

            On the Pi, <code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code> adds one, and <code>storyline accounts share ID --chat CHAT</code> lets this chat use one that another chat connected."#]]
        .assert_eq(&accounts_text(&[], &ChatAccount::None));
    }

    #[test]
    fn settings_menu_snapshot() {
        let (text, keyboard) = settings_menu(&settings(), None, "every category alike", &brand());
        expect![[r#"
            ⚙️ <b>Settings</b>

            Dry run: <b>ON</b> (nothing is published)
            Instagram API: <b>off</b>
            Instagram account: <b>@brand</b> (58 days left)
            Posting: <b>▶️ Active</b>
            Story buttons: <b>everyone</b>
            Posts per day: <b>3</b>
            Hours: <b>14:00–02:00 Europe/Berlin</b>
            Categories: <b>every category alike</b>
            Daily summary: <b>09:00</b>

            Tap a button to change a setting."#]]
        .assert_eq(&text);
        expect![[r#"
            [✅ Dry run | 1:set:dry:0]
            [⬜ Instagram API | 1:set:api:1]
            [⬜ Auto post | 1:set:auto:1]
            [👥 Story buttons: everyone | 1:set:sbtn:1]
            [▶️ Active (tap to pause) | 1:set:pause:1]
            [📸 Account: @brand | 1:acct]
            [Posts/Day: 3 | 1:ask:ppd]
            [Hours: 14:00–02:00 Europe/Berlin | 1:ask:hours]
            [🌍 Time zone: Europe/Berlin | 1:ask:tz]
            [🗂 Categories: every category alike | 1:ask:cat]
            [🔒 Locks: posted 30d · skipped 45d | 1:ask:locks]
            [🗞 Daily summary: 09:00 | 1:ask:sum]
            [📈 Auto-tune mix: off | 1:ask:tune]
            [📋 Queue | 1:queue] [📅 Schedule | 1:schedule]
            [🔄 Refresh | 1:refresh] [✖️ Close | 1:close]"#]]
        .assert_eq(&render(&keyboard));
    }

    #[test]
    fn rate_limit_texts() {
        expect!["🐢 That is a lot of commands at once. I will skip the next ones for a moment and answer again in about 12 seconds; what I skip is not done later."]
            .assert_eq(&slow_down_text(12));
        expect!["🐢 Too many presses at once; nothing was done. Try again in 1 second."]
            .assert_eq(&slow_down_press_alert(1));
        assert!(slow_down_press_alert(u64::MAX).chars().count() <= 200);
    }

    #[test]
    fn roles_texts_and_the_story_buttons_setting() {
        expect!["🔒 /settings is for this chat's administrators."]
            .assert_eq(&admins_only_text("settings"));
        expect!["🔒 /a&lt;b is for this chat's administrators."]
            .assert_eq(&admins_only_text("a<b"));
        expect!["🔒 Only this chat's administrators can change its settings."]
            .assert_eq(&admins_only_alert());
        expect!["🔒 In this chat only administrators decide stories."]
            .assert_eq(&story_buttons_admins_only_alert());
        expect!["⏳ Telegram did not say whether you are an administrator here. Please try again in a minute."]
            .assert_eq(&role_unknown_text());
        // Callback alerts are cut by Telegram at 200 characters.
        for alert in [
            admins_only_alert(),
            story_buttons_admins_only_alert(),
            role_unknown_text(),
        ] {
            assert!(alert.chars().count() <= 200, "{alert}");
        }
        let mut s = settings();
        s.story_buttons_admins_only = true;
        let (text, keyboard) = settings_menu(&s, None, "every category alike", &brand());
        assert!(text.contains("Story buttons: <b>admins only</b>"), "{text}");
        let rendered = render(&keyboard);
        assert!(
            rendered.contains("[🔒 Story buttons: admins only | 1:set:sbtn:0]"),
            "{rendered}"
        );
        expect!["Story buttons: admins only"].assert_eq(&toggle_answer(
            Toggle::StoryButtonsAdminsOnly,
            true,
            true,
        ));
        expect!["Story buttons: everyone already"].assert_eq(&toggle_answer(
            Toggle::StoryButtonsAdminsOnly,
            false,
            false,
        ));
    }

    #[test]
    fn paused_status_escapes_names() {
        let mut s = settings();
        s.is_paused = true;
        s.paused_at = Some("2026-11-22T14:02:00Z".parse().unwrap());
        let text = status_text(
            &s,
            &PostingMode::ByHand {
                auto_post_button: false,
            },
            Some("<b>eve</b>"),
            &ChatAccount::NeedsChoice,
            Duration::from_secs(7_380),
        );
        expect![[r#"
            📊 <b>Status</b>

            Mode: 🧪 Dry run: stories come here at their slots to try the buttons; nothing is published
            Posting: ⏸️ Paused by &lt;b&gt;eve&lt;/b&gt; since Sun 22 Nov 15:02 CET
            Posts per day: 3
            Hours: 14:00–02:00 Europe/Berlin
            Instagram API: off
            Instagram account: not chosen yet (/settings)
            Uptime: 2h 3m"#]]
        .assert_eq(&text);
    }

    #[test]
    fn the_health_block_says_each_part_in_the_chats_zone_and_escapes_errors() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let at: DateTime<Utc> = "2026-11-22T14:02:00Z".parse().unwrap();
        let long = format!("<b>bad</b> {}", "x".repeat(300));
        let facts = HealthFacts {
            last_poll_secs_ago: Some(1),
            database_bytes: 1_572_864,
            last_backup: Some(at),
            media_items: 12,
            last_scan: Some(at),
            token: Some(TokenHealth::DaysLeft(58)),
            last_error: Some(("publish".to_string(), at, long)),
        };
        let text = health_block(&facts, tz);
        assert!(text.ends_with("xxx…"), "{text}");
        expect![[r#"


            🩺 <b>Health</b>
            Telegram: last poll 1 second ago
            Database: 1.5 MB, last backup Sun 22 Nov 15:02 CET
            Media: 12 items, last scan Sun 22 Nov 15:02 CET
            Instagram token: 58 days left
            Last error: publish at Sun 22 Nov 15:02 CET: &lt;b&gt;bad&lt;/b&gt; "#]]
        .assert_eq(&text[..text.find("xxx").unwrap()]);
        let none = HealthFacts {
            last_poll_secs_ago: None,
            database_bytes: 900,
            last_backup: None,
            media_items: 1,
            last_scan: None,
            token: None,
            last_error: None,
        };
        expect![[r#"


            🩺 <b>Health</b>
            Telegram: not polled yet
            Database: 900 bytes, never backed up (storyline backup)
            Media: 1 item, not scanned yet
            Instagram token: no account
            Last error: none"#]]
        .assert_eq(&health_block(&none, tz));
        expect![[r#"
            ⏸ This chat was switched off by the operator. Its settings, queue and history are kept; Storyline sends nothing here until it is switched on again.
            ▶️ This chat was switched on again by the operator: stories and commands work as before.
            ⏸ This chat is switched off by the operator; Storyline does not answer here until it is switched on again.
            This chat is switched off by the operator."#]].assert_eq(&format!(
            "{}\n{}\n{}\n{}",
            chat_disabled_text(),
            chat_enabled_text(),
            chat_disabled_notice_text(),
            chat_disabled_alert()
        ));
    }

    #[test]
    fn status_times_are_in_the_chats_zone_and_name_it() {
        let mut s = settings();
        s.is_paused = true;
        let lines: Vec<String> = [
            ("Europe/Berlin", "2026-11-22T14:02:00Z"),
            ("Europe/Berlin", "2026-07-01T09:22:00Z"),
            ("America/New_York", "2026-11-22T14:02:00Z"),
            ("Asia/Dubai", "2026-11-22T14:02:00Z"),
            ("UTC", "2026-11-22T14:02:00Z"),
        ]
        .iter()
        .map(|(zone, at)| {
            s.timezone = zone.parse().unwrap();
            s.paused_at = Some(at.parse().unwrap());
            format!("{zone}: {}", pause_line(&s, None))
        })
        .collect();
        expect![[r#"
            Europe/Berlin: ⏸️ Paused since Sun 22 Nov 15:02 CET
            Europe/Berlin: ⏸️ Paused since Wed 01 Jul 11:22 CEST
            America/New_York: ⏸️ Paused since Sun 22 Nov 09:02 EST
            Asia/Dubai: ⏸️ Paused since Sun 22 Nov 18:02 +04
            UTC: ⏸️ Paused since Sun 22 Nov 14:02 UTC"#]]
        .assert_eq(&lines.join("\n"));
    }

    #[test]
    fn the_status_mode_says_what_happens_at_a_slot() {
        let modes = [
            PostingMode::Published,
            PostingMode::ByHand {
                auto_post_button: true,
            },
            PostingMode::ByHand {
                auto_post_button: false,
            },
            PostingMode::ByHandBecause("choose the <Instagram> account in /settings".into()),
        ];
        let mut lines = Vec::new();
        for dry_run in [false, true] {
            for mode in &modes {
                lines.push(mode_line(dry_run, mode, &brand()));
            }
        }
        expect![[r#"
            🚀 Auto post: each story is published to Instagram as @brand at its slot
            ✋ Stories come here at their slots for someone to post by hand (🤖 Auto post on a story publishes it)
            ✋ Stories come here at their slots for someone to post by hand
            ✋ Stories come here at their slots for someone to post by hand. Auto post is on but cannot publish: choose the &lt;Instagram&gt; account in /settings
            🧪 Dry run: Auto post goes through publishing as @brand at each slot without calling Instagram; nothing is published
            🧪 Dry run: stories come here at their slots to try the buttons; nothing is published (🤖 Auto post on a story publishes it)
            🧪 Dry run: stories come here at their slots to try the buttons; nothing is published
            🧪 Dry run: stories come here at their slots to try the buttons; nothing is published. Auto post is on but cannot publish: choose the &lt;Instagram&gt; account in /settings"#]]
        .assert_eq(&lines.join("\n"));
    }

    #[test]
    fn a_whole_day_window_reads_all_day() {
        let mut s = settings();
        (s.posting_hours_start, s.posting_hours_end) = (9, 9);
        let (text, keyboard) = settings_menu(&s, None, "every category alike", &brand());
        let status = status_text(
            &s,
            &PostingMode::Published,
            None,
            &brand(),
            Duration::from_secs(60),
        );
        (s.posting_hours_start, s.posting_hours_end) = (0, 0);
        let lines: Vec<String> = [text, status, render(&keyboard)]
            .iter()
            .flat_map(|t| {
                t.lines()
                    .filter(|l| l.contains("Hours"))
                    .map(str::to_string)
            })
            .chain([hours_set_text(&s), hours_prompt(&s)])
            .collect();
        expect![[r#"
            Hours: <b>all day from 09:00 Europe/Berlin</b>
            Hours: all day from 09:00 Europe/Berlin
            [Hours: all day from 09:00 Europe/Berlin | 1:ask:hours]
            ✅ Posting hours set to <b>all day Europe/Berlin</b>.
            🕑 Posting hours, in Europe/Berlin (now all day). Reply with start and end hour from 0 to 23, like <code>14-2</code> (the window may wrap past midnight), or just the start hour. /cancel to keep them."#]]
        .assert_eq(&lines.join("\n"));
    }

    #[test]
    fn story_caption_and_buttons_snapshot() {
        let slot = chrono::DateTime::parse_from_rfc3339("2026-11-22T13:32:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let caption = story_caption(
            "quotes & co",
            "quotes & co/<monday>.jpg",
            slot,
            "Europe/Berlin".parse::<crate::zone::Tz>().unwrap(),
            true,
            &[],
        );
        expect![[r#"
            📸 <b>quotes &amp; co</b> · &lt;monday&gt;.jpg
            🕑 Slot Sun 22 Nov 14:32 CET
            🧪 [dry run]"#]]
        .assert_eq(&caption);
        expect![[r#"
            [✅ Posted | 1:st:p:17] [⏭ Skip | 1:st:s:17] [🚫 Reject | 1:st:r:17]
            [📲 Open Instagram | -]"#]]
        .assert_eq(&render(&story_keyboard(17)));
        expect![[r#"
            [🚫 Yes, never post it | 1:st:ry:17] [↩️ Keep it | 1:st:rn:17]"#]]
        .assert_eq(&render(&reject_confirm_keyboard(17)));
        assert_eq!(
            outcome_line(
                "posted",
                "@ada",
                slot,
                "Europe/Berlin".parse::<crate::zone::Tz>().unwrap()
            ),
            "✅ <b>Posted by @ada at 14:32 CET</b>"
        );
    }

    #[test]
    fn chat_lifecycle_texts() {
        expect!["This group became a supergroup; Storyline moved its settings and queue along."]
            .assert_eq(&chat_migrated_text());
        expect!["⚠️ Storyline stopped posting to <b>Team &lt;3</b> (<code>-5</code>): the bot was removed from it. Its settings and queue are kept; posting resumes as soon as someone writes in that chat again."]
            .assert_eq(&chat_inactive_text(-5, Some("Team <3"), ChatGone::Kicked));
        expect!["⚠️ Storyline stopped posting to chat <code>4242</code>: the bot was blocked there. Its settings and queue are kept; posting resumes as soon as someone writes in that chat again."]
            .assert_eq(&chat_inactive_text(4242, None, ChatGone::Blocked));
    }

    #[test]
    fn a_story_caption_gives_way_in_order_and_keeps_its_newest_line() {
        let slot = chrono::DateTime::parse_from_rfc3339("2026-11-22T13:32:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tz = "Europe/Berlin".parse::<crate::zone::Tz>().unwrap();
        let units = html_fit::visible_units;
        let name = format!("{}.jpg", "n".repeat(250));
        let reason = format!("/srv/media/{}: could not be read & so on", "p".repeat(900));
        let note = not_published_note(&reason);
        let outcome = caption_line(outcome_line("posted", "@ada", slot, tz));
        let long_category = "c".repeat(1000);
        let long_name = format!("{}.jpg", "m".repeat(700));
        // (category, file name, lines, what must stay, what must go)
        type Case<'a> = (&'a str, &'a str, &'a [Piece], Vec<String>, Vec<String>);
        let cases: Vec<Case> = vec![
            // The error text gives way; category and file name stay whole.
            (
                "quotes",
                &name,
                &note,
                vec![
                    format!("📸 <b>quotes</b> · {name}\n🕑 Slot Sun 22 Nov 14:32 CET"),
                    "\n\n⚠️ Not published automatically: /srv/media/ppp".into(),
                ],
                vec!["could not be read".into()],
            ),
            // Without an error text, the file name goes first, then the category;
            // the outcome line stays whole.
            (
                &long_category,
                &long_name,
                &outcome,
                vec![
                    "✅ <b>Posted by @ada at 14:32 CET</b>".into(),
                    "🕑 Slot Sun 22 Nov 14:32 CET".into(),
                    format!("📸 <b>{}", "c".repeat(900)),
                    format!("…</b> · {}…\n", "m".repeat(23)),
                ],
                vec![".jpg".into(), "c".repeat(1000)],
            ),
        ];
        for (category, path, lines, kept, gone) in cases {
            let caption = story_caption(category, path, slot, tz, true, lines);
            assert!(units(&caption) <= html_fit::MAX_CAPTION_UNITS, "{caption}");
            assert!(
                units(&caption) >= html_fit::MAX_CAPTION_UNITS - 1,
                "{caption}"
            );
            assert!(caption.contains("…"), "{caption}");
            assert!(caption.contains("🧪 [dry run]"), "{caption}");
            for text in kept {
                assert!(caption.contains(&text), "{text:?} missing from {caption}");
            }
            for text in gone {
                assert!(!caption.contains(&text), "{text:?} still in {caption}");
            }
        }
        // A caption that fits is left alone.
        let short = story_caption("quotes", "a.jpg", slot, tz, false, &outcome);
        assert_eq!(
            short,
            "📸 <b>quotes</b> · a.jpg\n🕑 Slot Sun 22 Nov 14:32 CET\n\n✅ <b>Posted by @ada at 14:32 CET</b>"
        );
    }

    /// The rows of the README's "Commands in Telegram" table: (commands, what).
    fn readme_command_rows() -> Vec<(Vec<String>, String)> {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Commands in Telegram")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a Commands in Telegram section");
        table
            .lines()
            .filter_map(|line| line.strip_prefix("| `/"))
            .map(|row| {
                let (cell, what) = row.split_once(" | ").expect("a row has two cells");
                let commands = format!("`/{cell}")
                    .split('`')
                    .filter_map(|code| code.strip_prefix('/'))
                    .flat_map(|code| code.split(", /"))
                    .map(|code| code.split(' ').next().unwrap_or(code).to_string())
                    .collect();
                (commands, what.to_string())
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_command_and_every_settings_button() {
        let rows = readme_command_rows();
        let mut listed: Vec<String> = rows.iter().flat_map(|(c, _)| c.clone()).collect();
        let mut handled: Vec<String> = COMMANDS.iter().map(|(c, _)| c.to_string()).collect();
        listed.sort();
        handled.sort();
        assert_eq!(
            listed, handled,
            "the README's command table and ui::COMMANDS"
        );

        let (_, settings_row) = rows
            .iter()
            .find(|(commands, _)| commands == &["settings"])
            .expect("a /settings row");
        let (_, keyboard) = settings_menu(&settings(), None, "every category alike", &brand());
        for button in keyboard.iter().flatten() {
            // "🔒 Locks: posted 30d · skipped 45d" → "Locks"
            let name = button
                .text
                .split([':', '('])
                .next()
                .unwrap_or_default()
                .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
                .trim();
            assert!(
                settings_row.contains(name),
                "the README's /settings row does not name {name:?}: {settings_row}"
            );
        }
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        let next = chrono::DateTime::parse_from_rfc3339("2026-07-01T07:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let berlin = "Europe/Berlin".parse::<crate::zone::Tz>().unwrap();
        let texts = [
            categories_prompt("x", &[("quotes".into(), 1), ("memes".into(), 2)]),
            running_dry_text(1, 3),
            running_dry_text(2, 3),
            missed_text(1, Some(next), berlin),
            missed_text(2, None, berlin),
            connect_text(1),
            refresh_failed_text("brand", "no answer", 1),
            refresh_failed_text("brand", "no answer", 6),
        ];
        expect![[r#"
            🗂 Category mix (now x). Reply with weights like <code>quotes=50 products=50</code> (a category left out is not posted), or <code>reset</code> for every category alike, or /cancel.

            Categories:
            • quotes (1 item)
            • memes (2 items)
            📉 Only 1 item left to post: about 0.3 days at 3 a day. Add photos or videos to the media folder (then /scan).
            📉 Only 2 items left to post: about 0.7 days at 3 a day. Add photos or videos to the media folder (then /scan).
            ⏰ 1 scheduled story was missed while Storyline was not running; it is not sent now. Posting resumes at Wed 01 Jul 09:00 CEST.
            ⏰ 2 scheduled stories were missed while Storyline was not running; they are not sent now.
            🔗 Tap the button to connect an Instagram professional account (the link works once, for 1 minute). If the page after Instagram's login does not open, copy the whole address from the browser and paste it here.
            ⚠️ The Instagram access token of @brand could not be renewed: no answer. It expires in 1 day; reconnect the account before then, or stories will come here to post by hand.
            ⚠️ The Instagram access token of @brand could not be renewed: no answer. It expires in 6 days; reconnect the account before then, or stories will come here to post by hand."#]]
        .assert_eq(&texts.join("\n"));
    }

    #[test]
    fn invalid_value_quotes_escaped_input() {
        assert_eq!(
            invalid_value_text("Bad.", "<script>"),
            "⚠️ Bad. You sent “&lt;script&gt;”. Nothing was changed; try again or /cancel."
        );
    }

    #[test]
    fn scan_text_names_what_is_not_posted() {
        let summary = "2 new, 0 changed, 0 gone, 0 unchanged (8 unsupported, 9 broken) in 5 ms\nquotes: 2 items (+2)";
        let unsupported = BTreeMap::from([
            ("".to_string(), 2),
            ("gif".to_string(), 1),
            ("heic".to_string(), 3),
            ("txt".to_string(), 1),
            ("HEIC-like & <odd>".to_string(), 1),
        ]);
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let broken = BTreeMap::from([
            ("png".to_string(), names(&["broken.png"])),
            (
                "jpg".to_string(),
                names(&[
                    "a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg",
                ]),
            ),
            ("mp4".to_string(), names(&["travel/<clip> & co.mp4"])),
        ]);
        let text = scan_text(summary, &unsupported, &broken);
        expect![[r#"
            2 new, 0 changed, 0 gone, 0 unchanged (8 unsupported, 9 broken) in 5 ms
            quotes: 2 items (+2)
            2 files without an extension: not supported
            1 .HEIC-like & <odd> file: not supported
            1 .gif file: not supported, convert to MP4
            3 .heic files: not supported, export as JPEG
            1 .txt file: not supported
            7 broken .jpg files: a.jpg, b.jpg, c.jpg, d.jpg, e.jpg and 2 more
            1 broken .mp4 file: travel/<clip> & co.mp4
            1 broken .png file: broken.png"#]]
        .assert_eq(&text);
        // In the chat the whole report is escaped.
        expect![[r#"
            🔎 <b>Scan finished</b>
            2 new, 0 changed, 0 gone, 0 unchanged (8 unsupported, 9 broken) in 5 ms
            quotes: 2 items (+2)
            2 files without an extension: not supported
            1 .HEIC-like &amp; &lt;odd&gt; file: not supported
            1 .gif file: not supported, convert to MP4
            3 .heic files: not supported, export as JPEG
            1 .txt file: not supported
            7 broken .jpg files: a.jpg, b.jpg, c.jpg, d.jpg, e.jpg and 2 more
            1 broken .mp4 file: travel/&lt;clip&gt; &amp; co.mp4
            1 broken .png file: broken.png"#]]
        .assert_eq(&scan_report_text(&text));
        // Nothing left out: the summary alone.
        assert_eq!(
            scan_text(summary, &BTreeMap::new(), &BTreeMap::new()),
            summary
        );
    }

    #[test]
    fn a_missing_media_folder_is_called_missing() {
        expect![[r#"📭 Nothing to post: the media folder <code>/srv/a&amp;b/media</code> is missing. Create it (or set <code>[media] dir</code> in storyline.toml), add photos or videos, then /scan."#]]
            .assert_eq(&media_folder_missing_text("/srv/a&b/media"));
        expect![[r#"

            ⚠️ The media folder <code>media</code> is missing: nothing is posted until it is back."#]]
        .assert_eq(&media_folder_missing_line("media"));
    }

    fn summary_of(categories: Vec<CategoryDay>) -> Summary {
        let at = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .with_timezone(&Utc)
        };
        Summary {
            covers: "2026-03-28".parse().unwrap(),
            late_hour: None,
            categories,
            publishing: Default::default(),
            eligible: 40,
            posts_per_day: 3,
            token: None,
            paused: false,
            next_slots: vec![at("2026-03-29T12:05:00Z"), at("2026-03-30T07:40:00Z")],
            waiting_for_decision: 0,
            unknown_outcomes: 0,
            results: None,
        }
    }

    fn day(category: Option<&str>, counts: [u32; 6]) -> CategoryDay {
        let [posted, skipped, rejected, failed, missed, open] = counts;
        CategoryDay {
            category: category.map(str::to_string),
            posted,
            skipped,
            rejected,
            failed,
            missed,
            open,
        }
    }

    #[test]
    fn daily_summary_texts() {
        use crate::domain::summary::Publishing;
        let berlin = "Europe/Berlin".parse::<crate::zone::Tz>().unwrap();
        let mut cases: Vec<(&str, Summary)> = Vec::new();
        cases.push(("a quiet day", summary_of(Vec::new())));
        let mut busy = summary_of(vec![
            day(Some("products"), [1, 0, 1, 0, 1, 0]),
            day(Some("quotes <&>"), [2, 1, 0, 0, 0, 1]),
            day(None, [0, 0, 0, 1, 0, 0]),
        ]);
        busy.publishing = Publishing {
            by_api: 2,
            dry_run: 0,
            fell_back: 1,
            failed: 1,
            pending_or_unknown: 0,
        };
        busy.token = Some(("@brand".to_string(), TokenHealth::DaysLeft(45)));
        cases.push(("a busy day", busy.clone()));
        let mut late = busy;
        late.late_hour = Some(9);
        late.eligible = 5;
        late.token = Some(("@brand".to_string(), TokenHealth::DaysLeft(7)));
        late.waiting_for_decision = 2;
        late.unknown_outcomes = 1;
        cases.push(("late, running dry, token ending, things to do", late));
        let mut expired = summary_of(vec![day(Some("quotes"), [0, 0, 0, 0, 3, 0])]);
        expired.token = Some(("<Main>".to_string(), TokenHealth::Expired));
        expired.paused = true;
        expired.publishing.dry_run = 1;
        expired.publishing.pending_or_unknown = 1;
        expired.unknown_outcomes = 1;
        cases.push(("paused, expired token", expired));
        let shown: Vec<String> = cases
            .iter()
            .map(|(what, summary)| format!("== {what}\n{}", daily_summary_text(summary, berlin)))
            .collect();
        expect_test::expect![[r#"
            == a quiet day
            🗞 <b>Daily summary</b> · Sat 28 Mar

            <b>Yesterday</b>: no stories were planned.

            <b>Ahead</b>
            📦 13 days of stories left (40 items at 3 a day)
            ⏭ Next: Sun 29 Mar 14:05 CEST, Mon 30 Mar 09:40 CEST

            ✅ Nothing needs a person.

            == a busy day
            🗞 <b>Daily summary</b> · Sat 28 Mar

            <b>Yesterday</b>: 8 stories
            • products: 1 posted · 1 rejected · 1 missed
            • quotes &lt;&amp;&gt;: 2 posted · 1 skipped · 1 open
            • nothing left to pick: 1 failed
            Total: 3 posted · 1 skipped · 1 rejected · 1 failed · 1 missed · 1 open
            <b>Publishing</b>: 2 published by the API · 1 fell back to people · 1 failed

            <b>Ahead</b>
            📦 13 days of stories left (40 items at 3 a day)
            🔑 Token of @brand: 45 days left
            ⏭ Next: Sun 29 Mar 14:05 CEST, Mon 30 Mar 09:40 CEST

            ✅ Nothing needs a person.

            == late, running dry, token ending, things to do
            🗞 <b>Daily summary</b> · Sat 28 Mar
            <i>(late: Storyline was not running at 09:00)</i>

            <b>Yesterday</b>: 8 stories
            • products: 1 posted · 1 rejected · 1 missed
            • quotes &lt;&amp;&gt;: 2 posted · 1 skipped · 1 open
            • nothing left to pick: 1 failed
            Total: 3 posted · 1 skipped · 1 rejected · 1 failed · 1 missed · 1 open
            <b>Publishing</b>: 2 published by the API · 1 fell back to people · 1 failed

            <b>Ahead</b>
            ⚠️ 1 day of stories left (5 items at 3 a day)
            ⚠️ The token of @brand expires in 7 days: reconnect it with /connect
            ⏭ Next: Sun 29 Mar 14:05 CEST, Mon 30 Mar 09:40 CEST

            <b>Needs a person</b>
            • 2 stories waiting for a decision in this chat
            • 1 publish with an unknown outcome: check Instagram and answer the question above

            == paused, expired token
            🗞 <b>Daily summary</b> · Sat 28 Mar

            <b>Yesterday</b>: 3 stories
            • quotes: 3 missed
            Total: 0 posted · 0 skipped · 0 rejected · 0 failed · 3 missed
            <b>Publishing</b>: 0 published by the API · 0 fell back to people · 0 failed · 1 in dry run · 1 not finished

            <b>Ahead</b>
            📦 13 days of stories left (40 items at 3 a day)
            ⏸️ Posting is paused (/resume)

            <b>Needs a person</b>
            • 1 publish with an unknown outcome: check Instagram and answer the question above
            • the token of &lt;Main&gt; has expired: /connect"#]].assert_eq(&shown.join("\n\n"));
    }

    #[test]
    fn the_summary_totals_count_every_slot_once() {
        let summary = summary_of(vec![
            day(Some("a"), [1, 2, 3, 4, 5, 6]),
            day(Some("b"), [10, 20, 30, 40, 50, 60]),
        ]);
        let text = daily_summary_text(&summary, crate::zone::Tz::UTC);
        assert!(text.contains("<b>Yesterday</b>: 231 stories"), "{text}");
        assert!(
            text.contains(
                "Total: 11 posted · 22 skipped · 33 rejected · 44 failed · 55 missed · 66 open"
            ),
            "{text}"
        );
    }
}
