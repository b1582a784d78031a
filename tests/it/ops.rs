//! Operating a Pi: `storyline backup` while the daemon runs, `storyline doctor`
//! against the fake Telegram, the systemd notifications of `run`, and the config
//! file the Debian package installs.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::{say, WAIT};
use crate::support::{describe_output, Daemon, Env, ADMIN, CHAT, TOKEN};

/// A second chat, set up with /start by the admin, so a backup has more than one.
const OTHER_CHAT: i64 = 777;

fn chat_ids(connection: &rusqlite::Connection) -> Vec<i64> {
    let mut statement = connection
        .prepare("SELECT chat_id FROM chats ORDER BY chat_id")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn backup_while_the_daemon_runs_is_a_checked_private_copy() {
    let env = Env::new();
    let daemon = env.start_polling();
    say(&env, OTHER_CHAT, ADMIN, "/start");
    say(&env, CHAT, ADMIN, "/settings");
    let live = chat_ids(&env.db());
    assert!(
        live.contains(&CHAT) && live.contains(&OTHER_CHAT),
        "{live:?}"
    );

    let backups = env.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let copy = backups.join("copy.db");
    let output = env.run(&["backup", copy.to_str().unwrap()]);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        stdout(&output).contains("integrity_check: ok"),
        "{}",
        describe_output(&output)
    );
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // One self-contained file: nothing half-written or journal-like left beside it.
    let names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["copy.db".to_string()]);

    let restored = rusqlite::Connection::open(&copy).unwrap();
    let check: String = restored
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let journal: String = restored
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    assert_eq!(chat_ids(&restored), live);
    drop(restored);

    // The daemon never noticed: it still answers.
    say(&env, CHAT, ADMIN, "/status");

    let again = env.run(&["backup", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", describe_output(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        describe_output(&again)
    );
    let forced = env.run(&["backup", copy.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", describe_output(&forced));

    // A folder gets a dated file inside it.
    let into_folder = env.run(&["backup", backups.to_str().unwrap()]);
    assert!(
        into_folder.status.success(),
        "{}",
        describe_output(&into_folder)
    );
    let dated = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("storyline-") && n.ends_with(".db"))
        .count();
    assert_eq!(dated, 1);

    let (status, _) = daemon.terminate();
    assert!(status.success());
    // And with the daemon stopped (no -wal file beside the database).
    let stopped = env.run(&["backup", env.path().join("after.db").to_str().unwrap()]);
    assert!(stopped.status.success(), "{}", describe_output(&stopped));
}

#[test]
fn backup_without_a_database_fails_and_writes_nothing() {
    let env = Env::new();
    let target = env.path().join("copy.db");
    let output = env.run(&["backup", target.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to back up"));
    assert!(!target.exists());
}

/// The daemon's first run creates the database and the key file; then it stops.
fn run_once(env: &Env) {
    let (status, _) = env.start_polling().terminate();
    assert!(status.success());
}

fn doctor_line<'a>(output: &'a str, topic: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(topic)))
        .unwrap_or_else(|| panic!("no {topic:?} line in:\n{output}"))
}

#[test]
fn doctor_passes_a_healthy_installation() {
    let env = Env::new();
    std::fs::create_dir(env.media_dir().join("quotes")).unwrap();
    std::fs::write(
        env.media_dir().join("quotes/a.jpg"),
        crate::support::media::jpeg(b"a"),
    )
    .unwrap();
    std::fs::write(
        env.media_dir().join("b.mp4"),
        crate::support::media::mp4(b"b"),
    )
    .unwrap();
    run_once(&env);
    let from = env.tg.calls().len();
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{}", describe_output(&output));
    env.tg.wait_for_method(from, "getMe", WAIT);
    assert!(doctor_line(&text, "config").starts_with("ok "), "{text}");
    assert!(doctor_line(&text, "database").starts_with("ok "), "{text}");
    assert!(
        doctor_line(&text, "database").contains("migrations current"),
        "{text}"
    );
    assert!(
        doctor_line(&text, "key file").contains("32 bytes, mode 0600"),
        "{text}"
    );
    assert!(
        doctor_line(&text, "media").contains("1 photo, 1 video (quotes 1, uncategorized 1)"),
        "{text}"
    );
    assert!(
        doctor_line(&text, "telegram").contains("@storyline_test_bot answers"),
        "{text}"
    );
    assert!(
        doctor_line(&text, "public_url").starts_with("note "),
        "{text}"
    );
    assert!(
        doctor_line(&text, "instagram").starts_with("note "),
        "{text}"
    );
    assert!(text.ends_with("All checks passed.\n"), "{text}");
    assert!(!text.contains("TEST-token-SECRET"), "{text}");
}

