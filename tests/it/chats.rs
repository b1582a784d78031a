//! A chat's life as Telegram changes it: a group upgraded to a supergroup keeps
//! its settings, account and queue under the new id; a chat that blocked the bot
//! or is gone stops getting stories (the admins hear of it once) until it
//! writes again.

use std::fs;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::helpers::*;
use crate::support::{describe_output, wait_until, Call, Env, ADMIN, CHAT};

/// A basic group the config allows besides CHAT.
const GROUP: i64 = -5555;
const MIGRATED: &str =
    "This group became a supergroup; Storyline moved its settings and queue along.";

fn allow_group(env: &Env) {
    let config = env.base_config().replace(
        &format!("allowed_chat_ids = [{CHAT}]"),
        &format!("allowed_chat_ids = [{CHAT}, {GROUP}]"),
    );
    env.write_config_raw(&config);
}

fn run_ok(env: &Env, args: &[&str]) {
    let output = env.run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        describe_output(&output)
    );
}

/// Two photos in the media folder, scanned.
fn library(env: &Env) {
    for (name, size) in [("quotes/one.jpg", 1500), ("quotes/two.jpg", 1700)] {
        let path = env.media_dir().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, crate::support::media::sized(name, size)).unwrap();
    }
    run_ok(env, &["scan"]);
}

