//! The wizard's button data, after `callback`'s "1:wz:" prefix: which wizard,
//! on which step, doing what (`Press`), encoded and strictly parsed. The wizard
//! (`crate::domain::wizard`) decides what a press does; this side only names it.

use crate::domain::settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Mode,
    Instagram,
    Media,
    Schedule,
    Summary,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Mode,
        Step::Instagram,
        Step::Media,
        Step::Schedule,
        Step::Summary,
    ];

    /// 1 to 5, as stored and as carried by the buttons.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn from_number(number: u8) -> Option<Step> {
        Step::ALL.get(usize::from(number).checked_sub(1)?).copied()
    }

    pub(crate) fn next(self) -> Option<Step> {
        Step::from_number(self.number() + 1)
    }

    pub(crate) fn previous(self) -> Option<Step> {
        Step::from_number(self.number() - 1)
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Step::Mode => "Operating mode",
            Step::Instagram => "Instagram",
            Step::Media => "Media",
            Step::Schedule => "Schedule",
            Step::Summary => "Summary",
        }
    }
}

/// A value the wizard asks the user to type, with the same checks as /settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    PostsPerDay,
    Hours,
    /// The end hour, after a prompt answered with the start hour only.
    HoursEnd,
    Timezone,
    /// The daily summary's hour, or "off".
    SummaryHour,
}

impl Field {
    /// The `pending_inputs.field` of the prompt.
    pub fn name(self) -> &'static str {
        match self {
            Field::PostsPerDay => "wizard_posts",
            Field::Hours => "wizard_hours",
            Field::HoursEnd => "wizard_hours_end",
            Field::Timezone => "wizard_timezone",
            Field::SummaryHour => "wizard_summary_hour",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        [
            Field::PostsPerDay,
            Field::Hours,
            Field::HoursEnd,
            Field::Timezone,
            Field::SummaryHour,
        ]
        .into_iter()
        .find(|field| field.name() == name)
    }
}

// ---- button presses -------------------------------------------------------------------

/// A press on a wizard button: which wizard, on which step, doing what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    pub wizard_id: i64,
    pub step: Step,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DryRun(bool),
    Next,
    Back,
    Cancel,
    /// Step 2: send the chat the /connect link.
    Connect,
    /// Step 2: go on without choosing an account.
    Skip,
    /// Step 2: post to this existing account.
    Account(i64),
    /// Step 3: the category whose `category_key` this is goes on or off.
    Category {
        key: u32,
        include: bool,
    },
    PostsPerDay(u32),
    Hours {
        start: u32,
        end: u32,
    },
    Custom(Field),
    Complete,
}

/// Whether a step shows a button doing this; anything else is not a button we made.
pub(crate) fn offered(step: Step, action: Action) -> bool {
    match action {
        Action::Cancel => true,
        Action::Next => step != Step::Summary,
        Action::Back => step != Step::Mode,
        Action::DryRun(_) => step == Step::Mode,
        Action::Connect | Action::Skip | Action::Account(_) => step == Step::Instagram,
        Action::Category { .. } => step == Step::Media,
        Action::PostsPerDay(_) | Action::Hours { .. } => step == Step::Schedule,
        Action::Custom(field) => step == Step::Schedule && field != Field::HoursEnd,
        Action::Complete => step == Step::Summary,
    }
}

/// A short, stable name for a category in button data (folder names can be
/// longer than Telegram's 64 bytes): FNV-1a of the name.
pub fn category_key(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The press as button data, after `callback`'s "1:wz:" prefix.
pub fn encode_press(press: Press) -> String {
    let action = match press.action {
        Action::DryRun(on) => format!("dry:{}", u8::from(on)),
        Action::Next => "next".to_string(),
        Action::Back => "back".to_string(),
        Action::Cancel => "stop".to_string(),
        Action::Connect => "conn".to_string(),
        Action::Skip => "skip".to_string(),
        Action::Account(id) => format!("acct:{id}"),
        Action::Category { key, include } => format!("cat:{key:08x}:{}", u8::from(include)),
        Action::PostsPerDay(n) => format!("ppd:{n}"),
        Action::Hours { start, end } => format!("hrs:{start}:{end}"),
        Action::Custom(Field::PostsPerDay) => "ppd:c".to_string(),
        Action::Custom(Field::Hours | Field::HoursEnd) => "hrs:c".to_string(),
        Action::Custom(Field::Timezone) => "tz:c".to_string(),
        Action::Custom(Field::SummaryHour) => "sum:c".to_string(),
        Action::Complete => "done".to_string(),
    };
    format!("{}:{}:{action}", press.wizard_id, press.step.number())
}

/// The parts of button data after "1:wz", parsed strictly: only what
/// `encode_press` makes for a button the step shows.
pub fn parse_press(parts: &[&str]) -> Option<Press> {
    let [wizard_id, step, action @ ..] = parts else {
        return None;
    };
    let wizard_id = parse_positive(wizard_id)?;
    let step = Step::from_number(u8::try_from(parse_number(step, 5)?).ok()?)?;
    let action = match action {
        ["dry", on] => Action::DryRun(parse_flag(on)?),
        ["next"] => Action::Next,
        ["back"] => Action::Back,
        ["stop"] => Action::Cancel,
        ["conn"] => Action::Connect,
        ["skip"] => Action::Skip,
        ["acct", id] => Action::Account(parse_positive(id)?),
        ["cat", key, include] => {
            let lower_hex = key.len() == 8
                && key
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !lower_hex {
                return None;
            }
            Action::Category {
                key: u32::from_str_radix(key, 16).ok()?,
                include: parse_flag(include)?,
            }
        }
        ["ppd", "c"] => Action::Custom(Field::PostsPerDay),
        ["ppd", n] => Action::PostsPerDay(
            parse_number(n, settings::POSTS_PER_DAY_MAX)
                .filter(|n| *n >= settings::POSTS_PER_DAY_MIN)?,
        ),
        ["hrs", "c"] => Action::Custom(Field::Hours),
        ["hrs", start, end] => Action::Hours {
            start: parse_number(start, settings::HOUR_MAX)?,
            end: parse_number(end, settings::HOUR_MAX)?,
        },
        ["tz", "c"] => Action::Custom(Field::Timezone),
        ["sum", "c"] => Action::Custom(Field::SummaryHour),
        ["done"] => Action::Complete,
        _ => return None,
    };
    offered(step, action).then_some(Press {
        wizard_id,
        step,
        action,
    })
}

/// A positive decimal id, exactly as we print it (no sign, no leading zero).
fn parse_positive(text: &str) -> Option<i64> {
    if text.starts_with('0') {
        return None;
    }
    digits(text)?.parse().ok()
}

/// A decimal from 0 to `max`, exactly as we print it.
fn parse_number(text: &str, max: u32) -> Option<u32> {
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    digits(text)?.parse().ok().filter(|n| *n <= max)
}

fn digits(text: &str) -> Option<&str> {
    (!text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit()))
        .then_some(text)
}

fn parse_flag(text: &str) -> Option<bool> {
    match text {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}
