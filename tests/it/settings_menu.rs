//! /settings: the menu, its toggles and the values it asks for, and what survives a restart.

use crate::helpers::*;
use crate::support::{Env, ADMIN, CHAT};

#[test]
fn settings_shows_current_values_and_toggles_persist_across_restart() {
    let env = Env::new();
    let daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert_eq!(menu.parse_mode.as_deref(), Some("HTML"));
    assert!(menu.text.contains("Dry run: <b>ON</b>"), "{}", menu.text);
    assert!(
        menu.text.contains("Posts per day: <b>3</b>"),
        "{}",
        menu.text
    );
    let labels: Vec<String> = buttons(&menu).into_iter().map(|(t, _)| t).collect();
    for expected in [
        "✅ Dry run",
        "⬜ Instagram API",
        "▶️ Active (tap to pause)",
        "Posts/Day: 3",
        "Hours: 14:00–02:00 UTC",
        "🔄 Refresh",
        "✖️ Close",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected} missing from {labels:?}"
        );
    }

    let (answer, menu) = press(&env, CHAT, &menu, "✅ Dry run");
    assert!(!is_alert(&answer));
    assert!(menu.text.contains("Dry run: <b>off</b>"), "{}", menu.text);
    assert!(buttons(&menu).iter().any(|(t, _)| t == "⬜ Dry run"));
    let (_, menu) = press(&env, CHAT, &menu, "⬜ Instagram API");
    assert!(
        menu.text.contains("Instagram API: <b>ON</b>"),
        "{}",
        menu.text
    );
    let (_, menu) = press(&env, CHAT, &menu, "▶️ Active");
    assert!(
        menu.text.contains("⏸️ Paused by @ada since"),
        "{}",
        menu.text
    );

    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
    assert_eq!(chat_column(&env, CHAT, "enable_instagram_api"), Some(1));
    assert_eq!(chat_column(&env, CHAT, "is_paused"), Some(1));
    assert_eq!(chat_column(&env, CHAT, "paused_by"), Some(ADMIN));
    // The first version, then one per change, each saying who and what.
    assert_eq!(history_count(&env, CHAT), 4);
    let (changes, by): (String, i64) = env
        .db()
        .query_row(
            "SELECT changes, changed_by FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(by, ADMIN);
    assert_eq!(
        changes,
        r#"[{"setting":"is_paused","old":false,"new":true}]"#
    );

    let (status, took) = daemon.terminate();
    assert!(status.success(), "{status}");
    assert!(took.as_secs() < 5, "took {took:?} to stop");

    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(menu.text.contains("Dry run: <b>off</b>"), "{}", menu.text);
    assert!(
        menu.text.contains("Instagram API: <b>ON</b>"),
        "{}",
        menu.text
    );
    assert!(menu.text.contains("Paused"), "{}", menu.text);
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Paused by @ada"), "{}", status.text);
    assert_token_not_logged(&env);
}

#[test]
fn a_second_press_on_a_stale_menu_changes_nothing() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let data = button_data(&menu, "✅ Dry run");
    press_data(&env, CHAT, ADMIN, menu.message_id, &data);
    let answer = press_data(&env, CHAT, ADMIN, menu.message_id, &data);
    assert!(
        answer.params["text"]
            .as_str()
            .unwrap_or_default()
            .contains("already"),
        "{answer:?}"
    );
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
    assert_eq!(history_count(&env, CHAT), 2);
}

#[test]
fn posts_per_day_rejects_bad_values_and_changes_nothing() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let prompt = open_prompt(&env, CHAT, &menu, "Posts/Day");
    assert!(prompt.text.contains("from 1 to 50"), "{}", prompt.text);
    assert!(buttons(&prompt).iter().any(|(t, _)| t.contains("Cancel")));

    for (value, expected) in [
        ("abc", "whole number between 1 and 50"),
        ("0", "between 1 and 50"),
        ("51", "between 1 and 50"),
    ] {
        let reply = say(&env, CHAT, ADMIN, value);
        assert!(reply.text.contains(expected), "{value}: {}", reply.text);
        assert!(reply.text.contains("Nothing was changed"), "{}", reply.text);
    }
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), None);
    assert_eq!(history_count(&env, CHAT), 1);

    let reply = say(&env, CHAT, ADMIN, "5");
    assert!(
        reply.text.contains("Posts per day set to <b>5</b>"),
        "{}",
        reply.text
    );
    let menu = crate::support::wait_until("the menu to show 5", WAIT, || {
        env.tg
            .message(CHAT, menu.message_id)
            .filter(|m| buttons(m).iter().any(|(t, _)| t == "Posts/Day: 5"))
    });
    assert!(menu.text.contains("Posts per day: <b>5</b>"));
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), Some(5));
    // The prompt is answered: the next number is just conversation.
    let replies = || {
        env.tg
            .messages(CHAT)
            .iter()
            .filter(|m| !is_notice(m))
            .count()
    };
    let before = replies();
    env.tg.push_message(CHAT, ADMIN, "ada", "7");
    let status = say(&env, CHAT, ADMIN, "/status");
    assert_eq!(replies(), before + 1, "only /status was answered");
    assert!(status.text.contains("Posts per day: 5"), "{}", status.text);
}

