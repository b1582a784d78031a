//! The /init set-up wizard, pure: its five steps (operating mode, Instagram,
//! media, schedule, summary), the values chosen so far, what a button press
//! does to them, the data its buttons carry, and the text and keyboard of each
//! step. No IO: `bot::setup` loads what a step shows, stores the progress, and
//! applies the choices to the chat in one go when the set-up completes, so an
//! abandoned set-up changes nothing.
//!
//! Every button names the wizard (its id, new for each wizard message) and the
//! step it was shown on; a press naming another wizard or another step is
//! refused, so an old message or another chat's buttons change nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::zone::Tz;
use serde::{Deserialize, Serialize};

pub use crate::domain::callback::wizard::{
    category_key, encode_press, parse_press, Action, Field, Press, Step,
};
use crate::domain::callback::{self, Callback};
use crate::domain::markup::{escape_html, plural, Button, Keyboard};
use crate::domain::rows::Account;
use crate::domain::settings::{self, format_window};

/// The posts-per-day buttons of the schedule step (anything else is Custom).
pub const POSTS_PER_DAY_PRESETS: [u32; 3] = [3, 5, 10];
/// The posting-hours buttons of the schedule step: start and end hour.
pub const HOURS_PRESETS: [(u32, u32); 2] = [(9, 21), (14, 2)];

/// The values chosen so far, stored as JSON while the set-up runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choices {
    pub dry_run: bool,
    /// The account the chat will post to; `None` leaves the chat's account as
    /// it is ("Skip for now").
    pub account_id: Option<i64>,
    /// Category folders the chat will not post from.
    pub excluded_categories: BTreeSet<String>,
    pub posts_per_day: u32,
    pub hours_start: u32,
    pub hours_end: u32,
    /// An IANA name, checked when stored and when read back.
    pub timezone: String,
    /// The daily summary's local hour; `None`: off. (Set-ups stored before it
    /// existed read as the default.)
    #[serde(default = "default_summary_hour")]
    pub summary_hour: Option<u32>,
}

fn default_summary_hour() -> Option<u32> {
    Some(settings::DEFAULT_SUMMARY_HOUR)
}

impl Choices {
    /// Where a set-up starts: the chat's settings as they are now, and the
    /// categories its mix leaves out (unless that is every one).
    pub fn from_current(
        settings: &settings::ChatSettings,
        weights: &BTreeMap<String, u32>,
        categories: &[String],
    ) -> Choices {
        let mut excluded: BTreeSet<String> = if weights.is_empty() {
            BTreeSet::new()
        } else {
            categories
                .iter()
                .filter(|category| weights.get(*category).copied().unwrap_or(0) == 0)
                .cloned()
                .collect()
        };
        if excluded.len() == categories.len() {
            excluded.clear();
        }
        Choices {
            dry_run: settings.dry_run_mode,
            account_id: None,
            excluded_categories: excluded,
            posts_per_day: settings.posts_per_day,
            hours_start: settings.posting_hours_start,
            hours_end: settings.posting_hours_end,
            timezone: settings.timezone.name().to_string(),
            summary_hour: settings.daily_summary_hour,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("choices serialize")
    }

    /// Stored choices read back; `None` if they are not JSON of valid values.
    pub fn from_json(json: &str) -> Option<Choices> {
        let choices: Choices = serde_json::from_str(json).ok()?;
        let valid = (settings::POSTS_PER_DAY_MIN..=settings::POSTS_PER_DAY_MAX)
            .contains(&choices.posts_per_day)
            && choices.hours_start <= settings::HOUR_MAX
            && choices.hours_end <= settings::HOUR_MAX
            && choices.timezone.parse::<Tz>().is_ok()
            && choices
                .summary_hour
                .is_none_or(|hour| hour <= settings::HOUR_MAX);
        valid.then_some(choices)
    }

    pub fn timezone(&self) -> Tz {
        self.timezone.parse().unwrap_or(crate::zone::Tz::UTC)
    }
}

// ---- what a press does ----------------------------------------------------------------

/// What the caller does about a press on the current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Store the wizard at `step` with `choices`, answer `toast`, show the step.
    Show {
        step: Step,
        choices: Choices,
        toast: String,
    },
    /// Ask for a value with a prompt; the wizard stays where it is.
    Ask(Field),
    /// Send the chat the /connect link; the wizard stays where it is.
    Connect,
    Cancel,
    Complete,
    /// Refuse the press with this alert; nothing changes.
    Alert(String),
}

