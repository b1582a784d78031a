//! Telegram misbehaving and the process dying: 429s, outages, garbage, dropped
//! connections, kill -9 and SIGTERM.

use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::support::{wait_until, Env, Fault, ADMIN, CHAT};

#[test]
fn a_429_on_getupdates_is_honoured() {
    let env = Env::new();
    env.tg
        .fail_next("getUpdates", 1, Fault::too_many_requests(3));
    let _daemon = env.start();
    let (first, _) = env.tg.wait_for_method(0, "getUpdates", WAIT);
    let (_, second) = env.tg.wait_for_method(first + 1, "getUpdates", WAIT);
    let gap = second.at - env.tg.calls()[first].at;
    assert!(
        gap >= Duration::from_millis(2900),
        "retried after {gap:?}, not after retry_after=3"
    );
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Status"));
}

#[test]
fn a_429_on_a_reply_is_waited_out_and_the_reply_delivered_once() {
    let env = Env::new();
    let _daemon = env.start_polling();
    // The daily "running dry" notice (no media here) goes first; the 429 is for the reply.
    wait_until("the start-up notice", WAIT, || {
        env.tg.messages(CHAT).into_iter().find(is_notice)
    });
    env.tg
        .fail_next("sendMessage", 1, Fault::too_many_requests(2));
    let start = Instant::now();
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(status.text.contains("Status"));
    let sends: Vec<_> = env
        .tg
        .calls_of("sendMessage")
        .into_iter()
        .filter(|c| {
            c.params["text"]
                .as_str()
                .is_some_and(|t| t.contains("Status"))
        })
        .collect();
    assert_eq!(sends.len(), 2, "one refused, one delivered");
    assert!(sends[1].at - sends[0].at >= Duration::from_millis(1900));
    assert_eq!(
        env.tg
            .messages(CHAT)
            .iter()
            .filter(|m| !is_notice(m))
            .count(),
        1
    );
}

#[test]
fn garbage_drops_and_slow_answers_do_not_stop_the_bot() {
    let env = Env::new();
    env.tg.fail_next("getUpdates", 2, Fault::Garbage);
    env.tg.fail_next("getUpdates", 1, Fault::Drop);
    env.tg.fail_next("sendMessage", 1, Fault::Drop);
    env.tg.fail_next("sendMessage", 1, Fault::Garbage);
    env.tg
        .fail_next("sendMessage", 1, Fault::Slow(Duration::from_secs(2)));
    let mut daemon = env.start();
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(status.text.contains("Status"));
    assert!(daemon.is_running());
    assert_token_not_logged(&env);
}

/// Two minutes of daemon time in two real seconds: the daemon runs on the test clock
/// (`STORYLINE_TEST_CLOCK`) 60 times faster, and its back-off waits are daemon time
/// (src/clock.rs), so it lives through the same two minutes of retries as in the wild.
const OUTAGE_SPEED: u32 = 60;

#[test]
fn two_minutes_of_server_errors_then_recovery() {
    let env = Env::new();
    let outage = Duration::from_secs(120);
    let started = chrono::Utc::now();
    let outage_ends = Instant::now() + outage / OUTAGE_SPEED;
    env.tg.fail_until(
        "*",
        outage_ends,
        Fault::status(500, "Internal Server Error"),
    );
    let clock = format!(
        "{},{},{OUTAGE_SPEED}",
        started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        started.timestamp_millis()
    );
    let mut daemon = env.start_with_env(&[("STORYLINE_TEST_CLOCK", clock.as_str())]);
    env.tg.wait_for_method(0, "getMe", WAIT);
    env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    wait_until("the outage to end", outage / OUTAGE_SPEED + WAIT, || {
        (Instant::now() >= outage_ends).then_some(())
    });
    assert!(daemon.is_running(), "the daemon died during the outage");
    let failed = env.tg.calls().len();
    // The /status answer, found by what it says: a slot of the chat may come due
    // in the test's two daemon minutes (its clock starts at the real time of day)
    // and say "📭 Nothing to post" first.
    let reply = wait_until(
        "the /status reply after the outage",
        Duration::from_secs(60),
        || {
            env.tg
                .messages(CHAT)
                .into_iter()
                .find(|m| !is_notice(m) && !m.text.starts_with("📭"))
        },
    );
    assert!(reply.text.contains("Status"), "{}", reply.text);
    let log = env.log();
    let down = log.matches("Telegram unreachable").count();
    let up = log.matches("Telegram reachable again").count();
    assert_eq!((down, up), (1, 1), "one line per state change:\n{log}");
    let retries = env.tg.calls_of("getMe").len() + env.tg.calls_of("getUpdates").len();
    assert!(
        retries < 60,
        "{retries} polls in two minutes is hammering, not backing off"
    );
    // A back-off that did not double would be 120 tries of 1 s; doubling up to the
    // 30 s cap gives 1+2+4+8+16+30+30+30 ≥ 120 s in at most a dozen, half of it
    // jitter, and never fewer than five.
    assert!(
        failed >= 5,
        "{failed} calls in two minutes: the outage was not lived through"
    );
    assert_token_not_logged(&env);
}

