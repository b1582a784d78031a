//! The daily summary: the real daemon on the test clock (`STORYLINE_TEST_CLOCK`,
//! two virtual minutes a real second) around a chat's summary hour. Once at the
//! hour, not again after a restart the same day; late, once, after the Pi was
//! off over the hour; none when off or for a day before the chat existed; at
//! the hour of the chat's own zone on the day its clocks change; and what it
//! says matches the slots of the day. Also the hour set from /settings.

use std::fs;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::helpers::*;
use crate::support::{media, wait_until, Daemon, Env, ADMIN, CHAT};

/// Two virtual minutes a real second: the 15 minutes after which a summary is
/// late are 7.5 real seconds, plenty for a start-up on a loaded machine.
const SPEED: f64 = 120.0;
/// A chat whose summary is off.
const OFF_CHAT: i64 = 4243;
/// A chat created this morning.
const NEW_CHAT: i64 = 4244;

const SUMMARY: &str = "🗞 <b>Daily summary</b>";

/// The test clock, `start` (virtual) from the moment of the call on.
fn clock(start: &str) -> String {
    format!("{start},{},{SPEED}", Utc::now().timestamp_millis())
}

fn start(env: &Env, clock: &str) -> Daemon {
    let from = env.tg.calls().len();
    let daemon = env.start_with_env(&[("STORYLINE_TEST_CLOCK", clock)]);
    env.tg
        .wait_for_method(from, "getUpdates", Duration::from_secs(20));
    daemon
}

/// An Env serving `chats`, their rows created (migrated by a `scan` first) as
/// (chat, created at, time zone, daily_summary column); each row's latest
/// summary (local date) in `sent`. Posting hours 14–2, so no slot comes due.
fn env_with(chats: &[(i64, &str, &str, Option<bool>)], sent: &[(i64, &str)]) -> Env {
    let env = Env::new();
    let ids: Vec<String> = chats.iter().map(|c| c.0.to_string()).collect();
    let config = env.base_config().replace(
        &format!("allowed_chat_ids = [{CHAT}]"),
        &format!("allowed_chat_ids = [{}]", ids.join(", ")),
    );
    env.write_config_raw(&format!(
        "{config}\n[defaults]\nposting_hours_start = 14\nposting_hours_end = 2\n"
    ));
    let scan = || {
        let out = env.run(&["scan"]);
        assert!(
            out.status.success(),
            "{}",
            crate::support::describe_output(&out)
        );
    };
    scan();
    let db = env.db();
    for (chat, created, tz, on) in chats {
        db.execute(
            "INSERT INTO chats (chat_id, timezone, daily_summary, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![chat, tz, on, created],
        )
        .unwrap();
    }
    for (chat, date) in sent {
        db.execute(
            "INSERT INTO daily_summaries (chat_id, local_date, covers_date, sent_at, late)
             VALUES (?1, ?2, date(?2, '-1 day'), ?2 || 'T09:00:00Z', 0)",
            params![chat, date],
        )
        .unwrap();
    }
    drop(db);
    // Scanned after the chats exist, so each has the items in its view.
    for (path, tag) in [
        ("quotes/a.jpg", b"a"),
        ("tips/b.jpg", b"b"),
        ("tips/c.jpg", b"c"),
    ] {
        let file = env.media_dir().join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, media::jpeg(tag)).unwrap();
    }
    scan();
    env
}

fn summaries(env: &Env, chat: i64) -> Vec<String> {
    env.tg
        .messages(chat)
        .into_iter()
        .filter(|m| m.text.starts_with(SUMMARY))
        .map(|m| m.text)
        .collect()
}

fn wait_for_summary(env: &Env, chat: i64) -> String {
    wait_until("the daily summary", WAIT, || {
        summaries(env, chat).into_iter().next()
    })
}