#[test]
fn doctor_and_scan_count_the_same_files_and_neither_follows_a_symlink_loop() {
    let env = Env::new();
    let media = env.media_dir();
    for (path, tag) in [
        ("quotes/a.jpg", "a"),
        ("quotes/2024/b.png", "b"),
        ("travel/c.mp4", "c"),
        ("top.webp", "top"),
    ] {
        std::fs::create_dir_all(media.join(path).parent().unwrap()).unwrap();
        std::fs::write(
            media.join(path),
            crate::support::media::file(path, tag.as_bytes()),
        )
        .unwrap();
    }
    std::fs::write(media.join("notes.txt"), b"not media").unwrap();
    std::fs::write(media.join("travel/broken.png"), b"hello").unwrap();
    // Loops: each leads back to a folder above it.
    std::os::unix::fs::symlink(".", media.join("quotes/again")).unwrap();
    std::os::unix::fs::symlink("../..", media.join("quotes/2024/up")).unwrap();

    let scan = env.run(&["scan"]);
    assert!(scan.status.success(), "{}", describe_output(&scan));
    let scanned = stdout(&scan);
    let new: usize = scanned
        .split(" new,")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {scanned}"));
    // "quotes: 2 items (+2)" → quotes 2
    let scan_categories: Vec<String> = scanned
        .lines()
        .filter_map(|line| {
            let (category, rest) = line.split_once(": ")?;
            let count = rest.strip_suffix(")")?.split(' ').next()?;
            rest.contains(" item")
                .then(|| format!("{category} {count}"))
        })
        .collect();

    let doctor = env.run(&["doctor"]);
    let text = stdout(&doctor);
    let line = doctor_line(&text, "media");
    assert!(line.starts_with("ok "), "{text}");
    assert!(
        line.ends_with(
            ": 3 photos, 1 video (quotes 2, travel 1, uncategorized 1); not posted: \
             1 file of a kind not supported, 1 broken file (storyline scan names them)"
        ),
        "{text}"
    );
    assert_eq!(new, 3 + 1, "{scanned}");
    assert_eq!(
        scan_categories.join(", "),
        "quotes 2, travel 1, uncategorized 1",
        "{scanned}"
    );
    assert!(
        scanned.contains("\n1 .txt file: not supported")
            && scanned.contains("\n1 broken .png file: travel/broken.png"),
        "{scanned}"
    );
}

#[test]
fn doctor_fails_on_a_wrong_token_and_a_missing_key_file() {
    let env = Env::new();
    run_once(&env);
    let added = env.run(&[
        "accounts",
        "add",
        "--name",
        "Main",
        "--instagram-id",
        "17841400000000001",
        "--username",
        "brand",
        "--token",
        "IGQ-sealed-token",
    ]);
    assert!(added.status.success(), "{}", describe_output(&added));
    let key_path = env.path().join("secret.key");

    // Another key of the right size and mode: the sealed token does not open.
    let good_key = std::fs::read(&key_path).unwrap();
    std::fs::write(&key_path, [7u8; 32]).unwrap();
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let key = doctor_line(&text, "key file");
    assert!(
        key.starts_with("FAIL") && key.contains("does not open 1 of 1"),
        "{text}"
    );
    std::fs::write(&key_path, good_key).unwrap();
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert!(
        doctor_line(&text, "key file").ends_with("opens the 1 sealed token"),
        "{text}"
    );

    std::fs::remove_file(&key_path).unwrap();
    let config = env
        .base_config()
        .replace("TEST-token-SECRET-value", "TEST-token-SECRET-wrong");
    env.write_config_raw(&config);
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let telegram = doctor_line(&text, "telegram");
    assert!(
        telegram.starts_with("FAIL") && telegram.contains("401") && telegram.contains("BotFather"),
        "{text}"
    );
    let key = doctor_line(&text, "key file");
    assert!(
        key.starts_with("FAIL") && key.contains("missing") && key.contains("backup"),
        "{text}"
    );
    assert!(doctor_line(&text, "database").starts_with("ok "), "{text}");
    assert!(text.ends_with("2 of 8 checks failed.\n"), "{text}");
    assert!(!text.contains("TEST-token-SECRET"), "{text}");
}

