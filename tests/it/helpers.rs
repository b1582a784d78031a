//! Conversation helpers on top of the fake Telegram server: say something in a
//! chat and get the bot's reply, press a button and get its answer.

use std::time::Duration;

use serde_json::Value;

use crate::support::{wait_until, Call, Env, SentMessage};

pub const WAIT: Duration = Duration::from_secs(20);

/// `[limits]` for tests that send commands faster than a person would (the
/// per-chat bucket is not what they test).
pub const FAST_COMMANDS: &str = "[limits]\ncommands_per_minute = 600\ncommand_burst = 100\n";

/// Messages the bot sends on its own schedule (the daily "running dry" warning,
/// missed slots, scan reports, the daily summary, auto-tune's weekly word),
/// which can land between a command and its reply.
pub fn is_notice(message: &SentMessage) -> bool {
    ["📉", "⏰", "🔎 <b>Scan finished", "🗞 <b>Daily summary", "🎛"]
        .iter()
        .any(|p| message.text.starts_with(p))
}

/// The first message after index `before` in the chat that is not a notice.
pub fn next_reply(env: &Env, chat: i64, before: usize, what: &str) -> SentMessage {
    wait_until(what, WAIT, || {
        env.tg
            .messages(chat)
            .into_iter()
            .skip(before)
            .find(|m| !is_notice(m))
    })
}

/// Pushes a message and returns the next message the bot sends to that chat.
pub fn say(env: &Env, chat: i64, user: i64, text: &str) -> SentMessage {
    let before = env.tg.messages(chat).len();
    env.tg.push_message(chat, user, "ada", text);
    next_reply(env, chat, before, &format!("a reply to {text:?}"))
}

/// Every button of a message: (text, callback_data).
pub fn buttons(message: &SentMessage) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(rows) = message
        .reply_markup
        .as_ref()
        .and_then(|m| m["inline_keyboard"].as_array())
    {
        for row in rows {
            for button in row.as_array().into_iter().flatten() {
                out.push((
                    button["text"].as_str().unwrap_or_default().to_string(),
                    button["callback_data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
    }
    out
}

pub fn button_data(message: &SentMessage, text_prefix: &str) -> String {
    buttons(message)
        .into_iter()
        .find(|(text, _)| text.starts_with(text_prefix))
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no button {text_prefix:?} in {:?}", buttons(message)))
}

/// Pushes a press with `data` on `message`; returns the answerCallbackQuery call.
pub fn press_data(env: &Env, chat: i64, user: i64, message_id: i64, data: &str) -> Call {
    let update = env.tg.push_callback(chat, user, "ada", message_id, data);
    env.tg.wait_for_callback_answer(update, WAIT)
}

/// Presses the button whose text starts with `text_prefix`, waits for the press
/// to be answered and for the message to be edited; returns (answer, message now).
pub fn press(
    env: &Env,
    chat: i64,
    message: &SentMessage,
    text_prefix: &str,
) -> (Call, SentMessage) {
    let data = button_data(message, text_prefix);
    let from = env.tg.calls().len();
    let answer = press_data(env, chat, crate::support::ADMIN, message.message_id, &data);
    env.tg.wait_for(from, WAIT, |c| {
        c.method == "editMessageText" && c.params["message_id"] == message.message_id
    });
    let now = wait_until("the edit to land", WAIT, || {
        env.tg
            .message(chat, message.message_id)
            .filter(|m| m.text != message.text || m.reply_markup != message.reply_markup)
    });
    (answer, now)
}

pub fn is_alert(answer: &Call) -> bool {
    answer.params["show_alert"] == Value::Bool(true)
}

/// Asserts the bot token never appeared in what the daemon logged.
pub fn assert_token_not_logged(env: &Env) {
    let log = env.log();
    assert!(
        !log.contains("TEST-token-SECRET"),
        "the bot token leaked into the log:\n{log}"
    );
}

/// A chat setting column as stored (NULL = default).
pub fn chat_column(env: &Env, chat: i64, column: &str) -> Option<i64> {
    env.db()
        .query_row(
            &format!("SELECT {column} FROM chats WHERE chat_id = ?1"),
            [chat],
            |r| r.get(0),
        )
        .unwrap_or(None)
}

pub fn history_count(env: &Env, chat: i64) -> i64 {
    env.db()
        .query_row(
            "SELECT count(*) FROM settings_history WHERE chat_id = ?1",
            [chat],
            |r| r.get(0),
        )
        .unwrap_or(0)
}

/// Presses a menu button that asks for a value; returns the prompt the bot sends.
pub fn open_prompt(env: &Env, chat: i64, menu: &SentMessage, text_prefix: &str) -> SentMessage {
    let before = env.tg.messages(chat).len();
    press_data(
        env,
        chat,
        crate::support::ADMIN,
        menu.message_id,
        &button_data(menu, text_prefix),
    );
    next_reply(env, chat, before, "the prompt")
}

/// Waits until the daemon has delivered every reply it stored (its outbox is
/// empty), for tests whose next step must not race a reply still on its way.
pub fn wait_for_empty_outbox(env: &Env) {
    crate::support::wait_until("the outbox to be empty", WAIT, || {
        let waiting: i64 = env
            .db()
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap_or(1);
        (waiting == 0).then_some(())
    });
}

/// How many updates with this command the daemon recorded as handled.
pub fn handled_commands(env: &Env, name: &str) -> i64 {
    env.db()
        .query_row(
            "SELECT count(*) FROM interactions WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap_or(-1)
}

/// How many of the bot's messages in the chat contain `text`.
pub fn messages_containing(env: &Env, chat: i64, text: &str) -> i64 {
    env.tg
        .messages(chat)
        .iter()
        .filter(|m| m.text.contains(text))
        .count() as i64
}
