//! "Nothing confirmed is lost or done twice", proven by injecting the faults: other
//! processes on the live database, a second daemon, a lost key file, a 429 with
//! `retry_after: 0`, and update ids that overflow or start again lower.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::helpers::{
    chat_column, handled_commands, history_count, is_notice, messages_containing, say,
    wait_for_empty_outbox, WAIT,
};
use crate::support::{describe_output, wait_until, Env, Fault, ADMIN, CHAT};

/// Files of the daemon's descriptors that were deleted under it (a WAL that
/// another process checkpointed away shows up here).
fn deleted_files_held(pid: u32) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.ends_with("(deleted)"))
        .collect()
}

/// Reads one value with the system's SQLite library through Python, in a
/// process of its own that opens the database read-write and closes it.
fn system_sqlite_read(db: &std::path::Path, query: &str) -> String {
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1])\n\
                  print(c.execute(sys.argv[2]).fetchone()[0])\n\
                  c.close()\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .arg(query)
        .output()
        .unwrap_or_else(|e| panic!("this test needs python3 (its sqlite3 module): {e}"));
    assert!(out.status.success(), "{}", describe_output(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dry_run_in(db: &rusqlite::Connection) -> Option<i64> {
    db.query_row(
        "SELECT dry_run_mode FROM chats WHERE chat_id = ?1",
        [CHAT],
        |r| r.get(0),
    )
    .unwrap_or(None)
}

fn versions_in(db: &rusqlite::Connection) -> i64 {
    db.query_row(
        "SELECT count(*) FROM settings_history WHERE chat_id = ?1",
        [CHAT],
        |r| r.get(0),
    )
    .unwrap_or(-1)
}

fn integrity(db: &rusqlite::Connection) -> String {
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn other_processes_on_the_live_database_lose_no_confirmed_change() {
    let env = Env::new();
    for n in 0..3 {
        fs::write(
            env.media_dir().join(format!("{n}.jpg")),
            crate::support::media::jpeg(&[n]),
        )
        .unwrap();
    }
    let daemon = env.start_polling();
    let wal = env.path().join("storyline.db-wal");
    // The first toggle creates the chat's row and its first two versions.
    let mut dry_run = 1;
    for round in 0..6 {
        let reply = say(&env, CHAT, ADMIN, "/dryrun");
        assert!(reply.text.contains("Dry run is"), "{}", reply.text);
        dry_run = 1 - dry_run;
        let versions = history_count(&env, CHAT);
        // A plain read-write connection, opened and closed: one from this test,
        // and one from the system's SQLite (Python's, as a script or the sqlite3
        // shell would), which checkpoints and deletes the WAL on close when it
        // believes it is alone.
        {
            let reader = env.db();
            assert_eq!(dry_run_in(&reader), Some(dry_run), "round {round}");
        }
        assert_eq!(
            system_sqlite_read(&env.db_path(), "SELECT dry_run_mode FROM chats"),
            dry_run.to_string(),
            "round {round}"
        );
        if round % 2 == 0 {
            let before = env.tg.messages(CHAT).len();
            env.tg.push_message(CHAT, ADMIN, "ada", "/scan");
            wait_until("the scan report", WAIT, || {
                env.tg
                    .messages(CHAT)
                    .into_iter()
                    .skip(before)
                    .find(|m| m.text.contains("Scan finished"))
            });
        }
        let backup = env.path().join(format!("backup-{round}.db"));
        let out = env.run(&["backup", backup.to_str().unwrap()]);
        assert!(out.status.success(), "{}", describe_output(&out));
        for command in [&["queue"][..], &["plan"][..]] {
            let out = env.run(command);
            assert!(out.status.success(), "{}", describe_output(&out));
        }
        let copy = rusqlite::Connection::open(&backup).unwrap();
        assert_eq!(
            (dry_run_in(&copy), versions_in(&copy)),
            (Some(dry_run), versions),
            "round {round}: the backup holds the latest confirmed change"
        );
        assert!(wal.exists(), "round {round}: the live WAL was removed");
        assert_eq!(
            deleted_files_held(daemon.pid()),
            Vec::<String>::new(),
            "round {round}: the daemon writes to deleted files"
        );
        // The daemon still sees what others see, and others see what it wrote.
        let reply = say(&env, CHAT, ADMIN, "/status");
        assert!(!reply.text.is_empty());
    }
    let confirmed_versions = history_count(&env, CHAT);
    // A reader keeps the file open (inside a read transaction) while the daemon stops.
    let reader = env.db();
    reader.execute_batch("BEGIN").unwrap();
    assert_eq!(dry_run_in(&reader), Some(dry_run));
    let (status, _) = daemon.terminate();
    assert!(status.success());
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    let db = env.db();
    assert_eq!(dry_run_in(&db), Some(dry_run));
    assert_eq!(versions_in(&db), confirmed_versions);
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn a_new_database_is_private_and_a_loose_one_is_made_private() {
    let env = Env::new();
    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let mode = |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.db_path()), 0o600);
    fs::set_permissions(env.db_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["queue"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(mode(&env.db_path()), 0o600);
}

#[test]
fn a_second_daemon_on_the_same_database_exits_2_and_replies_are_not_doubled() {
    let env = Env::new();
    let first = env.start_polling();
    let second = env.run(&["run"]);
    assert_eq!(
        second.status.code(),
        Some(2),
        "{}",
        describe_output(&second)
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("already running (pid {}, since ", first.pid())),
        "{stderr}"
    );
    // The CLI keeps working beside the daemon.
    let out = env.run(&["queue"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    for _ in 0..20 {
        env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    }
    let replies = |env: &Env| {
        env.tg
            .messages(CHAT)
            .into_iter()
            .filter(|m| !is_notice(m) && m.text.contains("Status"))
            .count()
    };
    wait_until("20 /status replies", WAIT, || {
        (replies(&env) >= 20).then_some(())
    });
    wait_until("every update confirmed", WAIT, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
    assert_eq!(replies(&env), 20);
    let (status, _) = first.terminate();
    assert!(status.success());
    // Once the first is gone, the lock is free again.
    let again = env.start_polling();
    again.terminate();
}

#[test]
fn a_lost_or_wrong_key_file_stops_the_start_and_is_never_replaced() {
    let env = Env::new();
    let out = env.run(&[
        "accounts",
        "add",
        "--name",
        "Brand",
        "--instagram-id",
        "17841400000000001",
        "--username",
        "brand",
        "--token",
        "IGQVJ-test-token-value",
    ]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let key_path = env.path().join("secret.key");
    let key = fs::read(&key_path).unwrap();
    let refused = |what: &str, expected: &str| {
        let out = env.run(&["run"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            describe_output(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(
            env.tg.calls_of("getUpdates").is_empty(),
            "{what}: it polled before refusing"
        );
    };

    fs::remove_file(&key_path).unwrap();
    refused(
        "missing",
        "the key file is missing, but the database holds 1 sealed",
    );
    assert!(!key_path.exists(), "a new key replaced the lost one");
    // `accounts add` must not make a new key either.
    let out = env.run(&[
        "accounts",
        "add",
        "--name",
        "Other",
        "--instagram-id",
        "17841400000000002",
        "--username",
        "other",
        "--token",
        "IGQVJ-other-token",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe_output(&out));
    assert!(!key_path.exists());

    fs::write(&key_path, b"short").unwrap();
    refused("5 bytes", "is 5 bytes, not 32");
    assert_eq!(fs::read(&key_path).unwrap(), b"short");

    fs::remove_file(&key_path).unwrap();
    fs::create_dir(&key_path).unwrap();
    refused("a directory", "is not a file");
    fs::remove_dir(&key_path).unwrap();

    fs::write(&key_path, [7u8; 32]).unwrap();
    refused("another key", "does not open 1 of 1 sealed");

    // The right key, readable by others: made private, with an ERROR saying so.
    fs::write(&key_path, &key).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
    let daemon = env.start_polling();
    assert_eq!(
        fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        env.log()
            .contains("readable by others (mode 0644); made it 0600"),
        "{}",
        env.log()
    );
    daemon.terminate();

    // Lost for good: forgetting the tokens lets a new key be made.
    fs::remove_file(&key_path).unwrap();
    let out = env.run(&["accounts", "forget-tokens"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "needs --yes: {}",
        describe_output(&out)
    );
    let out = env.run(&["accounts", "forget-tokens", "--yes"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let daemon = env.start_polling();
    assert!(key_path.exists());
    assert_ne!(fs::read(&key_path).unwrap(), key);
    daemon.terminate();
}

#[test]
fn a_429_with_retry_after_0_waits_a_second_and_is_logged_once() {
    let env = Env::new();
    let daemon = env.start_polling();
    let from = env.tg.calls().len();
    let outage = Duration::from_secs(4);
    env.tg.fail_until(
        "getUpdates",
        Instant::now() + outage,
        Fault::too_many_requests(0),
    );
    let reply = say(&env, CHAT, ADMIN, "/status");
    assert!(reply.text.contains("Status"), "{}", reply.text);
    let polls = env
        .tg
        .calls()
        .iter()
        .skip(from)
        .filter(|c| c.method == "getUpdates")
        .count();
    // One poll a second at most while refused (plus the one that was waiting).
    assert!(polls <= 8, "{polls} getUpdates in a 4 s outage");
    let log = env.log();
    assert_eq!(
        log.matches("Telegram asks us to slow down").count(),
        1,
        "{log}"
    );
    daemon.terminate();
}

#[test]
fn update_ids_that_restart_lower_or_reach_the_maximum_are_each_handled_once() {
    let env = Env::new();
    let daemon = env.start_polling();
    say(&env, CHAT, ADMIN, "/dryrun");
    // After a week without updates Telegram picks new ids, here far below the offset.
    env.tg.restart_update_ids(7);
    let reply = say(&env, CHAT, ADMIN, "/dryrun");
    assert!(reply.text.contains("Dry run is"), "{}", reply.text);
    say(&env, CHAT, ADMIN, "/dryrun");
    wait_until("every update confirmed", WAIT, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
    // A kill and a restart repeat none of them (once their replies are recorded:
    // a kill inside that window may repeat one reply, which the crash tests bound).
    wait_for_empty_outbox(&env);
    daemon.kill9();
    let daemon = env.start_polling();
    env.tg.restart_update_ids(i64::MAX - 1);
    say(&env, CHAT, ADMIN, "/dryrun");
    say(&env, CHAT, ADMIN, "/dryrun");
    // The largest id cannot be confirmed by a higher offset; the bot must still
    // hear the next sequence.
    env.tg.restart_update_ids(100);
    let reply = say(&env, CHAT, ADMIN, "/status");
    assert!(reply.text.contains("Status"), "{}", reply.text);
    daemon.terminate();

    let toggles = 5;
    let handled = handled_commands(&env, "dryrun");
    assert_eq!(handled, toggles, "each /dryrun handled exactly once");
    let replies = messages_containing(&env, CHAT, "Dry run is");
    assert_eq!(replies, toggles);
    // From ON, five toggles end OFF.
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(0));
}
