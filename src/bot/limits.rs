//! The per-chat limit on commands and button presses (`[limits]` in
//! storyline.toml; the buckets are `domain::limits::CommandLimiter`, kept in the
//! core's memory, so a restart refills them). An update over the limit is
//! confirmed like any other, but nothing of it is done, now or later: a press
//! still gets its answer (Telegram requires one) with a short text, and a
//! command gets one notice in a served chat, then silence until the bucket is
//! full again. Other messages (a prompt's answer, a document) are not counted.

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::{debug, info};
use rusqlite::Transaction;

use crate::config::Config;
use crate::domain::limits::{Admission, CommandLimiter};
use crate::domain::ui;
use crate::telegram::{self, Outgoing, Update};

/// The chat whose bucket an update draws on: a command or a press in a chat.
pub fn counted_chat(update: &Update, bot_username: Option<&str>) -> Option<i64> {
    if let Some(query) = &update.callback_query {
        return query.message.as_ref().map(|m| m.chat.id);
    }
    let message = update.message.as_ref()?;
    let from = message.from.as_ref()?;
    if from.is_bot {
        return None;
    }
    let text = message.text.as_deref()?;
    super::parse_command(text, bot_username).map(|_| message.chat.id)
}

/// Draws on the update's bucket. Over the limit, puts what the chat hears
/// (if anything) into `out` and returns true: the caller then stores only the
/// update's offset and those calls.
pub fn over_limit(
    tx: &Transaction<'_>,
    config: &Config,
    limiter: &mut CommandLimiter,
    update: &Update,
    bot_username: Option<&str>,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<bool> {
    let Some(chat_id) = counted_chat(update, bot_username) else {
        return Ok(false);
    };
    let Admission::Refused {
        notice,
        retry_in_secs,
    } = limiter.admit(chat_id, now)
    else {
        return Ok(false);
    };
    if notice {
        info!(
            "chat {chat_id}: over its limit of commands and presses; \
             skipping them for {retry_in_secs}s or more"
        );
    } else {
        debug!("chat {chat_id}: update {} over the limit", update.update_id);
    }
    if let Some(query) = &update.callback_query {
        out.push(telegram::answer_callback(
            &query.id,
            &ui::slow_down_press_alert(retry_in_secs),
            false,
        ));
    } else if notice && super::is_served(tx, config, chat_id)? {
        // An unserved chat hears only its hourly refusal.
        out.push(telegram::send_message(
            chat_id,
            &ui::slow_down_text(retry_in_secs),
            None,
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: serde_json::Value) -> Update {
        serde_json::from_value(json).unwrap()
    }

    fn command(chat: i64, text: &str) -> Update {
        update(serde_json::json!({
            "update_id": 1,
            "message": {
                "message_id": 5, "date": 0, "text": text,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": 42, "is_bot": false, "first_name": "Ada"},
            }
        }))
    }

    fn press(chat: i64) -> Update {
        update(serde_json::json!({
            "update_id": 2,
            "callback_query": {
                "id": "cq1", "data": "1:refresh", "chat_instance": "x",
                "from": {"id": 42, "is_bot": false, "first_name": "Ada"},
                "message": {
                    "message_id": 9, "date": 0, "text": "menu",
                    "chat": {"id": chat, "type": "group", "title": "G"},
                }
            }
        }))
    }

    #[test]
    fn commands_and_presses_count_other_messages_do_not() {
        assert_eq!(counted_chat(&command(7, "/status"), None), Some(7));
        assert_eq!(counted_chat(&command(7, "/status@me"), Some("me")), Some(7));
        assert_eq!(counted_chat(&command(7, "/status@other"), Some("me")), None);
        assert_eq!(counted_chat(&command(7, "Europe/Berlin"), None), None);
        assert_eq!(counted_chat(&press(-5), None), Some(-5));
    }

    fn config(dir: &std::path::Path) -> Config {
        crate::config::parse(
            "[access]\nallowed_chat_ids = [7]\n[limits]\ncommand_burst = 2\n",
            std::path::Path::new("storyline.toml"),
            dir,
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn over_the_limit_a_command_gets_one_notice_and_a_press_always_its_answer() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let mut conn = crate::db::open(&dir.path().join("s.db")).unwrap();
        let tx = conn.transaction().unwrap();
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let limits = &config.limits;
        let mut limiter = CommandLimiter::new(limits.commands_per_minute, limits.command_burst);
        let mut check = |update: &Update| {
            let mut out = Vec::new();
            let limited =
                over_limit(&tx, &config, &mut limiter, update, None, now, &mut out).unwrap();
            let said: Vec<String> = out
                .iter()
                .map(|o| format!("{} {}", o.method, o.params["text"]))
                .collect();
            (limited, said)
        };
        assert_eq!(check(&command(7, "/status")), (false, vec![]));
        assert_eq!(check(&command(7, "Plain text")), (false, vec![]));
        assert_eq!(check(&command(7, "/status")), (false, vec![]));
        let (limited, said) = check(&command(7, "/status"));
        assert!(limited);
        assert_eq!(said, [format!("sendMessage {:?}", ui::slow_down_text(2))]);
        assert_eq!(check(&command(7, "/status")), (true, vec![]));
        // An unserved chat over its limit hears nothing from this.
        check(&command(8, "/start"));
        check(&command(8, "/start"));
        assert_eq!(check(&command(8, "/start")), (true, vec![]));
        // Presses are answered every time, without an effect.
        for _ in 0..4 {
            let (limited, said) = check(&press(-5));
            if limited {
                let alert = ui::slow_down_press_alert(2);
                assert_eq!(said, [format!("answerCallbackQuery {alert:?}")]);
            }
        }
    }
}