/// (local date, late) of the chat's recorded summaries, oldest first.
fn recorded(env: &Env, chat: i64) -> Vec<(String, bool)> {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT local_date, late FROM daily_summaries WHERE chat_id = ?1 ORDER BY local_date",
        )
        .unwrap();
    stmt.query_map([chat], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn sent_at(env: &Env, chat: i64, date: &str) -> DateTime<Utc> {
    let text: String = env
        .db()
        .query_row(
            "SELECT sent_at FROM daily_summaries WHERE chat_id = ?1 AND local_date = ?2",
            params![chat, date],
            |r| r.get(0),
        )
        .unwrap();
    text.parse().unwrap()
}

/// Lets the daemon tick a few more (virtual) minutes: 1.5 real seconds.
fn let_it_tick() {
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn the_summary_comes_once_at_the_hour_and_not_again_after_a_restart() {
    let env = env_with(
        &[
            (CHAT, "2030-06-07T10:00:00Z", "UTC", None),
            (OFF_CHAT, "2030-06-07T10:00:00Z", "UTC", Some(false)),
            (NEW_CHAT, "2030-06-10T08:00:00Z", "UTC", None),
        ],
        &[(CHAT, "2030-06-09")],
    );
    let clock = clock("2030-06-10T08:59:00Z");
    let daemon = start(&env, &clock);
    assert!(summaries(&env, CHAT).is_empty(), "before 09:00");
    let text = wait_for_summary(&env, CHAT);
    assert!(text.contains("Daily summary</b> · Sun 09 Jun"), "{text}");
    assert!(!text.contains("late"), "{text}");
    let at = sent_at(&env, CHAT, "2030-06-10");
    assert!(
        at >= "2030-06-10T09:00:00Z".parse::<DateTime<Utc>>().unwrap()
            && at < "2030-06-10T09:02:00Z".parse::<DateTime<Utc>>().unwrap(),
        "sent at {at}"
    );
    // The same tick looked at the others: off, and one created today.
    assert!(summaries(&env, OFF_CHAT).is_empty());
    assert!(summaries(&env, NEW_CHAT).is_empty());
    let (status, _) = daemon.terminate();
    assert!(status.success());

    let daemon = start(&env, &clock);
    let_it_tick();
    assert_eq!(summaries(&env, CHAT).len(), 1, "not again after a restart");
    assert_eq!(
        recorded(&env, CHAT),
        vec![
            ("2030-06-09".to_string(), false),
            ("2030-06-10".to_string(), false)
        ]
    );
    assert!(recorded(&env, OFF_CHAT).is_empty());
    assert!(recorded(&env, NEW_CHAT).is_empty());
    assert!(summaries(&env, OFF_CHAT).is_empty());
    daemon.kill9();
}

#[test]
fn after_the_pi_was_off_over_the_hour_the_summary_comes_once_late_and_counts_the_day() {
    // Off for two days: only today's summary (of yesterday) comes, late.
    let env = env_with(
        &[(CHAT, "2030-06-01T10:00:00Z", "UTC", None)],
        &[(CHAT, "2030-06-08")],
    );
    let db = env.db();
    // Yesterday's window: what people and the schedule did with it.
    let item = |path: &str| -> i64 {
        db.query_row("SELECT id FROM media_items WHERE path = ?1", [path], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let (a, b, c) = (item("quotes/a.jpg"), item("tips/b.jpg"), item("tips/c.jpg"));
    let slots = [
        ("2030-06-09T14:10:00Z", Some(a), "posted"),
        ("2030-06-09T16:10:00Z", Some(a), "skipped"),
        ("2030-06-09T18:10:00Z", Some(b), "rejected"),
        ("2030-06-09T20:10:00Z", Some(c), "missed"),
        ("2030-06-09T22:10:00Z", Some(b), "sent"),
        ("2030-06-10T01:10:00Z", None, "failed"),
        // The day before: not in this summary.
        ("2030-06-08T15:00:00Z", Some(c), "posted"),
    ];
    for (at, media_item, status) in slots {
        let window = &at[..10];
        let window = if at.starts_with("2030-06-10") {
            "2030-06-09"
        } else {
            window
        };
        db.execute(
            "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, media_item_id, status, created_at)
             VALUES (?1, ?2, ?3, (SELECT sha256 FROM media_items WHERE id = ?4), ?4, ?5, ?2)",
            params![CHAT, at, window, media_item, status],
        )
        .unwrap();
    }
    // The locks the presses left: a posted (30 days), b rejected (for good).
    db.execute_batch(
        "UPDATE chat_media SET locked_until = '2030-07-09T14:10:00Z', lock_reason = 'posted'
           WHERE sha256 = (SELECT sha256 FROM media_items WHERE path = 'quotes/a.jpg');
         UPDATE chat_media SET locked_until = '9999-12-31T00:00:00Z', lock_reason = 'rejected'
           WHERE sha256 = (SELECT sha256 FROM media_items WHERE path = 'tips/b.jpg');",
    )
    .unwrap();
    drop(db);
    let daemon = start(&env, &clock("2030-06-10T11:00:00Z"));
    let text = wait_for_summary(&env, CHAT);
    for line in [
        "Daily summary</b> · Sun 09 Jun\n<i>(late: Storyline was not running at 09:00)</i>",
        "<b>Yesterday</b>: 6 stories",
        "• quotes: 1 posted · 1 skipped\n",
        "• tips: 1 rejected · 1 missed · 1 open\n",
        "• nothing left to pick: 1 failed\n",
        "Total: 1 posted · 1 skipped · 1 rejected · 1 failed · 1 missed · 1 open",
        "• 1 story waiting for a decision in this chat",
        "⏭ Next: Mon 10 Jun 1",
        // Only c is not resting.
        "⚠️ 0 days of stories left (1 item at 3 a day)",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    let_it_tick();
    assert_eq!(
        summaries(&env, CHAT).len(),
        1,
        "{:?}",
        summaries(&env, CHAT)
    );
    assert_eq!(
        recorded(&env, CHAT),
        vec![
            ("2030-06-08".to_string(), false),
            ("2030-06-10".to_string(), true)
        ]
    );
    daemon.kill9();
}

/// Berlin moves its clocks on Sunday 2030-03-31 at 02:00: 09:00 that day is
/// 07:00 UTC (08:00 UTC the day before). The summary comes at 09:00 local.
#[test]
fn on_the_day_the_clocks_change_the_summary_comes_at_the_local_hour() {
    let env = env_with(
        &[(CHAT, "2030-03-20T10:00:00Z", "Europe/Berlin", None)],
        &[(CHAT, "2030-03-30")],
    );
    let daemon = start(&env, &clock("2030-03-31T06:57:00Z"));
    let text = wait_for_summary(&env, CHAT);
    assert!(text.contains("Daily summary</b> · Sat 30 Mar"), "{text}");
    assert!(!text.contains("late"), "{text}");
    let at = sent_at(&env, CHAT, "2030-03-31");
    assert!(
        at >= "2030-03-31T07:00:00Z".parse::<DateTime<Utc>>().unwrap()
            && at < "2030-03-31T07:02:00Z".parse::<DateTime<Utc>>().unwrap(),
        "sent at {at}"
    );
    let_it_tick();
    assert_eq!(summaries(&env, CHAT).len(), 1);
    daemon.kill9();
}

#[test]
fn the_hour_is_set_and_switched_off_in_settings_with_history() {
    let env = Env::new();
    let daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    assert!(
        menu.text.contains("Daily summary: <b>09:00</b>"),
        "{}",
        menu.text
    );
    let prompt = open_prompt(&env, CHAT, &menu, "🗞 Daily summary");
    assert!(prompt.text.contains("(now 09:00)"), "{}", prompt.text);
    let reply = say(&env, CHAT, ADMIN, "7");
    assert_eq!(
        reply.text,
        "✅ The daily summary comes at <b>07:00</b> (UTC)."
    );
    assert_eq!(chat_column(&env, CHAT, "daily_summary_hour"), Some(7));
    let menu = say(&env, CHAT, ADMIN, "/settings");
    open_prompt(&env, CHAT, &menu, "🗞 Daily summary: 07:00");
    let reply = say(&env, CHAT, ADMIN, "off");
    assert_eq!(reply.text, "✅ The daily summary is <b>off</b>.");
    assert_eq!(chat_column(&env, CHAT, "daily_summary"), Some(0));
    assert_eq!(chat_column(&env, CHAT, "daily_summary_hour"), Some(7));
    let changes: Vec<String> = {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT changes FROM settings_history WHERE chat_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([CHAT], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        changes[changes.len() - 2..],
        [
            r#"[{"setting":"daily_summary_hour","old":9,"new":7}]"#,
            r#"[{"setting":"daily_summary_hour","old":7,"new":null}]"#
        ]
    );
    daemon.terminate();
}