/// The effect of `action` on the wizard at `step`. `categories` are the
/// category folders now in the media library; the caller has checked that an
/// account pressed is still active.
pub fn press(step: Step, choices: &Choices, action: Action, categories: &[String]) -> Effect {
    let show = |step: Step, choices: Choices, toast: String| Effect::Show {
        step,
        choices,
        toast,
    };
    let mut next = choices.clone();
    match action {
        Action::Cancel => Effect::Cancel,
        Action::Connect => Effect::Connect,
        Action::Complete => Effect::Complete,
        Action::Custom(field) => Effect::Ask(field),
        Action::Next => {
            if step == Step::Media && every_category_off(choices, categories) {
                return Effect::Alert(keep_one_category_text());
            }
            let to = step.next().unwrap_or(step);
            show(to, next, to.title().to_string())
        }
        Action::Back => {
            let to = step.previous().unwrap_or(step);
            show(to, next, to.title().to_string())
        }
        Action::DryRun(on) => {
            next.dry_run = on;
            let toast = if on { "Dry run on" } else { "Dry run off" };
            show(step, next, toast.to_string())
        }
        Action::Skip => {
            next.account_id = None;
            show(Step::Media, next, "Instagram left as it is".to_string())
        }
        Action::Account(id) => {
            next.account_id = Some(id);
            show(Step::Media, next, "Instagram account chosen".to_string())
        }
        Action::Category { key, include } => {
            let Some(name) = categories.iter().find(|name| category_key(name) == key) else {
                return Effect::Alert(
                    "That category is no longer in the media folder. Send /init for a fresh step."
                        .to_string(),
                );
            };
            if include {
                next.excluded_categories.remove(name);
            } else {
                next.excluded_categories.insert(name.clone());
                if every_category_off(&next, categories) {
                    return Effect::Alert(keep_one_category_text());
                }
            }
            let toast = format!("{name} {}", if include { "on" } else { "off" });
            show(step, next, toast)
        }
        Action::PostsPerDay(n) => {
            next.posts_per_day = n;
            show(step, next, plural(n, "post a day", "posts a day"))
        }
        Action::Hours { start, end } => {
            next.hours_start = start;
            next.hours_end = end;
            show(step, next, format_window(start, end))
        }
    }
}

fn every_category_off(choices: &Choices, categories: &[String]) -> bool {
    !categories.is_empty()
        && categories
            .iter()
            .all(|category| choices.excluded_categories.contains(category))
}

fn keep_one_category_text() -> String {
    "Keep at least one category on: the chat needs something to post.".to_string()
}

/// The chat's category mix once the set-up completes. Categories switched off
/// get weight 0; the others keep the weight the old mix gave them, and one it
/// left out gets the average of those (1 if none). With nothing switched off
/// and an old mix of "every category alike", the mix stays that way.
/// Weights of categories no longer in the library are kept for their return.
pub fn mix_after_setup(
    old: &BTreeMap<String, u32>,
    categories: &[String],
    excluded: &BTreeSet<String>,
) -> BTreeMap<String, u32> {
    let any_off = categories.iter().any(|c| excluded.contains(c));
    if !any_off && old.is_empty() {
        return BTreeMap::new();
    }
    let kept: Vec<u32> = categories
        .iter()
        .filter(|c| !excluded.contains(*c))
        .filter_map(|c| old.get(c).copied().filter(|w| *w > 0))
        .collect();
    let fill = if kept.is_empty() {
        1
    } else {
        let total: u32 = kept.iter().sum();
        let count = kept.len() as u32;
        ((total + count / 2) / count).max(1)
    };
    let mut mix = old.clone();
    for category in categories {
        let weight = if excluded.contains(category) {
            0
        } else {
            old.get(category)
                .copied()
                .filter(|w| *w > 0)
                .unwrap_or(fill)
        };
        mix.insert(category.clone(), weight);
    }
    mix
}

// ---- texts and keyboards --------------------------------------------------------------

/// What the steps show besides the choices.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The active Instagram accounts, to pick one.
    pub accounts: &'a [Account],
    /// The account the chat posts to now, if any.
    pub chat_account: Option<&'a Account>,
    /// The category folders in the media library and their item counts.
    pub categories: &'a [(String, i64)],
}

/// "@brand", or the account's name when it has no username.
fn account_handle(account: &Account) -> String {
    match &account.username {
        Some(username) => format!("@{username}"),
        None => account.display_name.clone(),
    }
}

/// "Main Brand (@brand)"
fn account_title(account: &Account) -> String {
    match &account.username {
        Some(username) => format!("{} (@{username})", account.display_name),
        None => account.display_name.clone(),
    }
}

fn mode_line(dry_run: bool) -> &'static str {
    if dry_run {
        "🧪 Dry run: <b>ON</b> — nothing is published to Instagram; stories come here so you can try everything safely."
    } else {
        "🚀 Dry run: <b>off</b> — live: stories are posted for real (published by Storyline once an account and the Instagram API are on)."
    }
}

fn instagram_line(choices: &Choices, view: &View<'_>) -> String {
    match choices.account_id {
        Some(id) => match view.accounts.iter().find(|a| a.id == id) {
            Some(account) => format!("<b>{}</b>", escape_html(&account_handle(account))),
            None => "an account that is no longer available".to_string(),
        },
        None => match view.chat_account {
            Some(account) => format!("<b>{}</b> (as now)", escape_html(&account_handle(account))),
            None => "not connected yet (send /connect when you are ready)".to_string(),
        },
    }
}

