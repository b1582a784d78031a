//! Health and audit: background runs recorded (a scan, a publish through the fake
//! Instagram) and listed by `storyline runs`; /healthz 503 while the media folder
//! is gone; the /status health block; a chat switched off and on by the operator.

use std::fs;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::helpers::*;
use crate::publishing::setup;
use crate::support::{describe_output, wait_until, Env, ADMIN, CHAT};

const SWITCHED_OFF: &str = "This chat was switched off by the operator";
const SWITCHED_ON: &str = "This chat was switched on again by the operator";
const OFF_NOTICE: &str = "This chat is switched off by the operator";

fn run_ok(env: &Env, args: &[&str]) -> String {
    let output = env.run(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        describe_output(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A pending slot of `chat` for the first media item, due in `secs`; its id.
fn slot_in(env: &Env, chat: i64, secs: i64) -> i64 {
    slot_of_item(env, chat, secs, 0)
}

/// A pending slot of `chat` for the media item at `index` (by id), due in `secs`.
fn slot_of_item(env: &Env, chat: i64, secs: i64, index: i64) -> i64 {
    let at = (Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let db = env.db();
    db.execute(
        "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, created_at)
         VALUES (?1, ?2, '2000-01-01',
                 (SELECT sha256 FROM media_items ORDER BY id LIMIT 1 OFFSET ?3), ?2)",
        rusqlite::params![chat, at, index],
    )
    .unwrap();
    db.last_insert_rowid()
}

fn slot_status(env: &Env, id: i64) -> String {
    env.db()
        .query_row(
            "SELECT status FROM posting_queue WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

/// The finished runs of `kind`: (chat_id, outcome, counts).
fn runs_of(env: &Env, kind: &str) -> Vec<(Option<i64>, String, String)> {
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT chat_id, outcome, counts FROM runs
             WHERE kind = ?1 AND outcome IS NOT NULL ORDER BY id",
        )
        .unwrap();
    stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn public_url(env: &Env) -> String {
    fs::read_to_string(env.config_path())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("public_url = "))
        .unwrap()
        .trim_matches('"')
        .to_string()
}

#[test]
fn a_scan_and_a_publish_are_recorded_and_listed_by_storyline_runs() {
    let photo = crate::support::media::sized("quotes/a.jpg", 1500);
    let s = setup(&[("quotes/a.jpg", photo)], true, false);
    slot_in(&s.env, CHAT, 3);
    let daemon = s.env.start_polling();
    wait_until("a recorded scan", WAIT, || {
        (!runs_of(&s.env, "scan").is_empty()).then_some(())
    });
    let publishes = wait_until("a recorded publish", Duration::from_secs(60), || {
        Some(runs_of(&s.env, "publish")).filter(|runs| !runs.is_empty())
    });
    assert_eq!(
        publishes,
        [(
            Some(CHAT),
            "ok".to_string(),
            r#"{"published":1}"#.to_string()
        )]
    );
    let scans = runs_of(&s.env, "scan");
    assert_eq!(scans[0].1, "ok", "{scans:?}");
    assert!(scans[0].2.contains(r#""unchanged":1"#), "{scans:?}");
    drop(daemon);

    let text = run_ok(&s.env, &["runs"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" scan ") && l.contains(" ok ") && l.contains("unchanged 1")),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains(" publish ")
            && l.contains(&format!("chat {CHAT}"))
            && l.contains(" ok ")
            && l.contains("published 1")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&run_ok(&s.env, &["runs", "--json"])).unwrap();
    let kinds: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"scan") && kinds.contains(&"publish"),
        "{json}"
    );
    let later = run_ok(&s.env, &["runs", "--since", "2999-01-01"]);
    assert_eq!(later, "No background runs recorded yet.\n");

    // A backup is a run too.
    let copy = s.env.path().join("copy.db");
    run_ok(&s.env, &["backup", copy.to_str().unwrap()]);
    assert_eq!(runs_of(&s.env, "backup").len(), 1);
}

#[test]
fn healthz_answers_503_while_the_media_folder_is_gone_and_200_when_it_is_back() {
    let photo = crate::support::media::sized("quotes/a.jpg", 1500);
    let s = setup(&[("quotes/a.jpg", photo)], false, false);
    let _daemon = s.env.start_polling();
    let url = format!("{}/healthz", public_url(&s.env));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let health = || -> (u16, Value) {
        let mut answer = wait_until("the web server", WAIT, || agent.get(&url).call().ok());
        let status = answer.status().as_u16();
        let body = answer.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&body).unwrap())
    };
    let (status, body) = health();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["problems"], serde_json::json!([]));

    let moved = s.env.path().join("media-away");
    fs::rename(s.env.media_dir(), &moved).unwrap();
    let (status, body) = health();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["problems"],
        serde_json::json!(["media: the media folder is missing"])
    );
    assert_eq!(body["database_ok"], true);

    fs::rename(&moved, s.env.media_dir()).unwrap();
    let (status, body) = health();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn status_shows_the_health_block() {
    let env = Env::new();
    fs::create_dir_all(env.media_dir().join("quotes")).unwrap();
    fs::write(
        env.media_dir().join("quotes/a.jpg"),
        crate::support::media::sized("quotes/a.jpg", 1500),
    )
    .unwrap();
    let _daemon = env.start_polling();
    wait_until("a recorded scan", WAIT, || {
        (!runs_of(&env, "scan").is_empty()).then_some(())
    });
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("📊 <b>Status</b>"), "{}", status.text);
    assert!(status.text.contains("🩺 <b>Health</b>"), "{}", status.text);
    assert!(
        status.text.contains("Telegram: last poll "),
        "{}",
        status.text
    );
    assert!(
        status.text.contains("never backed up (storyline backup)"),
        "{}",
        status.text
    );
    assert!(
        status.text.contains("Media: 1 item, last scan "),
        "{}",
        status.text
    );
    assert!(
        status.text.contains("Instagram token: no account"),
        "{}",
        status.text
    );
    assert!(status.text.contains("Last error: none"), "{}", status.text);
}