#[test]
fn kill_9_between_updates_loses_and_repeats_nothing() {
    let env = Env::new();
    let mut daemon = env.start_polling();
    for round in 0..4 {
        let reply = say(&env, CHAT, ADMIN, "/dryrun");
        assert!(
            reply.text.contains("Dry run is"),
            "round {round}: {}",
            reply.text
        );
        // "Between updates": the reply is delivered and its outbox row gone; a
        // kill inside that window may repeat one reply (the kill test below).
        wait_for_empty_outbox(&env);
        daemon.kill9();
        daemon = env.start_polling();
    }
    let status = say(&env, CHAT, ADMIN, "/status");
    assert!(
        status.text.contains("Dry run"),
        "four toggles from ON end ON: {}",
        status.text
    );
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(1));
    assert_eq!(history_count(&env, CHAT), 5);
    let interactions: i64 = env
        .db()
        .query_row(
            "SELECT count(DISTINCT update_id) FROM interactions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(interactions, 5);
    let replies: Vec<_> = env
        .tg
        .messages(CHAT)
        .into_iter()
        .filter(|m| !is_notice(m))
        .collect();
    assert_eq!(replies.len(), 5, "{replies:?}");
}

#[test]
fn kill_9_at_any_moment_keeps_each_update_exactly_once() {
    let env = Env::new();
    // 24 commands at once are more than [limits] lets a chat send.
    env.write_config(crate::helpers::FAST_COMMANDS);
    let toggles = 24;
    for _ in 0..toggles {
        env.tg.push_message(CHAT, ADMIN, "ada", "/dryrun");
    }
    let rounds = 12;
    for round in 0..rounds {
        let daemon = env.start();
        // The moment of the kill, spread from start-up to mid-batch; not synchronisation.
        std::thread::sleep(Duration::from_millis(10 + round * 45));
        daemon.kill9();
    }
    // A last run drains what is left; its /status reply comes after every earlier
    // reply, since the outbox delivers in order.
    let _daemon = env.start_polling();
    env.tg.push_message(CHAT, ADMIN, "ada", "/status");
    // Up to 25 replies to one chat go at Telegram's one a second (bursts of 5).
    wait_until("the /status reply", Duration::from_secs(40), || {
        env.tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains("Status"))
    });
    wait_until("every update confirmed", WAIT, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
    let handled = handled_commands(&env, "dryrun");
    assert_eq!(handled, toggles, "each /dryrun handled exactly once");
    // An even number of toggles from ON ends ON, with one settings version each.
    assert_eq!(chat_column(&env, CHAT, "dry_run_mode"), Some(1));
    assert_eq!(history_count(&env, CHAT), toggles + 1);
    assert!(
        !env.log().contains("failed, nothing of it was kept"),
        "{}",
        env.log()
    );
    // Every reply is delivered; a kill between Telegram's answer and the outbox
    // delete may repeat one reply per kill, never more.
    let replies = messages_containing(&env, CHAT, "Dry run is");
    assert!(
        replies >= toggles && replies <= toggles + rounds as i64,
        "{replies} replies for {toggles} toggles in {rounds} kills"
    );
}

#[test]
fn sigterm_and_sigint_stop_within_five_seconds() {
    for signal in ["TERM", "INT"] {
        let env = Env::new();
        let daemon = env.start_polling();
        say(&env, CHAT, ADMIN, "/status");
        let started = Instant::now();
        daemon.signal(signal);
        let mut daemon = daemon;
        let status = daemon
            .wait_timeout(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("SIG{signal} did not stop it in 5 s"));
        assert!(status.success(), "SIG{signal}: {status}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(env.log().contains("stopped"));
    }
}

#[test]
fn the_token_never_reaches_the_log_when_telegram_is_unreachable() {
    let env = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let config = env
        .base_config()
        .replace(&env.tg.url(), &format!("http://127.0.0.1:{port}"));
    env.write_config_raw(&config);
    let daemon = env.start();
    wait_until("the outage to be logged", WAIT, || {
        env.log().contains("Telegram unreachable").then_some(())
    });
    daemon.terminate();
    assert_token_not_logged(&env);
}