#[test]
fn hours_take_one_or_two_prompts_and_reject_25() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let prompt = open_prompt(&env, CHAT, &menu, "Hours");
    assert!(prompt.text.contains("14-2"), "{}", prompt.text);

    let reply = say(&env, CHAT, ADMIN, "25");
    assert!(reply.text.contains("from 0 to 23"), "{}", reply.text);
    assert_eq!(chat_column(&env, CHAT, "posting_hours_start"), None);
    let reply = say(&env, CHAT, ADMIN, "9");
    assert!(reply.text.contains("end hour"), "{}", reply.text);
    let reply = say(&env, CHAT, ADMIN, "21");
    assert!(reply.text.contains("09:00–21:00 UTC"), "{}", reply.text);
    assert_eq!(chat_column(&env, CHAT, "posting_hours_start"), Some(9));
    assert_eq!(chat_column(&env, CHAT, "posting_hours_end"), Some(21));

    // One message, and /cancel abandons a prompt.
    open_prompt(&env, CHAT, &menu, "Hours");
    let reply = say(&env, CHAT, ADMIN, "22-3");
    assert!(reply.text.contains("22:00–03:00"), "{}", reply.text);
    open_prompt(&env, CHAT, &menu, "Hours");
    let reply = say(&env, CHAT, ADMIN, "/cancel");
    assert!(reply.text.contains("Cancelled"), "{}", reply.text);
    let reply = say(&env, CHAT, ADMIN, "/cancel");
    assert!(reply.text.contains("nothing to cancel"), "{}", reply.text);
    assert_eq!(chat_column(&env, CHAT, "posting_hours_start"), Some(22));
    assert_eq!(chat_column(&env, CHAT, "posting_hours_end"), Some(3));
}

#[test]
fn the_cancel_button_abandons_a_prompt() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let prompt = open_prompt(&env, CHAT, &menu, "Posts/Day");
    let (answer, prompt) = press(&env, CHAT, &prompt, "✖️ Cancel");
    assert!(!is_alert(&answer));
    assert!(prompt.text.contains("Cancelled"));
    assert!(prompt.reply_markup.is_none());
    // A later number is no longer taken as the value.
    env.tg.push_message(CHAT, ADMIN, "ada", "9");
    say(&env, CHAT, ADMIN, "/status");
    assert_eq!(chat_column(&env, CHAT, "posts_per_day"), None);
}

#[test]
fn forged_and_unparsable_buttons_get_an_alert_and_change_nothing() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    for data in [
        "1:set:admin:1",
        "1:set:dry:7",
        "settings_toggle:dry_run_mode",
        "",
        "2:refresh",
        &"x".repeat(200),
    ] {
        let answer = press_data(&env, CHAT, ADMIN, menu.message_id, data);
        assert!(is_alert(&answer), "{data:?}: {answer:?}");
        assert!(answer.params["text"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid"));
    }
    assert_eq!(env.tg.calls_of("editMessageText").len(), 0);
    assert_eq!(history_count(&env, CHAT), 1);
    assert_eq!(
        env.tg.message(CHAT, menu.message_id).unwrap().text,
        menu.text
    );
}

#[test]
fn refresh_of_an_unchanged_menu_is_not_an_error() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let from = env.tg.calls().len();
    let answer = press_data(
        &env,
        CHAT,
        ADMIN,
        menu.message_id,
        &button_data(&menu, "🔄 Refresh"),
    );
    assert!(!is_alert(&answer));
    let (_, edit) = env.tg.wait_for_method(from, "editMessageText", WAIT);
    // Telegram answers "message is not modified"; the bot takes that as done and goes on.
    crate::support::wait_until("the edit to be answered", WAIT, || {
        env.tg
            .calls_of("editMessageText")
            .last()
            .and_then(|c| c.status)
    });
    assert_eq!(edit.params["message_id"], menu.message_id);
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Status"));
    assert!(!env.log().contains("dropping"), "{}", env.log());
}

#[test]
fn close_removes_the_keyboard() {
    let env = Env::new();
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    let (_, closed) = press(&env, CHAT, &menu, "✖️ Close");
    assert!(closed.text.contains("Settings closed"));
    assert!(closed.reply_markup.is_none());
}