fn media_line(choices: &Choices, view: &View<'_>) -> String {
    let on: Vec<&str> = view
        .categories
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !choices.excluded_categories.contains(*name))
        .collect();
    if view.categories.is_empty() {
        return "every category folder (none yet)".to_string();
    }
    match on.len() {
        1 if view.categories.len() == 1 => return "the one category folder".to_string(),
        n if n == view.categories.len() => return format!("all {n} category folders"),
        _ => {}
    }
    escape_html(&on.join(", "))
}

fn schedule_line(choices: &Choices) -> String {
    format!(
        "<b>{}</b>, <b>{}</b> {}",
        plural(choices.posts_per_day, "post a day", "posts a day"),
        format_window(choices.hours_start, choices.hours_end),
        escape_html(&choices.timezone)
    )
}

fn summary_hour_line(choices: &Choices) -> String {
    match choices.summary_hour {
        Some(hour) => format!("<b>{hour:02}:00</b> {}", escape_html(&choices.timezone)),
        None => "<b>off</b>".to_string(),
    }
}

fn summary_lines(choices: &Choices, view: &View<'_>) -> String {
    format!(
        "Mode: {}\nInstagram: {}\nMedia: {}\nSchedule: {}\nDaily summary: {}",
        if choices.dry_run {
            "🧪 Dry run (nothing is published)"
        } else {
            "🚀 Live"
        },
        instagram_line(choices, view),
        media_line(choices, view),
        schedule_line(choices),
        summary_hour_line(choices)
    )
}

/// The wizard's message at `step`: its text and keyboard.
pub fn step_message(
    wizard_id: i64,
    step: Step,
    choices: &Choices,
    view: &View<'_>,
) -> (String, Keyboard) {
    let button = |text: String, action: Action| {
        Button::callback(
            text,
            callback::encode(Callback::Wizard(Press {
                wizard_id,
                step,
                action,
            })),
        )
    };
    let mark = |chosen: bool| if chosen { "✅ " } else { "" };
    let mut text = format!(
        "🧭 <b>Set up Storyline</b> · step {} of 5\n\n",
        step.number()
    );
    if step == Step::Mode {
        text.push_str(
            "👋 Welcome! A few taps and this chat is ready; it takes about two minutes. \
             Nothing changes until you tap ✅ Complete at the end, and everything can be \
             changed later in /settings.\n\n",
        );
    }
    text.push_str(&format!("<b>{}. {}</b>\n", step.number(), step.title()));
    let mut keyboard: Keyboard = Vec::new();
    match step {
        Step::Mode => {
            text.push_str(mode_line(choices.dry_run));
            text.push_str("\n\nRecommended: start with dry run on to test safely.");
            keyboard.push(vec![
                button(
                    format!("{}Dry run ON (recommended)", mark(choices.dry_run)),
                    Action::DryRun(true),
                ),
                button(
                    format!("{}Dry run off", mark(!choices.dry_run)),
                    Action::DryRun(false),
                ),
            ]);
        }
        Step::Instagram => {
            match view.chat_account {
                Some(account) => text.push_str(&format!(
                    "This chat posts to <b>{}</b>. Tap Next → to keep it, or connect or pick \
                     another account.",
                    escape_html(&account_handle(account))
                )),
                None => text.push_str(
                    "Connect your Instagram Business account so Storyline can publish for you, \
                     or skip for now: stories still come here to post by hand.",
                ),
            }
            if !view.accounts.is_empty() {
                text.push_str("\n\nOr pick an account that is already added:");
            }
            text.push_str(&format!("\n\nChosen: {}", instagram_line(choices, view)));
            // No pick keeps the chat's account, so that one is ticked.
            let ticked = choices
                .account_id
                .or(view.chat_account.map(|account| account.id));
            for account in view.accounts {
                keyboard.push(vec![button(
                    format!(
                        "{}{}",
                        mark(ticked == Some(account.id)),
                        account_title(account)
                    ),
                    Action::Account(account.id),
                )]);
            }
            keyboard.push(vec![button(
                "🔗 Connect Instagram".to_string(),
                Action::Connect,
            )]);
            // Next keeps the pick; this drops it again, back to the chat's account
            // (if it has one) or to none.
            match (choices.account_id, view.chat_account) {
                (Some(_), None) => {
                    keyboard.push(vec![button("Skip for now".to_string(), Action::Skip)])
                }
                (Some(id), Some(account)) if account.id != id => keyboard.push(vec![button(
                    format!("↩️ Keep {}", account_handle(account)),
                    Action::Skip,
                )]),
                _ => {}
            }
        }
        Step::Media => {
            if view.categories.is_empty() {
                text.push_str(
                    "The media folder has no category folders yet, so this chat will post \
                     from every one. Add folders of photos and videos to the media folder, \
                     then /scan.",
                );
            } else {
                text.push_str(
                    "Which category folders should this chat post from? Tap one to switch it \
                     off or on.",
                );
            }
            for (name, count) in view.categories {
                let on = !choices.excluded_categories.contains(name);
                keyboard.push(vec![button(
                    format!(
                        "{} {name} · {}",
                        if on { "✅" } else { "⬜" },
                        plural(count, "item", "items")
                    ),
                    Action::Category {
                        key: category_key(name),
                        include: !on,
                    },
                )]);
            }
        }
        Step::Schedule => {
            text.push_str(&format!(
                "Posts per day: <b>{}</b>\nPosting hours: <b>{}</b> ({})\n\
                 Daily summary: {} — how yesterday went and what is ahead\n\n\
                 Tap a preset, or ✏️ to type a value.",
                choices.posts_per_day,
                format_window(choices.hours_start, choices.hours_end),
                escape_html(&choices.timezone),
                summary_hour_line(choices)
            ));
            let mut posts: Vec<Button> = POSTS_PER_DAY_PRESETS
                .iter()
                .map(|n| {
                    button(
                        format!("{}{n}", mark(choices.posts_per_day == *n)),
                        Action::PostsPerDay(*n),
                    )
                })
                .collect();
            let custom_posts = !POSTS_PER_DAY_PRESETS.contains(&choices.posts_per_day);
            posts.push(button(
                if custom_posts {
                    format!("✅ ✏️ {}", choices.posts_per_day)
                } else {
                    "✏️ Custom".to_string()
                },
                Action::Custom(Field::PostsPerDay),
            ));
            keyboard.push(posts);
            let window = (choices.hours_start, choices.hours_end);
            let mut hours: Vec<Button> = HOURS_PRESETS
                .iter()
                .map(|(start, end)| {
                    button(
                        format!(
                            "{}{}",
                            mark(window == (*start, *end)),
                            format_window(*start, *end)
                        ),
                        Action::Hours {
                            start: *start,
                            end: *end,
                        },
                    )
                })
                .collect();
            hours.push(button(
                if HOURS_PRESETS.contains(&window) {
                    "✏️ Custom".to_string()
                } else {
                    "✅ ✏️ Custom".to_string()
                },
                Action::Custom(Field::Hours),
            ));
            keyboard.push(hours);
            keyboard.push(vec![button(
                format!("🌍 Time zone: {}", choices.timezone),
                Action::Custom(Field::Timezone),
            )]);
            keyboard.push(vec![button(
                format!(
                    "🗞 Daily summary: {} ✏️",
                    match choices.summary_hour {
                        Some(hour) => format!("{hour:02}:00"),
                        None => "off".to_string(),
                    }
                ),
                Action::Custom(Field::SummaryHour),
            )]);
        }
        Step::Summary => {
            text.push_str(&summary_lines(choices, view));
            text.push_str("\n\nTap ✅ Complete to apply these settings.");
        }
    }
    let forward = match step {
        Step::Summary => button("✅ Complete".to_string(), Action::Complete),
        // Nothing chosen and nothing to keep: going on skips Instagram.
        Step::Instagram if choices.account_id.is_none() && view.chat_account.is_none() => {
            button("Skip for now →".to_string(), Action::Skip)
        }
        _ => button("Next →".to_string(), Action::Next),
    };
    keyboard.push(if step == Step::Mode {
        vec![forward]
    } else {
        vec![button("← Back".to_string(), Action::Back), forward]
    });
    keyboard.push(vec![button("✖️ Cancel setup".to_string(), Action::Cancel)]);
    (text, keyboard)
}

