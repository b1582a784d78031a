//! The data carried by inline buttons. Versioned ("1:" prefix), at most 64 bytes
//! (Telegram's limit), and parsed strictly: anything that is not exactly a button
//! we made is rejected, so a forged or stale press changes nothing.
//!
//! Settings buttons carry the value they set, not "toggle": a press on an old
//! menu, or a double press, sets what the user saw and is then a no-op.

pub mod wizard;

use crate::domain::history::{Anchor, Narrow, ANCHOR_MAX};
use crate::domain::settings::Toggle;

const VERSION: &str = "1";
pub const MAX_LEN: usize = 64;

/// A value the menu asks the user to type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    PostsPerDay,
    Hours,
    Timezone,
    Categories,
    Locks,
    /// The daily summary's hour, or off.
    Summary,
    /// The auto-tuner: off, or its metric, step and bounds.
    Tune,
}

/// What a button under a story does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryAction {
    Posted,
    Skip,
    /// Asks to confirm; the story keyboard turns into Yes / Back.
    Reject,
    RejectConfirmed,
    RejectCancelled,
    /// Publish this story through the Instagram API now.
    AutoPost,
    /// After an unknown publish outcome: it is on Instagram / publish again.
    WasPublished,
    PublishAgain,
}

impl StoryAction {
    fn code(self) -> &'static str {
        match self {
            StoryAction::Posted => "p",
            StoryAction::Skip => "s",
            StoryAction::Reject => "r",
            StoryAction::RejectConfirmed => "ry",
            StoryAction::RejectCancelled => "rn",
            StoryAction::AutoPost => "a",
            StoryAction::WasPublished => "up",
            StoryAction::PublishAgain => "ur",
        }
    }

    fn from_code(code: &str) -> Option<StoryAction> {
        Some(match code {
            "p" => StoryAction::Posted,
            "s" => StoryAction::Skip,
            "r" => StoryAction::Reject,
            "ry" => StoryAction::RejectConfirmed,
            "rn" => StoryAction::RejectCancelled,
            "a" => StoryAction::AutoPost,
            "up" => StoryAction::WasPublished,
            "ur" => StoryAction::PublishAgain,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Set {
        toggle: Toggle,
        value: bool,
    },
    Ask(Ask),
    Cancel,
    Refresh,
    Close,
    /// The menu's shortcuts to /queue and /schedule.
    ShowQueue,
    ShowSchedule,
    Story {
        action: StoryAction,
        queue_id: i64,
    },
    /// The menu's account button: opens the account selector.
    AccountMenu,
    /// "➕ Add account" in the selector: the same as /connect.
    AddAccount,
    /// The selector's button for one Instagram account (its id).
    Account(i64),
    /// The selector's Back: the settings menu again.
    BackToSettings,
    /// A button of the /init set-up wizard (`wizard` encodes and parses it).
    Wizard(wizard::Press),
    /// /history's ◀ ▶: the page (0 = newest) of the list as it stood when
    /// /history was sent (`anchor`), narrowed as asked.
    HistoryPage {
        narrow: Narrow,
        page: u32,
        anchor: Anchor,
    },
    /// ✅ Apply (or ✖️ Cancel) under a settings file's differences (its import id).
    Import {
        id: i64,
        apply: bool,
    },
    /// ↩️ Undo under an auto-tune change (its `tune_changes` id).
    UndoTune(i64),
}

fn toggle_code(toggle: Toggle) -> &'static str {
    match toggle {
        Toggle::DryRun => "dry",
        Toggle::InstagramApi => "api",
        Toggle::Paused => "pause",
        Toggle::AutoPost => "auto",
        Toggle::StoryButtonsAdminsOnly => "sbtn",
    }
}

pub fn encode(callback: Callback) -> String {
    match callback {
        Callback::Set { toggle, value } => {
            format!("{VERSION}:set:{}:{}", toggle_code(toggle), u8::from(value))
        }
        Callback::Ask(Ask::PostsPerDay) => format!("{VERSION}:ask:ppd"),
        Callback::Ask(Ask::Hours) => format!("{VERSION}:ask:hours"),
        Callback::Ask(Ask::Timezone) => format!("{VERSION}:ask:tz"),
        Callback::Ask(Ask::Categories) => format!("{VERSION}:ask:cat"),
        Callback::Ask(Ask::Locks) => format!("{VERSION}:ask:locks"),
        Callback::Ask(Ask::Summary) => format!("{VERSION}:ask:sum"),
        Callback::Ask(Ask::Tune) => format!("{VERSION}:ask:tune"),
        Callback::ShowQueue => format!("{VERSION}:queue"),
        Callback::ShowSchedule => format!("{VERSION}:schedule"),
        Callback::Story { action, queue_id } => {
            format!("{VERSION}:st:{}:{queue_id}", action.code())
        }
        Callback::Cancel => format!("{VERSION}:cancel"),
        Callback::Refresh => format!("{VERSION}:refresh"),
        Callback::Close => format!("{VERSION}:close"),
        Callback::AccountMenu => format!("{VERSION}:acct"),
        Callback::AddAccount => format!("{VERSION}:acct:add"),
        Callback::Account(id) => format!("{VERSION}:acct:{id}"),
        Callback::BackToSettings => format!("{VERSION}:back"),
        Callback::Wizard(press) => format!("{VERSION}:wz:{}", wizard::encode_press(press)),
        Callback::HistoryPage {
            narrow,
            page,
            anchor,
        } => format!(
            "{VERSION}:hist:{}:{page}:{}:{}:{}",
            narrow.code(),
            anchor.at,
            anchor.settings_id,
            anchor.post_id
        ),
        Callback::Import { id, apply } => {
            format!("{VERSION}:imp:{}:{id}", if apply { "a" } else { "c" })
        }
        Callback::UndoTune(id) => format!("{VERSION}:tundo:{id}"),
    }
}

pub fn parse(data: &str) -> Option<Callback> {
    if data.len() > MAX_LEN {
        return None;
    }
    let parts: Vec<&str> = data.split(':').collect();
    let callback = match parts.as_slice() {
        [VERSION, "set", toggle, value] => {
            let toggle = match *toggle {
                "dry" => Toggle::DryRun,
                "api" => Toggle::InstagramApi,
                "pause" => Toggle::Paused,
                "auto" => Toggle::AutoPost,
                "sbtn" => Toggle::StoryButtonsAdminsOnly,
                _ => return None,
            };
            let value = match *value {
                "0" => false,
                "1" => true,
                _ => return None,
            };
            Callback::Set { toggle, value }
        }
        [VERSION, "ask", "ppd"] => Callback::Ask(Ask::PostsPerDay),
        [VERSION, "ask", "hours"] => Callback::Ask(Ask::Hours),
        [VERSION, "ask", "tz"] => Callback::Ask(Ask::Timezone),
        [VERSION, "ask", "cat"] => Callback::Ask(Ask::Categories),
        [VERSION, "ask", "locks"] => Callback::Ask(Ask::Locks),
        [VERSION, "ask", "sum"] => Callback::Ask(Ask::Summary),
        [VERSION, "ask", "tune"] => Callback::Ask(Ask::Tune),
        [VERSION, "tundo", id] => Callback::UndoTune(parse_id(id)?),
        [VERSION, "queue"] => Callback::ShowQueue,
        [VERSION, "schedule"] => Callback::ShowSchedule,
        [VERSION, "st", action, id] => Callback::Story {
            action: StoryAction::from_code(action)?,
            queue_id: parse_id(id)?,
        },
        [VERSION, "cancel"] => Callback::Cancel,
        [VERSION, "refresh"] => Callback::Refresh,
        [VERSION, "close"] => Callback::Close,
        [VERSION, "acct"] => Callback::AccountMenu,
        [VERSION, "acct", "add"] => Callback::AddAccount,
        [VERSION, "acct", id] => Callback::Account(parse_id(id)?),
        [VERSION, "back"] => Callback::BackToSettings,
        [VERSION, "wz", rest @ ..] => Callback::Wizard(wizard::parse_press(rest)?),
        [VERSION, "hist", narrow, page, at, settings_id, post_id] => Callback::HistoryPage {
            narrow: Narrow::from_code(narrow)?,
            page: parse_page(page)?,
            anchor: Anchor {
                at: parse_id(at).filter(|at| *at <= ANCHOR_MAX)?,
                settings_id: parse_count(settings_id)?,
                post_id: parse_count(post_id)?,
            },
        },
        [VERSION, "imp", action, id] => Callback::Import {
            id: parse_id(id)?,
            apply: match *action {
                "a" => true,
                "c" => false,
                _ => return None,
            },
        },
        _ => return None,
    };
    Some(callback)
}

/// A page number as we print it: "0", or a positive one without a leading zero.
fn parse_page(text: &str) -> Option<u32> {
    u32::try_from(parse_count(text)?).ok()
}

/// "0", or a positive number up to `ANCHOR_MAX` without a leading zero.
fn parse_count(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    parse_id(text).filter(|n| *n <= ANCHOR_MAX)
}

/// A positive decimal id, exactly as we print it (no sign, no leading zero).
fn parse_id(text: &str) -> Option<i64> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_button_round_trips_within_the_limit() {
        let mut all = vec![
            Callback::Ask(Ask::PostsPerDay),
            Callback::Ask(Ask::Hours),
            Callback::Ask(Ask::Timezone),
            Callback::Ask(Ask::Categories),
            Callback::Ask(Ask::Locks),
            Callback::Ask(Ask::Summary),
            Callback::ShowQueue,
            Callback::ShowSchedule,
            Callback::Story {
                action: StoryAction::Posted,
                queue_id: 1,
            },
            Callback::Story {
                action: StoryAction::Skip,
                queue_id: i64::MAX,
            },
            Callback::Story {
                action: StoryAction::Reject,
                queue_id: 42,
            },
            Callback::Story {
                action: StoryAction::RejectConfirmed,
                queue_id: 42,
            },
            Callback::Story {
                action: StoryAction::RejectCancelled,
                queue_id: 42,
            },
            Callback::Story {
                action: StoryAction::AutoPost,
                queue_id: 42,
            },
            Callback::Story {
                action: StoryAction::WasPublished,
                queue_id: 42,
            },
            Callback::Story {
                action: StoryAction::PublishAgain,
                queue_id: 42,
            },
            Callback::Cancel,
            Callback::Refresh,
            Callback::Close,
            Callback::AccountMenu,
            Callback::AddAccount,
            Callback::Account(1),
            Callback::Account(i64::MAX),
            Callback::BackToSettings,
            Callback::HistoryPage {
                narrow: Narrow::All,
                page: 0,
                anchor: Anchor {
                    at: 1_767_225_600,
                    settings_id: 0,
                    post_id: 0,
                },
            },
            Callback::HistoryPage {
                narrow: Narrow::Posts,
                page: u32::MAX,
                anchor: Anchor {
                    at: ANCHOR_MAX,
                    settings_id: ANCHOR_MAX,
                    post_id: ANCHOR_MAX,
                },
            },
            Callback::HistoryPage {
                narrow: Narrow::Settings,
                page: 12,
                anchor: Anchor {
                    at: 1,
                    settings_id: 5,
                    post_id: 17,
                },
            },
            Callback::Import { id: 1, apply: true },
            Callback::Import {
                id: i64::MAX,
                apply: false,
            },
            Callback::Ask(Ask::Tune),
            Callback::UndoTune(1),
            Callback::UndoTune(i64::MAX),
        ];
        for toggle in [
            Toggle::DryRun,
            Toggle::InstagramApi,
            Toggle::Paused,
            Toggle::AutoPost,
            Toggle::StoryButtonsAdminsOnly,
        ] {
            for value in [false, true] {
                all.push(Callback::Set { toggle, value });
            }
        }
        for c in all {
            let data = encode(c);
            assert!(data.len() <= MAX_LEN);
            assert_eq!(parse(&data), Some(c), "{data}");
        }
    }

    #[test]
    fn rejects_anything_else() {
        for data in [
            "",
            "1",
            "1:",
            "2:refresh",
            "1:refresh:",
            "1:set:dry",
            "1:set:dry:2",
            "1:set:dry:1:x",
            "1:set:admin:1",
            "1:ask:pdd",
            "settings_toggle:dry_run_mode",
            "1:REFRESH",
            "1:st:p:",
            "1:st:p:0",
            "1:st:p:07",
            "1:st:p:-5",
            "1:st:p:+5",
            "1:st:x:5",
            "1:st:p:99999999999999999999",
            "1:st:p:5:6",
            "1:acct:",
            "1:imp:a:0",
            "1:imp:x:5",
            "1:imp:a",
            "1:acct:0",
            "1:acct:-1",
            "1:acct:01",
            "1:acct:x",
            "1:acct:1:2",
            "1:acct:99999999999999999999",
            "1:back:1",
            "1:hist:a:0:1767225600:1",
            "1:hist:x:0:1767225600:1:1",
            "1:hist:a:00:1767225600:1:1",
            "1:hist:a:01:1767225600:1:1",
            "1:hist:a:-1:1767225600:1:1",
            "1:hist:a:4294967296:1767225600:1:1",
            "1:hist:a:1:0:1:1",
            "1:hist:a:1:-5:1:1",
            "1:hist:a:1:1000000000000:1:1",
            "1:hist:a:1:1767225600:1000000000000:1",
            "1:hist:a:1:1767225600:1:01",
            "1:hist:a:1:1767225600:1:1:9",
            &format!("1:refresh{}", " ".repeat(70)),
        ] {
            assert_eq!(parse(data), None, "{data:?}");
        }
    }

    // ---- property tests (`cargo test --lib fuzz_callback`) ----

    use crate::domain::wizard::{Action, Field, Press, Step};
    use crate::fuzz_input::{self, mutate_text, mutations, text_from};
    use proptest::prelude::*;

    /// The characters button data is made of.
    const DATA_ALPHABET: &str = "1:0123456789abcdefsetaskdrypiuoqwzxcvnmhlr-+ ";

    const DATA_PIECES: &[&[u8]] = &[
        b":",
        b"1:",
        b"2:",
        b"set",
        b"ask",
        b"st",
        b"acct",
        b"wz",
        b"hist",
        b"add",
        b"0",
        b"00",
        b"-1",
        b"9223372036854775807",
        b"9223372036854775808",
        b"ffffffff",
        b"\xc3\xa9",
    ];

    fn any_toggle() -> impl Strategy<Value = Toggle> {
        prop::sample::select(vec![
            Toggle::DryRun,
            Toggle::InstagramApi,
            Toggle::Paused,
            Toggle::AutoPost,
            Toggle::StoryButtonsAdminsOnly,
        ])
    }

    fn any_story_action() -> impl Strategy<Value = StoryAction> {
        prop::sample::select(vec![
            StoryAction::Posted,
            StoryAction::Skip,
            StoryAction::Reject,
            StoryAction::RejectConfirmed,
            StoryAction::RejectCancelled,
            StoryAction::AutoPost,
            StoryAction::WasPublished,
            StoryAction::PublishAgain,
        ])
    }

    /// A wizard press on a step that shows its button (only those are made).
    fn any_press() -> impl Strategy<Value = Press> {
        let steps_except = |skip: Step| {
            let steps: Vec<Step> = Step::ALL.into_iter().filter(|s| *s != skip).collect();
            prop::sample::select(steps)
        };
        let step_and_action = prop_oneof![
            prop::sample::select(Step::ALL.to_vec()).prop_map(|s| (s, Action::Cancel)),
            steps_except(Step::Summary).prop_map(|s| (s, Action::Next)),
            steps_except(Step::Mode).prop_map(|s| (s, Action::Back)),
            any::<bool>().prop_map(|on| (Step::Mode, Action::DryRun(on))),
            Just((Step::Instagram, Action::Connect)),
            Just((Step::Instagram, Action::Skip)),
            fuzz_input::positive_id().prop_map(|id| (Step::Instagram, Action::Account(id))),
            (any::<u32>(), any::<bool>())
                .prop_map(|(key, include)| (Step::Media, Action::Category { key, include })),
            (crate::domain::settings::POSTS_PER_DAY_MIN
                ..=crate::domain::settings::POSTS_PER_DAY_MAX)
                .prop_map(|n| (Step::Schedule, Action::PostsPerDay(n))),
            (
                0..=crate::domain::settings::HOUR_MAX,
                0..=crate::domain::settings::HOUR_MAX
            )
                .prop_map(|(start, end)| (Step::Schedule, Action::Hours { start, end })),
            prop::sample::select(vec![Field::PostsPerDay, Field::Hours, Field::Timezone])
                .prop_map(|f| (Step::Schedule, Action::Custom(f))),
            Just((Step::Summary, Action::Complete)),
        ];
        (fuzz_input::positive_id(), step_and_action).prop_map(|(wizard_id, (step, action))| Press {
            wizard_id,
            step,
            action,
        })
    }

    /// Every button we make: ids are positive, as the database hands them out.
    fn any_callback() -> impl Strategy<Value = Callback> {
        prop_oneof![
            (any_toggle(), any::<bool>())
                .prop_map(|(toggle, value)| Callback::Set { toggle, value }),
            prop::sample::select(vec![
                Ask::PostsPerDay,
                Ask::Hours,
                Ask::Timezone,
                Ask::Categories,
                Ask::Locks,
                Ask::Summary,
                Ask::Tune,
            ])
            .prop_map(Callback::Ask),
            fuzz_input::positive_id().prop_map(Callback::UndoTune),
            prop::sample::select(vec![
                Callback::Cancel,
                Callback::Refresh,
                Callback::Close,
                Callback::ShowQueue,
                Callback::ShowSchedule,
                Callback::AccountMenu,
                Callback::AddAccount,
                Callback::BackToSettings,
            ]),
            (any_story_action(), fuzz_input::positive_id())
                .prop_map(|(action, queue_id)| Callback::Story { action, queue_id }),
            fuzz_input::positive_id().prop_map(Callback::Account),
            any_press().prop_map(Callback::Wizard),
            (
                prop::sample::select(vec![Narrow::All, Narrow::Settings, Narrow::Posts]),
                any::<u32>(),
                1..=ANCHOR_MAX,
                0..=ANCHOR_MAX,
                0..=ANCHOR_MAX,
            )
                .prop_map(|(narrow, page, at, settings_id, post_id)| {
                    Callback::HistoryPage {
                        narrow,
                        page,
                        anchor: Anchor {
                            at,
                            settings_id,
                            post_id,
                        },
                    }
                }),
        ]
    }

    /// Every word button data uses, and spellings a number could take.
    const TOKENS: &[&str] = &[
        "1",
        "2",
        "set",
        "dry",
        "api",
        "pause",
        "auto",
        "ask",
        "ppd",
        "hours",
        "tz",
        "cat",
        "locks",
        "tune",
        "tundo",
        "queue",
        "schedule",
        "st",
        "hist",
        "p",
        "s",
        "r",
        "ry",
        "rn",
        "a",
        "up",
        "ur",
        "cancel",
        "refresh",
        "close",
        "acct",
        "add",
        "back",
        "wz",
        "next",
        "stop",
        "conn",
        "skip",
        "hrs",
        "c",
        "done",
        "0",
        "00",
        "01",
        "-1",
        "+1",
        "5",
        "6",
        "23",
        "24",
        "50",
        "51",
        "9223372036854775807",
        "9223372036854775808",
        "ffffffff",
        "FFFFFFFF",
        "0000000g",
        "",
        " ",
    ];

    /// A change to one ':'-separated word of button data.
    #[derive(Debug, Clone)]
    enum WordEdit {
        Replace(usize, &'static str),
        /// A leading zero, a sign, a space: another spelling of the same number.
        Prefix(usize, &'static str),
        Suffix(usize, &'static str),
        Remove(usize),
        Repeat(usize),
        Insert(usize, &'static str),
    }

    fn word_edit() -> impl Strategy<Value = WordEdit> {
        let token = prop::sample::select(TOKENS);
        let affix = prop::sample::select(&["0", "+", "-", " ", "x", ":"][..]);
        prop_oneof![
            (any::<usize>(), token.clone()).prop_map(|(at, t)| WordEdit::Replace(at, t)),
            (any::<usize>(), affix.clone()).prop_map(|(at, t)| WordEdit::Prefix(at, t)),
            (any::<usize>(), affix).prop_map(|(at, t)| WordEdit::Suffix(at, t)),
            any::<usize>().prop_map(WordEdit::Remove),
            any::<usize>().prop_map(WordEdit::Repeat),
            (any::<usize>(), token).prop_map(|(at, t)| WordEdit::Insert(at, t)),
        ]
    }

    fn edit_words(data: &str, edit: &WordEdit) -> String {
        let mut words: Vec<String> = data.split(':').map(str::to_string).collect();
        let len = words.len();
        match edit {
            WordEdit::Replace(at, t) => words[at % len] = t.to_string(),
            WordEdit::Prefix(at, t) => words[at % len].insert_str(0, t),
            WordEdit::Suffix(at, t) => words[at % len].push_str(t),
            WordEdit::Remove(at) => {
                words.remove(at % len);
            }
            WordEdit::Repeat(at) => {
                let word = words[at % len].clone();
                words.insert(at % len, word);
            }
            WordEdit::Insert(at, t) => words.insert(at % (len + 1), t.to_string()),
        }
        words.join(":")
    }

    proptest! {
        #![proptest_config(fuzz_input::config(1024))]

        /// encode → parse is the identity, within Telegram's 64 bytes.
        #[test]
        fn fuzz_callback_round_trips(callback in any_callback()) {
            let data = encode(callback);
            prop_assert!(data.len() <= MAX_LEN, "{} is {} bytes", data, data.len());
            prop_assert_eq!(parse(&data), Some(callback));
        }

        /// Arbitrary data never panics, and what parses is exactly the encoding of
        /// what it parsed to: one spelling per button, nothing else accepted.
        #[test]
        fn fuzz_callback_arbitrary_data_parses_only_as_encoded(
            data in text_from(DATA_ALPHABET, 80),
        ) {
            if let Some(callback) = parse(&data) {
                prop_assert_eq!(encode(callback), data);
            }
        }

        /// Truncated, flipped or spliced button data never panics and is either
        /// refused or exactly another button's encoding.
        #[test]
        fn fuzz_callback_mutated_data_parses_only_as_encoded(
            callback in any_callback(),
            changes in mutations(DATA_PIECES),
        ) {
            let data = mutate_text(&encode(callback), &changes);
            if let Some(parsed) = parse(&data) {
                prop_assert_eq!(encode(parsed), data);
            }
        }

        /// Button data with a word replaced, respelled, dropped, repeated or
        /// added is refused unless it is exactly another button's encoding.
        #[test]
        fn fuzz_callback_edited_words_parse_only_as_encoded(
            callback in any_callback(),
            edits in prop::collection::vec(word_edit(), 1..=2),
        ) {
            let data = edits.iter().fold(encode(callback), |data, edit| edit_words(&data, edit));
            if let Some(parsed) = parse(&data) {
                prop_assert_eq!(encode(parsed), data);
            }
        }
    }
}