/// A pending slot for `chat`, due `offset_secs` from now; returns its id.
fn add_slot(env: &Env, chat: i64, offset_secs: i64) -> i64 {
    let at = (Utc::now() + chrono::Duration::seconds(offset_secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let db = env.db();
    db.execute(
        "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, created_at)
         VALUES (?1, ?2, '2000-01-01', (SELECT sha256 FROM media_items ORDER BY id LIMIT 1), ?2)",
        rusqlite::params![chat, at],
    )
    .unwrap();
    db.last_insert_rowid()
}

fn slot_status(env: &Env, id: i64) -> (i64, String) {
    env.db()
        .query_row(
            "SELECT chat_id, status FROM posting_queue WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// (table, rows) for every table with a chat_id column that holds rows of `chat`.
fn rows_of(env: &Env, chat: i64) -> Vec<(String, i64)> {
    let db = env.db();
    let tables: Vec<String> = {
        let mut stmt = db
            .prepare(
                "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND p.name = 'chat_id' ORDER BY m.name",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    tables
        .into_iter()
        .map(|table| {
            let n: i64 = db
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE chat_id = ?1"),
                    [chat],
                    |r| r.get(0),
                )
                .unwrap();
            (table, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Whether a call names the chat (a number in JSON, a string in an upload).
fn names_chat(call: &Call, chat: i64) -> bool {
    call.params["chat_id"] == json!(chat) || call.params["chat_id"] == json!(chat.to_string())
}

fn is_story_to(call: &Call, chat: i64) -> bool {
    (call.method == "sendPhoto" || call.method == "sendVideo") && names_chat(call, chat)
}

/// The ids of the chat's slots still to come.
fn pending_slots(env: &Env, chat: i64) -> Vec<i64> {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT id FROM posting_queue WHERE chat_id = ?1 AND status = 'pending' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([chat], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn texts(env: &Env, chat: i64, containing: &str) -> usize {
    env.tg
        .messages(chat)
        .iter()
        .filter(|m| m.text.contains(containing))
        .count()
}

fn inactive(env: &Env, chat: i64) -> Option<String> {
    env.db()
        .query_row(
            "SELECT inactive_reason FROM chats WHERE chat_id = ?1",
            [chat],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn an_upgraded_group_keeps_its_settings_account_and_queue_under_the_new_id() {
    let env = Env::new();
    allow_group(&env);
    library(&env);
    for (name, id, username, token) in [
        ("Main Brand", "178", "brand", "IGQVJ-first-token-0123456789"),
        ("Promo", "179", "promo", "IGQVJ-second-token-9876543210"),
    ] {
        run_ok(
            &env,
            &[
                "accounts",
                "add",
                "--name",
                name,
                "--instagram-id",
                id,
                "--username",
                username,
                "--token",
                token,
            ],
        );
    }
    let daemon = env.start_polling();
    // The group chooses an account and 7 posts a day; a story waits for a decision.
    let menu = say(&env, GROUP, ADMIN, "/settings");
    let (_, selector) = press(&env, GROUP, &menu, "📸 Account: choose");
    let (_, menu) = press(&env, GROUP, &selector, "Promo");
    open_prompt(&env, GROUP, &menu, "Posts/Day");
    let set = say(&env, GROUP, ADMIN, "7");
    assert!(set.text.contains('7'), "{}", set.text);
    let before = env.tg.messages(GROUP).len();
    env.tg.push_message(GROUP, ADMIN, "ada", "/next");
    wait_until("the group's story", WAIT, || {
        env.tg
            .messages(GROUP)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text")
    });
    wait_until("the group's plan", WAIT, || {
        (!pending_slots(&env, GROUP).is_empty()).then_some(())
    });
    daemon.terminate();
    let tables_before = rows_of(&env, GROUP);
    let planned = pending_slots(&env, GROUP);

    // Telegram upgrades the group while the bot is away, and its service
    // messages come late: the first the bot learns of it is a refused story.
    // A member wrote just before the upgrade; that update too comes late.
    env.tg.hold_updates(true);
    env.tg.push_message(GROUP, ADMIN, "ada", "/settings");
    let supergroup = env.tg.upgrade_to_supergroup(GROUP);
    let due = add_slot(&env, GROUP, 1);
    let from = env.tg.calls().len();
    let daemon = env.start_polling();
    let (refused_at, refused) = env
        .tg
        .wait_for(from, WAIT, |c| is_story_to(c, GROUP) && c.status.is_some());
    assert_eq!(refused.status, Some(400), "{:?}", refused.params);
    let (_, resent) = env.tg.wait_for(refused_at, WAIT, |c| {
        is_story_to(c, supergroup) && c.status.is_some()
    });
    assert_eq!(resent.status, Some(200));
    assert_eq!(resent.params["caption"], refused.params["caption"]);
    wait_until("the story to be recorded as sent", WAIT, || {
        (slot_status(&env, due) == (supergroup, "sent".to_string())).then_some(())
    });
    wait_until("the notice", WAIT, || {
        (texts(&env, supergroup, MIGRATED) == 1).then_some(())
    });

    // The service messages arrive; they find the chat moved already.
    env.tg.hold_updates(false);
    wait_until("the service messages to be handled", WAIT, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
    let menu = say(&env, supergroup, ADMIN, "/settings");
    assert!(
        menu.text.contains("Posts per day: <b>7</b>"),
        "{}",
        menu.text
    );
    assert!(menu.text.contains("@promo"), "{}", menu.text);
    assert_eq!(rows_of(&env, GROUP), []);
    let tables_after: Vec<String> = rows_of(&env, supergroup)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for (table, _) in &tables_before {
        assert!(tables_after.contains(table), "{table} did not move");
    }
    assert_eq!(
        chat_column(&env, supergroup, "migrated_from_chat_id"),
        Some(GROUP)
    );
    assert_eq!(chat_column(&env, supergroup, "posts_per_day"), Some(7));
    assert_eq!(chat_column(&env, supergroup, "active_account_id"), Some(2));
    for id in planned {
        assert_eq!(slot_status(&env, id).0, supergroup, "slot {id}");
    }

    // A restart does not bring back the old id, which the config still lists.
    daemon.terminate();
    let _daemon = env.start_polling();
    let status = say(&env, supergroup, ADMIN, "/status");
    assert!(!status.text.contains("not set up"), "{}", status.text);
    assert_eq!(rows_of(&env, GROUP), []);
    assert_eq!(texts(&env, supergroup, MIGRATED), 1, "told once");
    assert_eq!(texts(&env, supergroup, "not set up"), 0);
    assert!(
        env.log().contains(&format!(
            "{GROUP} in allowed_chat_ids became supergroup {supergroup}"
        )),
        "the start-up says why the listed id is not served"
    );
}

#[test]
fn a_chat_that_blocked_the_bot_rests_until_it_writes_again() {
    let env = Env::new();
    library(&env);
    run_ok(&env, &["queue"]); // the allowed chat's row
    env.tg.block_bot(CHAT);
    let first = add_slot(&env, CHAT, 1);
    let _daemon = env.start_polling();
    wait_until("the chat to be marked inactive", WAIT, || {
        inactive(&env, CHAT).filter(|reason| reason == "blocked")
    });
    let told = wait_until("the admin to be told", WAIT, || {
        env.tg
            .messages(ADMIN)
            .into_iter()
            .find(|m| m.text.contains("stopped posting"))
    });
    assert!(
        told.text.contains("the bot was blocked there"),
        "{}",
        told.text
    );
    assert!(told.text.contains(&CHAT.to_string()), "{}", told.text);
    let refused = env
        .tg
        .calls()
        .into_iter()
        .filter(|c| names_chat(c, CHAT))
        .count();
    assert!(refused >= 1);

    // Later slots are skipped without a call to Telegram.
    wait_until("the first slot to end", WAIT, || {
        (slot_status(&env, first).1 != "sending").then_some(())
    });
    let from = env.tg.calls().len();
    let later = add_slot(&env, CHAT, 0);
    env.tg
        .push_message(-77, ADMIN, "ada", "a word elsewhere wakes the scheduler");
    wait_until(
        "the later slot to be skipped",
        Duration::from_secs(70),
        || (slot_status(&env, later).1 == "skipped").then_some(()),
    );
    assert!(
        !env.tg.calls()[from..].iter().any(|c| names_chat(c, CHAT)),
        "a call went to the inactive chat"
    );
    assert_eq!(texts(&env, ADMIN, "stopped posting"), 1, "admins told once");

    // The user unblocks the bot and writes: served again, the next slot is sent.
    env.tg.unblock_bot(CHAT);
    let again = add_slot(&env, CHAT, 0);
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("📊 <b>Status</b>"), "{}", status.text);
    assert_eq!(inactive(&env, CHAT), None);
    wait_until("the next slot's story", Duration::from_secs(70), || {
        (slot_status(&env, again).1 == "sent").then_some(())
    });
    assert!(env.tg.messages(CHAT).iter().any(|m| m.kind != "text"));
    assert_eq!(texts(&env, ADMIN, "stopped posting"), 1);
}

#[test]
fn a_deleted_group_is_marked_inactive_and_the_admins_told() {
    let env = Env::new();
    allow_group(&env);
    library(&env);
    run_ok(&env, &["queue"]);
    env.tg.delete_chat(GROUP);
    add_slot(&env, GROUP, 1);
    let _daemon = env.start_polling();
    wait_until("the group to be marked inactive", WAIT, || {
        inactive(&env, GROUP).filter(|reason| reason == "not_found")
    });
    let told = wait_until("the admin to be told", WAIT, || {
        env.tg
            .messages(ADMIN)
            .into_iter()
            .find(|m| m.text.contains("stopped posting"))
    });
    assert!(
        told.text.contains("Telegram no longer knows that chat"),
        "{}",
        told.text
    );
    // The other chat is served as before.
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Active"), "{}", status.text);
    assert_eq!(inactive(&env, CHAT), None);
}

#[test]
fn telegram_s_service_messages_move_the_group_before_anything_is_refused() {
    let env = Env::new();
    allow_group(&env);
    let _daemon = env.start_polling();
    let menu = say(&env, GROUP, ADMIN, "/settings");
    open_prompt(&env, GROUP, &menu, "Posts/Day");
    say(&env, GROUP, ADMIN, "9");
    // Every reply so far delivered: what follows is about the upgrade alone.
    wait_for_empty_outbox(&env);
    let from = env.tg.calls().len();
    let supergroup = env.tg.upgrade_to_supergroup(GROUP);
    wait_until("the notice", WAIT, || {
        (texts(&env, supergroup, MIGRATED) == 1).then_some(())
    });
    let menu = say(&env, supergroup, ADMIN, "/settings");
    assert!(
        menu.text.contains("Posts per day: <b>9</b>"),
        "{}",
        menu.text
    );
    assert_eq!(rows_of(&env, GROUP), []);
    assert!(
        !env.tg.calls()[from..].iter().any(|c| c.status == Some(400)),
        "nothing went to the old id"
    );
    let history: String = env
        .db()
        .query_row(
            "SELECT reason FROM settings_history WHERE chat_id = ?1 AND valid_to IS NULL",
            [supergroup],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        history,
        format!("group {GROUP} became supergroup {supergroup}")
    );
    assert_eq!(texts(&env, supergroup, MIGRATED), 1, "told once");
}