#[test]
fn a_chat_switched_off_gets_no_stories_and_one_notice_and_is_back_when_switched_on() {
    let env = Env::new();
    fs::create_dir_all(env.media_dir().join("quotes")).unwrap();
    for (name, size) in [("quotes/a.jpg", 1500), ("quotes/b.jpg", 1700)] {
        fs::write(
            env.media_dir().join(name),
            crate::support::media::sized(name, size),
        )
        .unwrap();
    }
    run_ok(&env, &["scan"]);
    let _daemon = env.start_polling();
    say(&env, CHAT, ADMIN, "/status");
    wait_for_empty_outbox(&env);

    let out = run_ok(&env, &["chats", "disable", &CHAT.to_string()]);
    assert!(out.contains("switched off"), "{out}");
    wait_until("the chat told it is off", WAIT, || {
        (messages_containing(&env, CHAT, SWITCHED_OFF) == 1).then_some(())
    });
    let again = run_ok(&env, &["chats", "disable", &CHAT.to_string()]);
    assert!(again.contains("already switched off"), "{again}");
    let list = run_ok(&env, &["chats", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&CHAT.to_string()) && l.contains("switched off since")),
        "{list}"
    );

    let slot = slot_in(&env, CHAT, 1);
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    let last = env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    wait_until("the slot skipped", WAIT, || {
        (slot_status(&env, slot) == "skipped").then_some(())
    });
    wait_until("both commands handled", WAIT, || {
        (env.tg.confirmed_offset() > last).then_some(())
    });
    wait_for_empty_outbox(&env);
    let since: Vec<_> = env.tg.messages(CHAT).into_iter().skip(before).collect();
    assert_eq!(
        since.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        [format!(
            "⏸ {OFF_NOTICE}; Storyline does not answer here until it is switched on again."
        )],
        "one notice, no status, no story"
    );
    assert!(since.iter().all(|m| m.kind == "text"));
    assert_eq!(
        messages_containing(&env, CHAT, SWITCHED_OFF),
        1,
        "told once"
    );

    run_ok(&env, &["chats", "enable", &CHAT.to_string()]);
    wait_until("the chat told it is on", WAIT, || {
        (messages_containing(&env, CHAT, SWITCHED_ON) == 1).then_some(())
    });
    // The other item: the one skipped while the chat was off is locked a while.
    // The scheduler looks again after the next update.
    let slot = slot_of_item(&env, CHAT, 1, 1);
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("📊 <b>Status</b>"), "{}", status.text);
    wait_until("a story again", WAIT, || {
        env.tg
            .messages(CHAT)
            .iter()
            .any(|m| m.kind == "photo")
            .then_some(())
    });
    assert_ne!(slot_status(&env, slot), "skipped");
    assert_eq!(messages_containing(&env, CHAT, SWITCHED_ON), 1, "told once");
}
