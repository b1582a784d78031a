//! The data carried by inline buttons. Versioned ("1:" prefix), at most 64 bytes
//! (Telegram's limit), and parsed strictly: anything that is not exactly a button
//! we made is rejected, so a forged or stale press changes nothing.
//!
//! Settings buttons carry the value they set, not "toggle": a press on an old
//! menu, or a double press, sets what the user saw and is then a no-op.

use crate::settings::Toggle;

const VERSION: &str = "1";
pub const MAX_LEN: usize = 64;

/// A value the menu asks the user to type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    PostsPerDay,
    Hours,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Set { toggle: Toggle, value: bool },
    Ask(Ask),
    Cancel,
    Refresh,
    Close,
}

fn toggle_code(toggle: Toggle) -> &'static str {
    match toggle {
        Toggle::DryRun => "dry",
        Toggle::InstagramApi => "api",
        Toggle::Paused => "pause",
    }
}

pub fn encode(callback: Callback) -> String {
    match callback {
        Callback::Set { toggle, value } => {
            format!("{VERSION}:set:{}:{}", toggle_code(toggle), u8::from(value))
        }
        Callback::Ask(Ask::PostsPerDay) => format!("{VERSION}:ask:ppd"),
        Callback::Ask(Ask::Hours) => format!("{VERSION}:ask:hours"),
        Callback::Cancel => format!("{VERSION}:cancel"),
        Callback::Refresh => format!("{VERSION}:refresh"),
        Callback::Close => format!("{VERSION}:close"),
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
        [VERSION, "cancel"] => Callback::Cancel,
        [VERSION, "refresh"] => Callback::Refresh,
        [VERSION, "close"] => Callback::Close,
        _ => return None,
    };
    Some(callback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_button_round_trips_within_the_limit() {
        let mut all = vec![
            Callback::Ask(Ask::PostsPerDay),
            Callback::Ask(Ask::Hours),
            Callback::Cancel,
            Callback::Refresh,
            Callback::Close,
        ];
        for toggle in [Toggle::DryRun, Toggle::InstagramApi, Toggle::Paused] {
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
            &format!("1:refresh{}", " ".repeat(70)),
        ] {
            assert_eq!(parse(data), None, "{data:?}");
        }
    }
}