/// The wizard's message once the set-up is applied.
pub fn completed_text(choices: &Choices, view: &View<'_>, chat_enabled: bool) -> String {
    format!(
        "✅ <b>Storyline is set up for this chat.</b>{}\n\n{}\n\n\
         Change anything later in /settings; /help lists every command.",
        if chat_enabled {
            " It is now enabled here."
        } else {
            ""
        },
        summary_lines(choices, view)
    )
}

pub fn cancelled_text() -> String {
    "✖️ Set-up cancelled; nothing was changed. Send /init to start again.".to_string()
}

/// The alert for a press on an old wizard message, another chat's, or a step
/// the wizard has left.
pub fn stale_text() -> String {
    "This set-up message is out of date. Send /init to continue where you left off.".to_string()
}

/// An older wizard message once /init showed the set-up again in a newer one.
pub fn moved_text(step: Step) -> String {
    format!(
        "🧭 <b>Set up Storyline</b>\n\nThis set-up moved to a newer message below \
         (now at step {} of 5, {}). Its buttons are there.",
        step.number(),
        step.title()
    )
}

pub fn not_running_text() -> String {
    "No set-up is running in this chat. Send /init to start one.".to_string()
}

/// The reply to a typed value the wizard took.
pub fn value_taken_text(what: &str) -> String {
    format!(
        "✅ {}. It is applied when you tap ✅ Complete in the set-up.",
        escape_html(what)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::callback::wizard::offered;
    use crate::domain::markup::render;
    use expect_test::{expect, Expect};

    fn choices() -> Choices {
        Choices {
            dry_run: true,
            account_id: None,
            excluded_categories: BTreeSet::new(),
            posts_per_day: 3,
            hours_start: 14,
            hours_end: 2,
            timezone: "Europe/Berlin".to_string(),
            summary_hour: Some(9),
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

    fn check_step(step: Step, choices: &Choices, view: &View<'_>, expected: Expect) {
        let (text, keyboard) = step_message(7, step, choices, view);
        for row in &keyboard {
            for button in row {
                let data = button.callback_data.as_deref().unwrap();
                assert!(data.len() <= callback::MAX_LEN, "{data}");
                assert!(callback::parse(data).is_some(), "{data}");
            }
        }
        expected.assert_eq(&format!("{text}\n---\n{}", render(&keyboard)));
    }

    #[test]
    fn every_step_snapshot() {
        let accounts = [
            account(3, "Main Brand", Some("brand")),
            account(12, "<Promo>", None),
        ];
        let categories = [("products".to_string(), 1), ("quotes & co".to_string(), 12)];
        let view = View {
            accounts: &accounts,
            chat_account: None,
            categories: &categories,
        };
        let mut c = choices();
        check_step(
            Step::Mode,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 1 of 5

                👋 Welcome! A few taps and this chat is ready; it takes about two minutes. Nothing changes until you tap ✅ Complete at the end, and everything can be changed later in /settings.

                <b>1. Operating mode</b>
                🧪 Dry run: <b>ON</b> — nothing is published to Instagram; stories come here so you can try everything safely.

                Recommended: start with dry run on to test safely.
                ---
                [✅ Dry run ON (recommended) | 1:wz:7:1:dry:1] [Dry run off | 1:wz:7:1:dry:0]
                [Next → | 1:wz:7:1:next]
                [✖️ Cancel setup | 1:wz:7:1:stop]"#]],
        );
        check_step(
            Step::Instagram,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 2 of 5

                <b>2. Instagram</b>
                Connect your Instagram Business account so Storyline can publish for you, or skip for now: stories still come here to post by hand.

                Or pick an account that is already added:

                Chosen: not connected yet (send /connect when you are ready)
                ---
                [Main Brand (@brand) | 1:wz:7:2:acct:3]
                [<Promo> | 1:wz:7:2:acct:12]
                [🔗 Connect Instagram | 1:wz:7:2:conn]
                [← Back | 1:wz:7:2:back] [Skip for now → | 1:wz:7:2:skip]
                [✖️ Cancel setup | 1:wz:7:2:stop]"#]],
        );
        c.account_id = Some(12);
        c.excluded_categories.insert("products".to_string());
        check_step(
            Step::Instagram,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 2 of 5

                <b>2. Instagram</b>
                Connect your Instagram Business account so Storyline can publish for you, or skip for now: stories still come here to post by hand.

                Or pick an account that is already added:

                Chosen: <b>&lt;Promo&gt;</b>
                ---
                [Main Brand (@brand) | 1:wz:7:2:acct:3]
                [✅ <Promo> | 1:wz:7:2:acct:12]
                [🔗 Connect Instagram | 1:wz:7:2:conn]
                [Skip for now | 1:wz:7:2:skip]
                [← Back | 1:wz:7:2:back] [Next → | 1:wz:7:2:next]
                [✖️ Cancel setup | 1:wz:7:2:stop]"#]],
        );
        check_step(
            Step::Media,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 3 of 5

                <b>3. Media</b>
                Which category folders should this chat post from? Tap one to switch it off or on.
                ---
                [⬜ products · 1 item | 1:wz:7:3:cat:4fbee88d:1]
                [✅ quotes & co · 12 items | 1:wz:7:3:cat:7f2d3484:0]
                [← Back | 1:wz:7:3:back] [Next → | 1:wz:7:3:next]
                [✖️ Cancel setup | 1:wz:7:3:stop]"#]],
        );
        check_step(
            Step::Schedule,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 4 of 5

                <b>4. Schedule</b>
                Posts per day: <b>3</b>
                Posting hours: <b>14:00–02:00</b> (Europe/Berlin)
                Daily summary: <b>09:00</b> Europe/Berlin — how yesterday went and what is ahead

                Tap a preset, or ✏️ to type a value.
                ---
                [✅ 3 | 1:wz:7:4:ppd:3] [5 | 1:wz:7:4:ppd:5] [10 | 1:wz:7:4:ppd:10] [✏️ Custom | 1:wz:7:4:ppd:c]
                [09:00–21:00 | 1:wz:7:4:hrs:9:21] [✅ 14:00–02:00 | 1:wz:7:4:hrs:14:2] [✏️ Custom | 1:wz:7:4:hrs:c]
                [🌍 Time zone: Europe/Berlin | 1:wz:7:4:tz:c]
                [🗞 Daily summary: 09:00 ✏️ | 1:wz:7:4:sum:c]
                [← Back | 1:wz:7:4:back] [Next → | 1:wz:7:4:next]
                [✖️ Cancel setup | 1:wz:7:4:stop]"#]],
        );
        c.posts_per_day = 7;
        c.hours_start = 8;
        c.hours_end = 20;
        c.dry_run = false;
        check_step(
            Step::Schedule,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 4 of 5

                <b>4. Schedule</b>
                Posts per day: <b>7</b>
                Posting hours: <b>08:00–20:00</b> (Europe/Berlin)
                Daily summary: <b>09:00</b> Europe/Berlin — how yesterday went and what is ahead

                Tap a preset, or ✏️ to type a value.
                ---
                [3 | 1:wz:7:4:ppd:3] [5 | 1:wz:7:4:ppd:5] [10 | 1:wz:7:4:ppd:10] [✅ ✏️ 7 | 1:wz:7:4:ppd:c]
                [09:00–21:00 | 1:wz:7:4:hrs:9:21] [14:00–02:00 | 1:wz:7:4:hrs:14:2] [✅ ✏️ Custom | 1:wz:7:4:hrs:c]
                [🌍 Time zone: Europe/Berlin | 1:wz:7:4:tz:c]
                [🗞 Daily summary: 09:00 ✏️ | 1:wz:7:4:sum:c]
                [← Back | 1:wz:7:4:back] [Next → | 1:wz:7:4:next]
                [✖️ Cancel setup | 1:wz:7:4:stop]"#]],
        );
        check_step(
            Step::Summary,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 5 of 5

                <b>5. Summary</b>
                Mode: 🚀 Live
                Instagram: <b>&lt;Promo&gt;</b>
                Media: quotes &amp; co
                Schedule: <b>7 posts a day</b>, <b>08:00–20:00</b> Europe/Berlin
                Daily summary: <b>09:00</b> Europe/Berlin

                Tap ✅ Complete to apply these settings.
                ---
                [← Back | 1:wz:7:5:back] [✅ Complete | 1:wz:7:5:done]
                [✖️ Cancel setup | 1:wz:7:5:stop]"#]],
        );
        expect![[r#"
            ✅ <b>Storyline is set up for this chat.</b> It is now enabled here.

            Mode: 🚀 Live
            Instagram: <b>&lt;Promo&gt;</b>
            Media: quotes &amp; co
            Schedule: <b>7 posts a day</b>, <b>08:00–20:00</b> Europe/Berlin
            Daily summary: <b>09:00</b> Europe/Berlin

            Change anything later in /settings; /help lists every command."#]]
        .assert_eq(&completed_text(&c, &view, true));
    }

    #[test]
    fn steps_without_accounts_or_media() {
        let brand = account(3, "Main Brand", Some("brand"));
        let view = View {
            accounts: &[],
            chat_account: Some(&brand),
            categories: &[],
        };
        check_step(
            Step::Instagram,
            &choices(),
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 2 of 5

                <b>2. Instagram</b>
                This chat posts to <b>@brand</b>. Tap Next → to keep it, or connect or pick another account.

                Chosen: <b>@brand</b> (as now)
                ---
                [🔗 Connect Instagram | 1:wz:7:2:conn]
                [← Back | 1:wz:7:2:back] [Next → | 1:wz:7:2:next]
                [✖️ Cancel setup | 1:wz:7:2:stop]"#]],
        );
        check_step(
            Step::Media,
            &choices(),
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 3 of 5

                <b>3. Media</b>
                The media folder has no category folders yet, so this chat will post from every one. Add folders of photos and videos to the media folder, then /scan.
                ---
                [← Back | 1:wz:7:3:back] [Next → | 1:wz:7:3:next]
                [✖️ Cancel setup | 1:wz:7:3:stop]"#]],
        );
        expect![[r#"
            ✅ <b>Storyline is set up for this chat.</b>

            Mode: 🧪 Dry run (nothing is published)
            Instagram: <b>@brand</b> (as now)
            Media: every category folder (none yet)
            Schedule: <b>3 posts a day</b>, <b>14:00–02:00</b> Europe/Berlin
            Daily summary: <b>09:00</b> Europe/Berlin

            Change anything later in /settings; /help lists every command."#]]
        .assert_eq(&completed_text(&choices(), &view, false));
    }

    #[test]
    fn the_instagram_step_offers_next_when_the_chat_has_an_account() {
        let accounts = [
            account(3, "Main Brand", Some("brand")),
            account(12, "<Promo>", None),
        ];
        let categories = [("quotes".to_string(), 1)];
        let view = View {
            accounts: &accounts,
            chat_account: Some(&accounts[0]),
            categories: &categories,
        };
        let mut c = choices();
        c.posts_per_day = 1;
        // Nothing picked: the chat's account is ticked and kept by Next →.
        check_step(
            Step::Instagram,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 2 of 5

                <b>2. Instagram</b>
                This chat posts to <b>@brand</b>. Tap Next → to keep it, or connect or pick another account.

                Or pick an account that is already added:

                Chosen: <b>@brand</b> (as now)
                ---
                [✅ Main Brand (@brand) | 1:wz:7:2:acct:3]
                [<Promo> | 1:wz:7:2:acct:12]
                [🔗 Connect Instagram | 1:wz:7:2:conn]
                [← Back | 1:wz:7:2:back] [Next → | 1:wz:7:2:next]
                [✖️ Cancel setup | 1:wz:7:2:stop]"#]],
        );
        // Another account picked: a button goes back to the chat's own.
        c.account_id = Some(12);
        check_step(
            Step::Instagram,
            &c,
            &view,
            expect![[r#"
                🧭 <b>Set up Storyline</b> · step 2 of 5

                <b>2. Instagram</b>
                This chat posts to <b>@brand</b>. Tap Next → to keep it, or connect or pick another account.

                Or pick an account that is already added:

                Chosen: <b>&lt;Promo&gt;</b>
                ---
                [Main Brand (@brand) | 1:wz:7:2:acct:3]
                [✅ <Promo> | 1:wz:7:2:acct:12]
                [🔗 Connect Instagram | 1:wz:7:2:conn]
                [↩️ Keep @brand | 1:wz:7:2:skip]
                [← Back | 1:wz:7:2:back] [Next → | 1:wz:7:2:next]
                [✖️ Cancel setup | 1:wz:7:2:stop]"#]],
        );
        // One category and one post a day are counted in the singular.
        expect![[r#"
            ✅ <b>Storyline is set up for this chat.</b>

            Mode: 🧪 Dry run (nothing is published)
            Instagram: <b>&lt;Promo&gt;</b>
            Media: the one category folder
            Schedule: <b>1 post a day</b>, <b>14:00–02:00</b> Europe/Berlin
            Daily summary: <b>09:00</b> Europe/Berlin

            Change anything later in /settings; /help lists every command."#]]
        .assert_eq(&completed_text(&c, &view, false));
        let shown = |effect: Effect| match effect {
            Effect::Show { toast, .. } => toast,
            other => panic!("{other:?}"),
        };
        let names = ["quotes".to_string()];
        expect!["1 post a day"].assert_eq(&shown(press(
            Step::Schedule,
            &c,
            Action::PostsPerDay(1),
            &names,
        )));
        expect!["all day from 09:00"].assert_eq(&shown(press(
            Step::Schedule,
            &c,
            Action::Hours { start: 9, end: 9 },
            &names,
        )));
    }

    #[test]
    fn an_older_wizard_message_says_where_the_set_up_moved() {
        expect![[r#"
            🧭 <b>Set up Storyline</b>

            This set-up moved to a newer message below (now at step 4 of 5, Schedule). Its buttons are there."#]]
        .assert_eq(&moved_text(Step::Schedule));
    }

    #[test]
    fn presses_round_trip_through_callback_data() {
        let mut all = Vec::new();
        for step in Step::ALL {
            for action in [
                Action::DryRun(true),
                Action::DryRun(false),
                Action::Next,
                Action::Back,
                Action::Cancel,
                Action::Connect,
                Action::Skip,
                Action::Account(1),
                Action::Account(i64::MAX),
                Action::Category {
                    key: 0,
                    include: true,
                },
                Action::Category {
                    key: u32::MAX,
                    include: false,
                },
                Action::PostsPerDay(1),
                Action::PostsPerDay(50),
                Action::Hours { start: 0, end: 23 },
                Action::Custom(Field::PostsPerDay),
                Action::Custom(Field::Hours),
                Action::Custom(Field::Timezone),
                Action::Complete,
            ] {
                if offered(step, action) {
                    all.push(Press {
                        wizard_id: i64::MAX,
                        step,
                        action,
                    });
                }
            }
        }
        assert_eq!(all.len(), 5 + 6 + 5 + 9 + 3);
        for press in all {
            let data = callback::encode(Callback::Wizard(press));
            assert!(data.len() <= callback::MAX_LEN, "{data}");
            assert_eq!(
                callback::parse(&data),
                Some(Callback::Wizard(press)),
                "{data}"
            );
        }
    }

    #[test]
    fn rejects_anything_else() {
        for data in [
            "1:wz",
            "1:wz:7",
            "1:wz:7:1",
            "1:wz:7:1:",
            "1:wz:0:1:next",
            "1:wz:07:1:next",
            "1:wz:-7:1:next",
            "1:wz:7:0:next",
            "1:wz:7:6:next",
            "1:wz:7:01:next",
            "1:wz:7:5:next",
            "1:wz:7:1:back",
            "1:wz:7:2:dry:1",
            "1:wz:7:1:dry:2",
            "1:wz:7:1:next:x",
            "1:wz:7:2:acct:0",
            "1:wz:7:2:acct:x",
            "1:wz:7:3:cat:A5EBD2E1:1",
            "1:wz:7:3:cat:a5ebd2e:1",
            "1:wz:7:3:cat:a5ebd2e1:2",
            "1:wz:7:4:ppd:0",
            "1:wz:7:4:ppd:51",
            "1:wz:7:4:ppd:05",
            "1:wz:7:4:hrs:24:1",
            "1:wz:7:4:hrs:9",
            "1:wz:7:4:hrs:09:21",
            "1:wz:7:4:tz:x",
            "1:wz:7:3:done",
            "1:wz:99999999999999999999:1:next",
            "2:wz:7:1:next",
        ] {
            assert_eq!(callback::parse(data), None, "{data:?}");
        }
    }

    fn categories() -> Vec<String> {
        vec!["products".to_string(), "quotes".to_string()]
    }

    #[test]
    fn presses_move_and_change_the_choices() {
        let c = choices();
        let cats = categories();
        let shown = |effect: Effect| match effect {
            Effect::Show { step, choices, .. } => (step, choices),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            shown(press(Step::Mode, &c, Action::Next, &cats)).0,
            Step::Instagram
        );
        assert_eq!(
            shown(press(Step::Summary, &c, Action::Back, &cats)).0,
            Step::Schedule
        );
        let (step, off) = shown(press(Step::Mode, &c, Action::DryRun(false), &cats));
        assert_eq!((step, off.dry_run), (Step::Mode, false));
        let (step, picked) = shown(press(Step::Instagram, &c, Action::Account(3), &cats));
        assert_eq!((step, picked.account_id), (Step::Media, Some(3)));
        let (_, skipped) = shown(press(Step::Instagram, &picked, Action::Skip, &cats));
        assert_eq!(skipped.account_id, None);

        let products_off = Action::Category {
            key: category_key("products"),
            include: false,
        };
        let (_, one_off) = shown(press(Step::Media, &c, products_off, &cats));
        assert!(one_off.excluded_categories.contains("products"));
        let quotes_off = Action::Category {
            key: category_key("quotes"),
            include: false,
        };
        assert!(matches!(
            press(Step::Media, &one_off, quotes_off, &cats),
            Effect::Alert(_)
        ));
        // A double press sets what the button showed: still off, no error.
        let (_, again) = shown(press(Step::Media, &one_off, products_off, &cats));
        assert_eq!(again, one_off);
        let gone = Action::Category {
            key: category_key("memes"),
            include: false,
        };
        assert!(matches!(
            press(Step::Media, &c, gone, &cats),
            Effect::Alert(_)
        ));

        let (_, five) = shown(press(Step::Schedule, &c, Action::PostsPerDay(5), &cats));
        assert_eq!(five.posts_per_day, 5);
        let (_, nine) = shown(press(
            Step::Schedule,
            &c,
            Action::Hours { start: 9, end: 21 },
            &cats,
        ));
        assert_eq!((nine.hours_start, nine.hours_end), (9, 21));
        assert_eq!(
            press(Step::Schedule, &c, Action::Custom(Field::Timezone), &cats),
            Effect::Ask(Field::Timezone)
        );
        assert_eq!(
            press(Step::Summary, &c, Action::Complete, &cats),
            Effect::Complete
        );
        assert_eq!(
            press(Step::Media, &c, Action::Cancel, &cats),
            Effect::Cancel
        );
    }

    #[test]
    fn the_mix_after_setup() {
        let cats = categories();
        let off = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let mix = |pairs: &[(&str, u32)]| {
            pairs
                .iter()
                .map(|(n, w)| (n.to_string(), *w))
                .collect::<BTreeMap<_, _>>()
        };
        // Nothing off and every category alike: left alike.
        assert_eq!(mix_after_setup(&mix(&[]), &cats, &off(&[])), mix(&[]));
        assert_eq!(
            mix_after_setup(&mix(&[]), &cats, &off(&["products"])),
            mix(&[("products", 0), ("quotes", 1)])
        );
        // Weights the chat chose are kept; one switched back on gets their average.
        assert_eq!(
            mix_after_setup(
                &mix(&[("quotes", 70), ("products", 0), ("old", 5)]),
                &["products".into(), "quotes".into(), "travel".into()],
                &off(&[])
            ),
            mix(&[("old", 5), ("products", 70), ("quotes", 70), ("travel", 70)])
        );
        assert_eq!(
            mix_after_setup(&mix(&[("quotes", 70), ("products", 30)]), &cats, &off(&[])),
            mix(&[("quotes", 70), ("products", 30)])
        );
    }

    #[test]
    fn choices_start_from_the_chat_and_survive_json() {
        let settings = crate::domain::settings::resolve(
            &crate::domain::settings::ChatRow::new(1),
            &crate::config::Defaults {
                dry_run_mode: true,
                enable_instagram_api: false,
                posts_per_day: 3,
                posting_hours_start: 14,
                posting_hours_end: 2,
                timezone: "Europe/Berlin".parse::<crate::zone::Tz>().unwrap(),
            },
        );
        let weights: BTreeMap<String, u32> = [("quotes".to_string(), 10)].into();
        let c = Choices::from_current(&settings, &weights, &categories());
        assert_eq!(
            c.excluded_categories,
            BTreeSet::from(["products".to_string()])
        );
        assert_eq!(c.timezone, "Europe/Berlin");
        assert_eq!(Choices::from_json(&c.to_json()), Some(c.clone()));
        // A mix naming no current category leaves none out.
        let weights: BTreeMap<String, u32> = [("gone".to_string(), 10)].into();
        let all = Choices::from_current(&settings, &weights, &categories());
        assert!(all.excluded_categories.is_empty());
        let mut bad = c.clone();
        bad.posts_per_day = 0;
        assert_eq!(Choices::from_json(&bad.to_json()), None);
        bad = c.clone();
        bad.timezone = "Mars/Base".into();
        assert_eq!(Choices::from_json(&bad.to_json()), None);
        assert_eq!(Choices::from_json("{}"), None);
        assert_eq!(Field::from_name("wizard_hours_end"), Some(Field::HoursEnd));
        assert_eq!(Field::from_name("posts_per_day"), None);
    }
}
