//! The posting flow: media in the folder → a story in the chat with buttons →
//! a person's decision, recorded and locked; the queue, downtime and pauses.

use std::fs;
use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use crate::helpers::*;
use crate::support::{describe_output, wait_until, Env, SentMessage, ADMIN, CHAT};

/// Writes a valid file of the path's kind, of at least `bytes` bytes and with
/// distinct content, under the media folder.
fn put(env: &Env, path: &str, bytes: usize) {
    let full = env.media_dir().join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, crate::support::media::sized(path, bytes)).unwrap();
}

fn library(env: &Env) {
    put(env, "quotes/monday.jpg", 2000);
    put(env, "quotes/tuesday.jpg", 3000);
    put(env, "products/mug.png", 4000);
    put(env, "clip.mp4", 5000);
    let out = env.run(&["scan"]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::describe_output(&out)
    );
}

/// Sends /next and returns the story message it produced.
fn next_story(env: &Env) -> SentMessage {
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    wait_until("a story", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text")
    })
}

fn story_file(story: &SentMessage) -> String {
    story
        .text
        .lines()
        .next()
        .unwrap_or_default()
        .rsplit(" · ")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn queue_id_of(story: &SentMessage) -> i64 {
    let data = button_data(story, "✅ Posted");
    data.rsplit(':').next().unwrap().parse().unwrap()
}

/// Presses a story button and waits until the press is answered and the story
/// message shows the change.
fn press_story(
    env: &Env,
    story: &SentMessage,
    prefix: &str,
) -> (crate::support::Call, SentMessage) {
    let data = button_data(story, prefix);
    let answer = press_data(env, CHAT, ADMIN, story.message_id, &data);
    let now = wait_until("the story to change", WAIT, || {
        env.tg
            .message(CHAT, story.message_id)
            .filter(|m| m.text != story.text || m.reply_markup != story.reply_markup)
    });
    (answer, now)
}

fn lock_of(env: &Env, file: &str) -> (Option<String>, Option<String>, i64) {
    env.db()
        .query_row(
            "SELECT c.locked_until, c.lock_reason, c.times_posted FROM chat_media c
             JOIN media_items m ON m.sha256 = c.sha256 WHERE c.chat_id = ?1 AND m.path LIKE '%' || ?2",
            rusqlite::params![CHAT, file],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[test]
fn next_sends_a_story_with_buttons_and_posted_is_recorded_and_locked() {
    let env = Env::new();
    library(&env);
    let _daemon = env.start_polling();
    let story = next_story(&env);
    assert!(story.kind == "photo" || story.kind == "video", "{story:?}");
    assert!(story.text.contains("[dry run]"), "{}", story.text);
    assert!(story.text.contains("🕑 Slot"), "{}", story.text);
    let labels: Vec<String> = buttons(&story).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        labels,
        ["✅ Posted", "⏭ Skip", "🚫 Reject", "📲 Open Instagram"]
    );
    let upload = env
        .tg
        .calls()
        .into_iter()
        .find(|c| c.method == "sendPhoto" || c.method == "sendVideo")
        .unwrap();
    let field = if upload.method == "sendPhoto" {
        "photo"
    } else {
        "video"
    };
    assert!(
        upload.params[field]["size"].as_u64().unwrap_or(0) >= 2000,
        "multipart upload: {:?}",
        upload.params
    );

    let first = story_file(&story);
    let (answer, decided) = press_story(&env, &story, "✅ Posted");
    assert!(!is_alert(&answer));
    assert!(
        decided.text.contains("Posted by @ada at"),
        "{}",
        decided.text
    );
    assert!(decided.reply_markup.is_none());
    let (outcome, method, user): (String, String, i64) = env
        .db()
        .query_row(
            "SELECT outcome, method, user_id FROM posting_history WHERE chat_id = ?1",
            [CHAT],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (outcome.as_str(), method.as_str(), user),
        ("posted", "dry_run", ADMIN)
    );
    let (until, reason, times) = lock_of(&env, &first);
    let until = chrono::DateTime::parse_from_rfc3339(&until.unwrap()).unwrap();
    let days = (until.with_timezone(&Utc) - Utc::now()).num_days();
    assert!((29..=30).contains(&days), "locked for {days} days");
    assert_eq!((reason.as_deref(), times), (Some("posted"), 1));

    // A second press on the decided story changes nothing.
    let answer = press_data(
        &env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&story, "⏭ Skip"),
    );
    assert!(is_alert(&answer));
    assert!(
        answer.params["text"]
            .as_str()
            .unwrap()
            .contains("Already posted by @ada"),
        "{answer:?}"
    );
    let rows: i64 = env
        .db()
        .query_row("SELECT count(*) FROM posting_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);

    let second = next_story(&env);
    assert_ne!(
        story_file(&second),
        first,
        "a locked item is not sent again"
    );
}

#[test]
fn skip_and_reject_paths() {
    let env = Env::new();
    library(&env);
    let _daemon = env.start_polling();
    let story = next_story(&env);
    let skipped = story_file(&story);
    let (_, decided) = press_story(&env, &story, "⏭ Skip");
    assert!(decided.text.contains("Skipped by @ada"), "{}", decided.text);
    let (until, reason, times) = lock_of(&env, &skipped);
    let days = (chrono::DateTime::parse_from_rfc3339(&until.unwrap())
        .unwrap()
        .with_timezone(&Utc)
        - Utc::now())
    .num_days();
    assert!((44..=45).contains(&days));
    assert_eq!((reason.as_deref(), times), (Some("skipped"), 0));

    let story = next_story(&env);
    let (answer, confirming) = press_story(&env, &story, "🚫 Reject");
    assert!(!is_alert(&answer));
    let labels: Vec<String> = buttons(&confirming).into_iter().map(|(t, _)| t).collect();
    assert_eq!(labels, ["🚫 Yes, never post it", "↩️ Keep it"]);
    let (_, kept) = press_story(&env, &confirming, "↩️ Keep it");
    assert_eq!(buttons(&kept).len(), 4, "the story buttons are back");
    let (_, confirming) = press_story(&env, &kept, "🚫 Reject");
    let rejected = story_file(&story);
    let (_, decided) = press_story(&env, &confirming, "🚫 Yes");
    assert!(
        decided.text.contains("Rejected by @ada"),
        "{}",
        decided.text
    );
    let (until, reason, _) = lock_of(&env, &rejected);
    assert_eq!(
        (until.as_deref(), reason.as_deref()),
        (Some("9999-12-31T00:00:00Z"), Some("rejected"))
    );
    let outcomes: Vec<String> = {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT outcome FROM posting_history ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(outcomes, ["skipped", "rejected"]);
}

#[test]
fn forged_and_foreign_story_presses_change_nothing() {
    let env = Env::new();
    library(&env);
    let other_chat = -100_999;
    let config = env.base_config().replace(
        "allowed_chat_ids = [4242]",
        &format!("allowed_chat_ids = [4242, {other_chat}]"),
    );
    env.write_config_raw(&config);
    let _daemon = env.start_polling();
    let story = next_story(&env);
    let mine = queue_id_of(&story);
    // The other chat's story, pressed from this chat.
    let before = env.tg.messages(other_chat).len();
    env.tg.push_message(other_chat, ADMIN, "ada", "/next");
    let theirs = wait_until("the other chat's story", WAIT, || {
        env.tg
            .messages(other_chat)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text")
    });
    let their_id = queue_id_of(&theirs);
    for (message_id, data) in [
        (story.message_id, format!("1:st:p:{their_id}")),
        (story.message_id + 100, format!("1:st:p:{mine}")),
        (story.message_id, "1:st:p:999999".to_string()),
        (story.message_id, format!("1:st:zz:{mine}")),
    ] {
        let answer = press_data(&env, CHAT, ADMIN, message_id, &data);
        assert!(is_alert(&answer), "{data}: {answer:?}");
    }
    let rows: i64 = env
        .db()
        .query_row("SELECT count(*) FROM posting_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    let statuses: Vec<String> = {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT status FROM posting_queue WHERE id IN (?1, ?2)")
            .unwrap();
        stmt.query_map([mine, their_id], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(statuses, ["sent", "sent"]);
}

#[test]
fn a_file_deleted_before_its_slot_is_marked_gone_and_the_next_is_sent() {
    let env = Env::new();
    put(&env, "quotes/one.jpg", 1000);
    put(&env, "quotes/two.jpg", 1200);
    assert!(env.run(&["scan"]).status.success());
    let _daemon = env.start_polling();
    // The plan already holds an item for the next slot; take its file away.
    let planned: String = wait_until("a planned slot", WAIT, || {
        env.db()
            .query_row(
                "SELECT m.path FROM posting_queue q JOIN media_items m ON m.sha256 = q.sha256
                 WHERE q.chat_id = ?1 AND q.status = 'pending' ORDER BY q.scheduled_for LIMIT 1",
                [CHAT],
                |r| r.get::<_, String>(0),
            )
            .ok()
    });
    fs::remove_file(env.media_dir().join(&planned)).unwrap();
    let story = next_story(&env);
    let sent = story_file(&story);
    assert!(!planned.ends_with(&sent), "sent the deleted {planned}");
    let active: i64 = env
        .db()
        .query_row(
            "SELECT is_active FROM media_items WHERE path = ?1",
            [&planned],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(active, 0);
}

/// A first start with files never scanned: the plan waits for the first scan, so
/// no "only 0 items left" warning goes out and every planned slot has an item.
#[test]
fn a_first_start_plans_after_the_first_scan() {
    let env = Env::new();
    // Over a week of items at 3 a day, so no warning is due; enough files that the
    // first scan takes a while (the first plan once ran before it and found none).
    for n in 0..400 {
        put(&env, &format!("quotes/q{n:03}.jpg"), 20_000 + n);
    }
    let _daemon = env.start_polling();
    let planned = wait_until("the first plan", WAIT, || {
        env.db()
            .query_row(
                "SELECT count(*), count(sha256) FROM posting_queue WHERE chat_id = ?1",
                [CHAT],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .ok()
            .filter(|(n, _)| *n > 0)
    });
    assert_eq!(planned.0, planned.1, "every planned slot has an item");
    let queue = say(&env, CHAT, ADMIN, "/queue");
    assert!(!queue.text.contains("nothing left"), "{}", queue.text);
    let warnings: Vec<String> = env
        .tg
        .messages(CHAT)
        .into_iter()
        .map(|m| m.text)
        .filter(|text| text.contains("📉"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn the_queue_survives_a_restart_without_being_planned_twice() {
    let env = Env::new();
    library(&env);
    let daemon = env.start_polling();
    let count = || -> i64 {
        env.db()
            .query_row(
                "SELECT count(*) FROM posting_queue WHERE chat_id = ?1",
                [CHAT],
                |r| r.get(0),
            )
            .unwrap()
    };
    let planned = wait_until("the plan", WAIT, || Some(count()).filter(|n| *n > 0));
    let queue = say(&env, CHAT, ADMIN, "/queue");
    assert!(queue.text.contains("Queue"), "{}", queue.text);
    assert!(
        queue.text.lines().count() as i64 > planned.min(3),
        "{}",
        queue.text
    );
    daemon.terminate();
    let _daemon = env.start_polling();
    let again = say(&env, CHAT, ADMIN, "/queue");
    assert_eq!(count(), planned);
    assert_eq!(again.text, queue.text);
    let schedule = say(&env, CHAT, ADMIN, "/schedule 2");
    assert!(schedule.text.contains("Schedule"), "{}", schedule.text);
    let bad = say(&env, CHAT, ADMIN, "/schedule 99");
    assert!(bad.text.contains("1 to 14"), "{}", bad.text);
}

/// Adds a pending slot directly, as if planned earlier, due `offset_secs` from now.
fn add_slot(env: &Env, offset_secs: i64) -> i64 {
    let at = (Utc::now() + chrono::Duration::seconds(offset_secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let db = env.db();
    let sha: String = db
        .query_row(
            "SELECT sha256 FROM media_items ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, created_at) VALUES (?1, ?2, '2000-01-01', ?3, ?2)",
        rusqlite::params![CHAT, at, sha],
    )
    .unwrap();
    db.last_insert_rowid()
}

fn status_of(env: &Env, id: i64) -> String {
    env.db()
        .query_row(
            "SELECT status FROM posting_queue WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_due_slot_fires_and_missed_slots_are_reported_not_burst() {
    let env = Env::new();
    library(&env);
    // The Pi was off: two slots passed an hour ago; one is due in a moment.
    env.run(&["migrate"]);
    env.run(&["queue"]); // creates the allowed chat's row
    let missed_a = add_slot(&env, -3600);
    let missed_b = add_slot(&env, -3000);
    let due = add_slot(&env, 3);
    let _daemon = env.start_polling();
    let notice = wait_until("the missed notice", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("missed"))
    });
    assert!(is_notice(&notice));
    assert!(
        notice.text.contains("2 scheduled stories were missed"),
        "{}",
        notice.text
    );
    assert_eq!(
        (status_of(&env, missed_a), status_of(&env, missed_b)),
        ("missed".into(), "missed".into())
    );
    let story = wait_until("the due story", Duration::from_secs(30), || {
        env.tg.messages(CHAT).into_iter().find(|m| m.kind != "text")
    });
    assert_eq!(queue_id_of(&story), due);
    assert_eq!(
        env.tg
            .messages(CHAT)
            .iter()
            .filter(|m| m.kind != "text")
            .count(),
        1,
        "no burst of missed stories"
    );
}

#[test]
fn a_paused_chat_skips_its_slots() {
    let env = Env::new();
    library(&env);
    let daemon = env.start_polling();
    say(&env, CHAT, ADMIN, "/pause");
    daemon.terminate();
    let due = add_slot(&env, 2);
    let _daemon = env.start_polling();
    wait_until("the slot to be skipped", Duration::from_secs(30), || {
        (status_of(&env, due) == "skipped").then_some(())
    });
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Paused"));
    assert!(
        env.tg.messages(CHAT).iter().all(|m| m.kind == "text"),
        "a paused chat got a story"
    );
}

#[test]
fn scan_reports_counts_after_adding_and_removing_files() {
    let env = Env::new();
    library(&env);
    let _daemon = env.start_polling();
    wait_until("the start-up scan", WAIT, || {
        env.log().contains("scan: ").then_some(())
    });
    put(&env, "quotes/wednesday.jpg", 2500);
    put(&env, "memes/cat.webp", 2600);
    fs::remove_file(env.media_dir().join("products/mug.png")).unwrap();
    let before = env.tg.messages(CHAT).len();
    let started = say(&env, CHAT, ADMIN, "/scan");
    assert!(started.text.contains("Scanning"), "{}", started.text);
    let report = wait_until("the scan report", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .find(|m| m.text.contains("Scan finished"))
    });
    assert!(
        report.text.contains("2 new, 0 changed, 1 gone"),
        "{}",
        report.text
    );
    assert!(
        report.text.contains("memes: 1 item (+1)"),
        "{}",
        report.text
    );
    assert!(
        report.text.contains("products: 0 items (−1)"),
        "{}",
        report.text
    );
}

/// Writes `bytes` as they are under the media folder.
fn put_raw(env: &Env, path: &str, bytes: &[u8]) {
    let full = env.media_dir().join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, bytes).unwrap();
}

fn indexed_paths(env: &Env) -> Vec<(String, bool)> {
    let db = env.db();
    let mut statement = db
        .prepare("SELECT path, is_active FROM media_items ORDER BY path")
        .unwrap();
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn scan_report(env: &Env) -> SentMessage {
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/scan");
    wait_until("the scan report", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .find(|m| m.text.contains("Scan finished"))
    })
}

#[test]
fn unsupported_and_broken_files_are_named_by_scan_and_never_sent() {
    let env = Env::new();
    put(&env, "quotes/a.jpg", 1000);
    put(&env, "quotes/b.jpg", 1000);
    for name in ["IMG_1.heic", "IMG_2.HEIC", "quotes/IMG_3.heic", "notes.txt"] {
        put_raw(&env, name, b"not something Storyline posts");
    }
    put_raw(&env, "broken.png", b"hello");
    put_raw(&env, "clip.mp4", b"random bytes, not a movie");
    put_raw(&env, ".DS_Store", b"ignored without a word");
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "2 new, 0 changed, 0 gone, 0 unchanged (1 ignored, 4 unsupported, 2 broken) in ",
        "\n3 .heic files: not supported, export as JPEG\n",
        "\n1 .txt file: not supported\n",
        "\n1 broken .mp4 file: clip.mp4\n",
        "\n1 broken .png file: broken.png\n",
    ] {
        assert!(printed.contains(line), "{line:?} in:\n{printed}");
    }
    assert!(!printed.contains("DS_Store"), "{printed}");
    assert_eq!(
        indexed_paths(&env),
        [
            ("quotes/a.jpg".to_string(), true),
            ("quotes/b.jpg".to_string(), true)
        ]
    );

    // An indexed photo saved over with something else is no longer scheduled.
    let _daemon = env.start_polling();
    wait_until("the start-up scan", WAIT, || {
        env.log().contains("scan: ").then_some(())
    });
    put_raw(&env, "quotes/a.jpg", b"saved over with text");
    let report = scan_report(&env);
    for line in [
        "0 new, 0 changed, 1 gone, 1 unchanged (1 ignored, 4 unsupported, 3 broken)",
        "\n3 .heic files: not supported, export as JPEG",
        "\n1 broken .jpg file: quotes/a.jpg",
        "\n1 broken .mp4 file: clip.mp4",
        "\n1 broken .png file: broken.png",
    ] {
        assert!(report.text.contains(line), "{line:?} in:\n{}", report.text);
    }
    assert_eq!(
        indexed_paths(&env),
        [
            ("quotes/a.jpg".to_string(), false),
            ("quotes/b.jpg".to_string(), true)
        ]
    );
    let story = next_story(&env);
    assert_eq!(story_file(&story), "b.jpg");
    press_story(&env, &story, "✅ Posted");
    let nothing = say(&env, CHAT, ADMIN, "/next");
    assert!(nothing.text.contains("Nothing to post"), "{}", nothing.text);
    let stories = env.tg.calls_of("sendPhoto").len() + env.tg.calls_of("sendVideo").len();
    assert_eq!(stories, 1, "only b.jpg was ever sent");
    let log = env.log();
    assert!(
        log.contains("quotes/a.jpg: not posted: it is not a JPEG, PNG or WebP image"),
        "{log}"
    );
}

#[test]
fn a_missing_media_folder_is_created_at_start_and_called_missing_when_gone() {
    let env = Env::new();
    fs::remove_dir(env.media_dir()).unwrap();
    let _daemon = env.start_polling();
    wait_until("the start-up scan", WAIT, || {
        env.log().contains("scan: 0 new").then_some(())
    });
    let log = env.log();
    assert!(log.contains("created the media folder"), "{log}");
    assert!(!log.contains("scan of media failed"), "{log}");
    assert!(env.media_dir().is_dir());
    let empty = say(&env, CHAT, ADMIN, "/next");
    assert!(
        empty.text.contains("or the media folder is empty"),
        "{}",
        empty.text
    );
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(!status.text.contains("missing"), "{}", status.text);

    // Removed while running: "missing", not "empty".
    fs::remove_dir(env.media_dir()).unwrap();
    let missing = say(&env, CHAT, ADMIN, "/next");
    assert!(
        missing.text.contains(&format!(
            "Nothing to post: the media folder <code>{}</code> is missing.",
            env.media_dir().display()
        )),
        "{}",
        missing.text
    );
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status.text.contains(&format!(
            "⚠️ The media folder <code>{}</code> is missing",
            env.media_dir().display()
        )),
        "{}",
        status.text
    );
}

#[test]
fn a_missing_media_folder_with_an_indexed_library_is_left_missing_and_the_library_kept() {
    let env = Env::new();
    library(&env);
    fs::rename(env.media_dir(), env.path().join("unmounted")).unwrap();
    let _daemon = env.start_polling();
    wait_until("the warning", WAIT, || {
        env.log().contains("not creating it").then_some(())
    });
    assert!(!env.media_dir().exists());
    let missing = say(&env, CHAT, ADMIN, "/next");
    assert!(
        missing.text.contains(&format!(
            "Nothing to post: the media folder <code>{}</code> is missing.",
            env.media_dir().display()
        )),
        "{}",
        missing.text
    );
    assert!(
        indexed_paths(&env).iter().all(|(_, active)| *active),
        "the library is kept for when the disk is back: {:?}",
        indexed_paths(&env)
    );
    // Back: the next story goes out.
    fs::rename(env.path().join("unmounted"), env.media_dir()).unwrap();
    next_story(&env);
}

#[test]
fn a_file_over_the_upload_limit_is_reported_not_sent() {
    let env = Env::new();
    // Sparse files: a video over Telegram's 50 MB (decimal, as it counts them),
    // and a photo over its 10 MB whose header is damaged past its first bytes,
    // so that no preview can stand in for it (a picture gets one: see
    // chat_photos). Their first bytes are what the scanner checks.
    let mut movie_boxes = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x08moov".to_vec();
    movie_boxes.extend_from_slice(&(52_000_000u32 - 24).to_be_bytes());
    movie_boxes.extend_from_slice(b"mdat");
    for (name, len, head) in [
        ("huge.mp4", 52_000_000, movie_boxes),
        ("huge.jpg", 11 * 1024 * 1024, b"\xFF\xD8\xFF\xE0".to_vec()),
    ] {
        let mut file = fs::File::create(env.media_dir().join(name)).unwrap();
        file.write_all(&head).unwrap();
        file.set_len(len).unwrap();
    }
    assert!(env.run(&["scan"]).status.success());
    let _daemon = env.start_polling();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let report_on = |name: &str| {
        wait_until(&format!("the report on {name}"), WAIT, || {
            env.tg
                .messages(CHAT)
                .into_iter()
                .find(|m| m.text.contains(name))
        })
    };
    let video = report_on("huge.mp4");
    assert!(
        video.text.contains("52.0 MB") && video.text.contains("videos up to 50 MB"),
        "{}",
        video.text
    );
    let photo = report_on("huge.jpg");
    assert!(
        photo
            .text
            .contains("cannot be shown in this chat: it could not be read as an image: the JPEG header is damaged"),
        "{}",
        photo.text
    );
    wait_until("nothing to post", WAIT, || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("Nothing to post"))
    });
    assert!(env.tg.calls_of("sendPhoto").is_empty());
    assert!(env.tg.calls_of("sendVideo").is_empty());
    for name in ["huge.mp4", "huge.jpg"] {
        assert!(
            lock_of(&env, name)
                .0
                .is_some_and(|until| until.starts_with("9999")),
            "{name}"
        );
    }
}

#[test]
fn a_file_sent_before_is_sent_again_by_file_id() {
    let env = Env::new();
    put(&env, "only.jpg", 3000);
    assert!(env.run(&["scan"]).status.success());
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    open_prompt(&env, CHAT, &menu, "🔒 Locks");
    let set = say(&env, CHAT, ADMIN, "0 0");
    assert!(set.text.contains("<b>0</b> days"), "{}", set.text);
    let story = next_story(&env);
    press_story(&env, &story, "⏭ Skip");
    // Delivery records the file_id asynchronously; wait for it before sending again.
    wait_until("the file_id", WAIT, || {
        env.db()
            .query_row("SELECT telegram_file_id FROM media_items", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .ok()
            .flatten()
    });
    next_story(&env);
    let sends = env.tg.calls_of("sendPhoto");
    assert_eq!(sends.len(), 2);
    assert!(
        sends[0].params["photo"].is_object(),
        "first an upload: {:?}",
        sends[0].params
    );
    assert!(
        sends[1].params["photo"]
            .as_str()
            .is_some_and(|id| id.starts_with("fake-photo")),
        "then the file_id: {:?}",
        sends[1].params
    );
}

#[test]
fn timezone_and_category_prompts_validate() {
    let env = Env::new();
    library(&env);
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    open_prompt(&env, CHAT, &menu, "🌍 Time zone");
    let bad = say(&env, CHAT, ADMIN, "Mars/Base");
    assert!(
        bad.text
            .contains("Use an IANA name such as Europe/Berlin, America/New_York or UTC."),
        "{}",
        bad.text
    );
    let good = say(&env, CHAT, ADMIN, "europe/berlin");
    assert!(good.text.contains("Europe/Berlin"), "{}", good.text);
    let prompt = open_prompt(&env, CHAT, &menu, "🗂 Categories");
    assert!(prompt.text.contains("quotes (2 items)"), "{}", prompt.text);
    let bad = say(&env, CHAT, ADMIN, "memes=50");
    assert!(bad.text.contains("memes"), "{}", bad.text);
    let good = say(&env, CHAT, ADMIN, "quotes=70 products=30");
    assert!(
        good.text.contains("products 30% · quotes 70%"),
        "{}",
        good.text
    );
    let weights: i64 = env
        .db()
        .query_row(
            "SELECT sum(weight) FROM chat_categories WHERE chat_id = ?1",
            [CHAT],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(weights, 100);
    let out = env.run(&["categories", "show"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("products 30% · quotes 70%"));
    // The operator's mix is a settings version like the menu's, with its source;
    // the same mix again writes nothing.
    let versions = || -> i64 {
        env.db()
            .query_row(
                "SELECT count(*) FROM settings_history WHERE chat_id = ?1",
                [CHAT],
                |r| r.get(0),
            )
            .unwrap()
    };
    let before = versions();
    for _ in 0..2 {
        let out = env.run(&["categories", "set", "quotes=50 products=50"]);
        assert!(
            out.status.success(),
            "{}",
            crate::support::describe_output(&out)
        );
    }
    assert_eq!(versions(), before + 1);
    let out = env.run(&["history", "--settings"]);
    let history = String::from_utf8_lossy(&out.stdout);
    let newest = history
        .lines()
        .find(|l| l.contains("CLI"))
        .unwrap_or_default();
    assert!(
        newest.contains("products 30% · quotes 70%")
            && newest.contains("products 50% · quotes 50%"),
        "{history}"
    );
}

#[test]
fn categories_left_out_of_the_mix_are_never_posted_when_the_mix_runs_dry() {
    let env = Env::new();
    library(&env);
    let out = env.run(&["categories", "set", "quotes=100"]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::describe_output(&out)
    );
    let _daemon = env.start_polling();
    for _ in 0..2 {
        let story = next_story(&env);
        assert!(story.text.starts_with("📸 <b>quotes</b>"), "{}", story.text);
        press_story(&env, &story, "🚫 Reject");
    }
    let before = env.tg.messages(CHAT).len();
    env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let reply = next_reply(&env, CHAT, before, "the skipped slot's notice");
    assert!(
        reply.text.contains("This slot was skipped")
            && reply.text.contains("<b>quotes</b>")
            && reply.text.contains("Categories"),
        "{}",
        reply.text
    );
    assert!(
        env.tg
            .messages(CHAT)
            .iter()
            .all(|m| m.kind == "text" || m.text.contains("<b>quotes</b>")),
        "a story outside the mix was sent"
    );
}
