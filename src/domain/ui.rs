//! What the bot says: message texts and inline keyboards. Pure functions of the
//! data they show; every dynamic string is HTML-escaped here.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::callback::{self, Ask, Callback, StoryAction};
use crate::domain::html_fit::{self, Piece};
use crate::domain::markup::{escape_html, Button, ChatGone, Keyboard};
use crate::domain::rows::{token_health_words, Account, ChatAccount, TokenHealth};
use crate::domain::settings::{format_window, ChatSettings, Toggle};

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

fn pause_line(settings: &ChatSettings, paused_by: Option<&str>) -> String {
    if !settings.is_paused {
        return "▶️ Active".to_string();
    }
    let mut line = "⏸️ Paused".to_string();
    if let Some(name) = paused_by {
        line.push_str(&format!(" by {}", escape_html(name)));
    }
    if let Some(at) = settings.paused_at.map(short_time) {
        line.push_str(&format!(" since {at}"));
    }
    line
}

/// "2026-11-22 14:02 UTC".
fn short_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
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
         Posts per day: <b>{}</b>\n\
         Hours: <b>{}</b>\n\
         Categories: <b>{}</b>\n\n\
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
        settings.posts_per_day,
        escape_html(&window_label(settings)),
        escape_html(mix),
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
    let keyboard = vec![
        vec![toggle(Toggle::DryRun, settings.dry_run_mode)],
        vec![toggle(Toggle::InstagramApi, settings.enable_instagram_api)],
        vec![toggle(Toggle::AutoPost, settings.auto_post)],
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
        text.push_str(&format!(
            "No Instagram account has been added yet. Add one on the Pi with\n{ADD_ACCOUNT_HINT}"
        ));
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

/// /accounts: every active account and its token, and which one this chat uses.
pub fn accounts_text(statuses: &[(Account, TokenHealth)], chat: &ChatAccount) -> String {
    if statuses.is_empty() {
        return format!(
            "📸 No Instagram account has been added yet. Add one on the Pi with\n{ADD_ACCOUNT_HINT}"
        );
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
        text.push_str(&format!("\n• {} ({count} items)", escape_html(name)));
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

pub fn status_text(
    settings: &ChatSettings,
    paused_by: Option<&str>,
    account: &ChatAccount,
    uptime: Duration,
) -> String {
    let mode = if settings.dry_run_mode {
        "🧪 Dry run (nothing is published)"
    } else if settings.enable_instagram_api {
        "🚀 Live, publishing through the Instagram API"
    } else {
        "🚀 Live, stories are sent here to post by hand"
    };
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

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%H:%M").to_string()
}

fn local_day(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%a %d %b %H:%M").to_string()
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
        Piece::fixed(format!(
            "\n🕑 Slot {} {}",
            local_day(slot, tz),
            escape_html(tz.name())
        )),
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
            local(at, tz)
        )
    } else {
        format!(
            "✅ <b>Published to Instagram as @{} at {}</b>",
            escape_html(username),
            local(at, tz)
        )
    }
}

pub fn connect_text(minutes: i64) -> String {
    format!(
        "🔗 Tap the button to connect an Instagram professional account (the link works once, for \
         {minutes} minutes). If the page after Instagram's login does not open, copy the whole \
         address from the browser and paste it here."
    )
}

pub fn refresh_failed_text(username: &str, error: &str, days_left: i64) -> String {
    format!(
        "⚠️ The Instagram access token of @{} could not be renewed: {}. It expires in {days_left} {}; \
         reconnect the account before then, or stories will come here to post by hand.",
        escape_html(username),
        escape_html(error),
        if days_left == 1 { "day" } else { "days" }
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
        local(at, tz)
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
        local(at, tz)
    )
}

pub fn missed_text(count: usize, next: Option<DateTime<Utc>>, tz: Tz) -> String {
    let mut text = format!(
        "⏰ {count} scheduled {} missed while Storyline was not running; {} not sent now.",
        if count == 1 {
            "story was"
        } else {
            "stories were"
        },
        if count == 1 { "it is" } else { "they are" }
    );
    if let Some(next) = next {
        text.push_str(&format!(
            " Posting resumes at {} {}.",
            local_day(next, tz),
            escape_html(tz.name())
        ));
    }
    text
}

pub fn running_dry_text(eligible: usize, posts_per_day: u32) -> String {
    let days = eligible as f64 / f64::from(posts_per_day.max(1));
    format!(
        "📉 Only {eligible} {} left to post: about {days:.1} days at {posts_per_day} a day. \
         Add photos or videos to the media folder (then /scan).",
        if eligible == 1 { "item" } else { "items" }
    )
}

pub fn nothing_to_post_text() -> String {
    "📭 Nothing to post: every item is resting after a recent post or skip, or the media folder is empty. \
     Add photos or videos to the media folder, then /scan."
        .to_string()
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
            text.push_str("\n• no slots left in this window");
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

pub fn scan_failed_text(error: &str) -> String {
    format!("⚠️ The scan failed: {}", escape_html(error))
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

#[cfg(test)]
mod tests {
    use super::*;
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
            timezone: chrono_tz::Europe::Berlin,
            posted_lock_days: 30,
            skipped_lock_days: 45,
            auto_post: false,
        }
    }

    fn render(keyboard: &Keyboard) -> String {
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

            No Instagram account has been added yet. Add one on the Pi with
            <code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code>"#]]
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
            📸 No Instagram account has been added yet. Add one on the Pi with
            <code>storyline accounts add --name NAME --instagram-id ID --username USER --token -</code>"#]]
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
            Posts per day: <b>3</b>
            Hours: <b>14:00–02:00 Europe/Berlin</b>
            Categories: <b>every category alike</b>

            Tap a button to change a setting."#]]
        .assert_eq(&text);
        expect![[r#"
            [✅ Dry run | 1:set:dry:0]
            [⬜ Instagram API | 1:set:api:1]
            [⬜ Auto post | 1:set:auto:1]
            [▶️ Active (tap to pause) | 1:set:pause:1]
            [📸 Account: @brand | 1:acct]
            [Posts/Day: 3 | 1:ask:ppd]
            [Hours: 14:00–02:00 Europe/Berlin | 1:ask:hours]
            [🌍 Time zone: Europe/Berlin | 1:ask:tz]
            [🗂 Categories: every category alike | 1:ask:cat]
            [🔒 Locks: posted 30d · skipped 45d | 1:ask:locks]
            [📋 Queue | 1:queue] [📅 Schedule | 1:schedule]
            [🔄 Refresh | 1:refresh] [✖️ Close | 1:close]"#]]
        .assert_eq(&render(&keyboard));
    }

    #[test]
    fn paused_status_escapes_names() {
        let mut s = settings();
        s.is_paused = true;
        s.paused_at = Some("2026-11-22T14:02:00Z".parse().unwrap());
        let text = status_text(
            &s,
            Some("<b>eve</b>"),
            &ChatAccount::NeedsChoice,
            Duration::from_secs(7_380),
        );
        expect![[r#"
            📊 <b>Status</b>

            Mode: 🧪 Dry run (nothing is published)
            Posting: ⏸️ Paused by &lt;b&gt;eve&lt;/b&gt; since 2026-11-22 14:02 UTC
            Posts per day: 3
            Hours: 14:00–02:00 Europe/Berlin
            Instagram API: off
            Instagram account: not chosen yet (/settings)
            Uptime: 2h 3m"#]]
        .assert_eq(&text);
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
            chrono_tz::Europe::Berlin,
            true,
            &[],
        );
        expect![[r#"
            📸 <b>quotes &amp; co</b> · &lt;monday&gt;.jpg
            🕑 Slot Sun 22 Nov 14:32 Europe/Berlin
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
            outcome_line("posted", "@ada", slot, chrono_tz::Europe::Berlin),
            "✅ <b>Posted by @ada at 14:32</b>"
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
        let tz = chrono_tz::Europe::Berlin;
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
                    format!("📸 <b>quotes</b> · {name}\n🕑 Slot Sun 22 Nov 14:32 Europe/Berlin"),
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
                    "✅ <b>Posted by @ada at 14:32</b>".into(),
                    "🕑 Slot Sun 22 Nov 14:32 Europe/Berlin".into(),
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
            "📸 <b>quotes</b> · a.jpg\n🕑 Slot Sun 22 Nov 14:32 Europe/Berlin\n\n✅ <b>Posted by @ada at 14:32</b>"
        );
    }

    #[test]
    fn invalid_value_quotes_escaped_input() {
        assert_eq!(
            invalid_value_text("Bad.", "<script>"),
            "⚠️ Bad. You sent “&lt;script&gt;”. Nothing was changed; try again or /cancel."
        );
    }
}