#[test]
fn doctor_reads_the_env_file_beside_the_config_and_reports_a_bad_config() {
    let env = Env::new();
    // No token in the TOML: the env file beside it has one, as under systemd.
    let config = env
        .base_config()
        .replace(&format!("bot_token = \"{TOKEN}\""), "");
    assert!(!config.contains(TOKEN));
    env.write_config_raw(&config);
    std::fs::write(
        env.path().join("env"),
        format!("# secrets\nSTORYLINE_TELEGRAM_BOT_TOKEN=\"{TOKEN}\"\n"),
    )
    .unwrap();
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        doctor_line(&text, "config").contains("secrets also read from"),
        "{text}"
    );
    assert!(doctor_line(&text, "telegram").starts_with("ok "), "{text}");
    // A fresh installation: nothing created yet is a note, not a failure.
    assert!(
        doctor_line(&text, "database").starts_with("note "),
        "{text}"
    );
    assert!(
        doctor_line(&text, "key file").starts_with("note "),
        "{text}"
    );

    // Without a token `run` would exit 2 at once: the doctor fails.
    std::fs::remove_file(env.path().join("env")).unwrap();
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let telegram = doctor_line(&text, "telegram");
    assert!(
        telegram.starts_with("FAIL") && telegram.contains("no bot token"),
        "{text}"
    );
    assert!(text.ends_with("1 of 8 checks failed.\n"), "{text}");

    env.write_config_raw("[defaults]\nposts_per_day = 0\n");
    let output = env.run(&["doctor"]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        describe_output(&output)
    );
    let line = doctor_line(&text, "config");
    assert!(
        line.starts_with("FAIL") && text.contains("defaults.posts_per_day"),
        "{text}"
    );
}

/// Reads datagrams from the notify socket until `want` arrives; panics after `timeout`.
fn wait_for_notification(
    socket: &UnixDatagram,
    want: &str,
    timeout: Duration,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {want:?} within {timeout:?}; got {seen:?}"
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).trim_end().to_string();
            seen.push(message.clone());
            if message.lines().any(|l| l == want) {
                return;
            }
        }
    }
}

#[test]
fn run_tells_systemd_ready_pings_the_watchdog_and_says_stopping() {
    let env = Env::new();
    let socket_path = env.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let log = std::fs::File::create(env.log_path()).unwrap();
    let child = env
        .command(&["run"])
        .env("NOTIFY_SOCKET", &socket_path)
        // One second: the core loop must ping at least every half second.
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let daemon = Daemon::new(child);
    let mut seen = Vec::new();
    wait_for_notification(&socket, "READY=1", WAIT, &mut seen);
    let ready_at = Instant::now();
    for _ in 0..3 {
        wait_for_notification(&socket, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
    }
    // Three pings in well under the three seconds a once-a-minute loop would need.
    assert!(ready_at.elapsed() < Duration::from_secs(3), "{seen:?}");
    assert_eq!(
        seen.first().map(String::as_str),
        Some("READY=1"),
        "{seen:?}"
    );
    let (status, _) = daemon.terminate();
    assert!(status.success());
    wait_for_notification(&socket, "STOPPING=1", WAIT, &mut seen);
}

/// The Debian package installs storyline.toml with its paths moved to
/// /var/lib/storyline; everything else must stay the documented example.
/// `UPDATE_EXPECT=1 cargo test --test it packaged_config` rewrites it.
#[test]
fn packaged_config_is_the_example_with_state_paths() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/storyline.toml")).unwrap();
    let mut expected = String::from(
        "# /etc/storyline/storyline.toml, as installed by the storyline Debian package.\n\
         # Put secrets in /etc/storyline/env (mode 0600), which the service reads too:\n\
         #   STORYLINE_TELEGRAM_BOT_TOKEN=123456:ABC...\n\
         # State (database, key file, media) lives in /var/lib/storyline.\n\
         # Generated from the repository's storyline.toml; edit that one.\n\
         #\n",
    );
    let mut replaced = 0;
    for line in example.lines() {
        let moved = match line {
            "database = \"storyline.db\"" => "database = \"/var/lib/storyline/storyline.db\"",
            "key_file = \"secret.key\"" => "key_file = \"/var/lib/storyline/secret.key\"",
            "dir = \"media\"" => "dir = \"/var/lib/storyline/media\"",
            other => other,
        };
        replaced += usize::from(moved != line);
        expected.push_str(moved);
        expected.push('\n');
    }
    assert_eq!(
        replaced, 3,
        "storyline.toml no longer has the three default paths"
    );
    let packaged_path = format!("{root}/debian/storyline.toml");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&packaged_path, &expected).unwrap();
    }
    let packaged = std::fs::read_to_string(&packaged_path).unwrap_or_default();
    assert!(
        packaged == expected,
        "debian/storyline.toml is out of date; run: \
         UPDATE_EXPECT=1 cargo test --test it packaged_config"
    );
    let output = std::process::Command::new(crate::support::bin())
        .args(["--config", &packaged_path, "check"])
        .env_remove("STORYLINE_TELEGRAM_BOT_TOKEN")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(stdout(&output).contains("/var/lib/storyline/storyline.db"));
}
