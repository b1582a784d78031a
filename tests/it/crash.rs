//! kill -9 at random moments while the real daemon lives through hundreds of slots on
//! the test clock (`STORYLINE_TEST_CLOCK`: one virtual day per real minute), in manual
//! mode (stories to twelve chats, people pressing buttons) and in auto mode (publishing
//! through the fake Graph API). After the kills, one last daemon catches up and the
//! database and the fakes are checked against the promise: nothing confirmed is lost
//! or done twice.
//!
//! What the words mean here:
//! - The *period* is every slot with a time up to the virtual moment the kills stopped
//!   (`cutoff`).
//! - A slot is *lost* when the plan lacks it (a time the schedule gives for a planned
//!   window without exactly one queue row), or when, once the last daemon had time to
//!   catch up, a slot of the period is not in a terminal state. Terminal: *sent* (its
//!   story delivered to its chat, the message recorded), *decided* by a press, *missed*
//!   (the daemon was down past the slot's 15 minutes, counted in a ⏰ notice to its
//!   chat), *published* (auto: one publish, recorded with Instagram's media id and
//!   reported), or *asked* (auto: the outcome of media_publish is unknown because a
//!   kill came after the call and before its recording; the chat is asked).
//! - A *repeat* is a Telegram call delivered twice (a story, a report, a question, a
//!   notice). The outbox delivers one call at a time and deletes it in the transaction
//!   that records its result, so a kill can repeat at most the one call in flight:
//!   repeats ≤ kills. Instagram is never asked twice: at most one media_publish per
//!   story, ever, whatever the kills.
//!
//! The kill moments come from a seeded RNG; the seed is printed, and
//! STORYLINE_CRASH_SEED=<seed> replays the same moments (the machine's timing still varies).
//!
//! Why the numbers hold, in about 30 real seconds a test (4 chats for 75 s before):
//! - *Slots*: 12 chats × 50 stories a day on a 1440x clock come due at 10 a real
//!   second. The kills go on until `SLOTS` (250, what the 75 s run used to give) are
//!   due, about 25 s, so a slow start on a loaded machine (the first window is planned
//!   late, and slots before it are not in the plan) makes the run longer, not the
//!   period smaller. Only if `MAX_RUN` passes first does the count fall short, and
//!   then `MIN_SLOTS` (200) decides, as before.
//! - *Missed slots*: the clock stays at 1440x, so a slot waits 0.6 real seconds before
//!   it is missed; more chats, not a faster clock, bring the slots sooner, and a
//!   daemon that restarts within that time still sends what came due while it was down.
//! - *Kills*: as before, one after 0.02–3 s up, one in four left down 0.7–2.5 s (17–60
//!   virtual minutes, so slots are missed): a kill every 1.8 s or so, about 14 a run.
//! - *Kills that cut a call off*: the fakes answer stories, reports and media_publish
//!   after `SLOW_ANSWER`; the outbox and the publisher work one call at a time, and 10
//!   slots a second keep them busy with those calls, so most kills land in one (a
//!   repeated story per kill in manual mode). The slowness ends with the kills (the
//!   queues they leave behind drain at full speed), since no kill can land after that.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::Connection;
use serde_json::Value;

use crate::helpers::*;
use crate::support::{
    describe_output, wait_until, Call, Daemon, Env, FakeInstagram, Fault, IgFault, ADMIN, CHAT,
};

/// One virtual day per real minute: a slot every 29 virtual minutes per chat is one
/// every 1.2 real seconds, and the 15 "missed" minutes are 0.6 real seconds.
const SPEED: f64 = 1440.0;
/// Twelve chats: with 50 stories a day each, 10 slots come due a real second.
const CHATS: [i64; 12] = [
    CHAT, -100_201, -100_202, -100_203, -100_204, -100_205, -100_206, -100_207, -100_208, -100_209,
    -100_210, -100_211,
];
const POSTS_PER_DAY: u32 = 50;
/// Enough distinct images for every chat's slots of the run (a story waiting for a
/// decision keeps its item, and each chat has its own locks): up to MAX_RUN, 50 a chat.
const FILES: usize = 300;
/// The kills go on until this many slots are due (about 25 s) ...
const SLOTS: usize = 250;
/// ... or until this much real time has passed.
const MAX_RUN: Duration = Duration::from_secs(60);
const MIN_SLOTS: usize = 200;
/// How long the fakes take to answer the calls whose answer a kill may cut off.
const SLOW_ANSWER: Duration = Duration::from_millis(100);
/// How long the last daemon gets to catch up after the kills.
const CATCH_UP: Duration = Duration::from_secs(60);

// ---- the virtual clock, the RNG and the set-up ------------------------------------------

/// The daemon's test clock: virtual time starts at the real start and runs SPEED times
/// faster, the same for every daemon started with `env_value`.
struct TestClock {
    real_start: DateTime<Utc>,
}

impl TestClock {
    fn start() -> TestClock {
        let now = Utc::now().timestamp_millis();
        TestClock {
            real_start: DateTime::from_timestamp_millis(now).unwrap(),
        }
    }

    fn env_value(&self) -> String {
        format!(
            "{},{},{SPEED}",
            self.real_start.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.real_start.timestamp_millis()
        )
    }

    fn now(&self) -> DateTime<Utc> {
        let elapsed = (Utc::now() - self.real_start).num_milliseconds() as f64 * SPEED;
        self.real_start + chrono::Duration::milliseconds(elapsed as i64)
    }
}

/// xorshift64: small, seeded, good enough for kill moments.
struct Rng(u64);

impl Rng {
    fn from_env_or_time(test: &str) -> Rng {
        let seed = std::env::var("STORYLINE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            .max(1);
        println!("{test}: seed {seed} (STORYLINE_CRASH_SEED={seed} replays the kill moments)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A small 9:16 JPEG that shows `index` as black and white blocks, so every file has
/// its own content even after JPEG's rounding.
fn jpeg(index: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(36, 64, |x, y| {
        let bit = (y / 8) * 4 + x / 9;
        let on = (index >> bit) & 1 == 1;
        let v = if on { 255 } else { 0 };
        image::Rgb([v, v, 255 - v])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

/// An Env serving CHATS, 50 stories a day all day long in UTC, with FILES images in
/// four categories; `extra` is more config (sections not in the base).
fn crash_env(extra: &str, defaults: &str) -> Env {
    let env = Env::new();
    let chats: Vec<String> = CHATS.iter().map(i64::to_string).collect();
    let config = env.base_config().replace(
        &format!("allowed_chat_ids = [{CHAT}]"),
        &format!("allowed_chat_ids = [{}]", chats.join(", ")),
    );
    env.write_config_raw(&format!(
        "{config}\n{extra}\n[defaults]\nposts_per_day = {POSTS_PER_DAY}\n\
         posting_hours_start = 0\nposting_hours_end = 0\ntimezone = \"UTC\"\n{defaults}\n"
    ));
    for index in 0..FILES {
        let category = ["quotes", "products", "team", "places"][index % 4];
        let path = env
            .media_dir()
            .join(category)
            .join(format!("s{index:03}.jpg"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, jpeg(index)).unwrap();
    }
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let items: i64 = env
        .db()
        .query_row(
            "SELECT count(DISTINCT sha256) FROM media_items WHERE is_active = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(items, FILES as i64, "every test image has its own content");
    env
}

/// Slots due by the virtual now: the period so far.
fn slots_due(env: &Env, clock: &TestClock) -> usize {
    let due = count(
        &env.db(),
        "SELECT count(*) FROM posting_queue WHERE scheduled_for <= ?1",
        [timestamp(clock.now())],
    );
    usize::try_from(due).unwrap()
}

/// Starts the daemon on the test clock, then kills it with SIGKILL at random moments
/// until SLOTS are due (or MAX_RUN is over), sometimes leaving it down long enough for
/// slots to be missed. `act` plays the users between kills. Returns the daemon still
/// running (just started) and the kills.
fn kill_at_random_moments(
    env: &Env,
    clock: &TestClock,
    rng: &mut Rng,
    mut act: impl FnMut(&mut Rng),
) -> (Daemon, u32) {
    let value = clock.env_value();
    let vars = [("STORYLINE_TEST_CLOCK", value.as_str())];
    let deadline = Instant::now() + MAX_RUN;
    let mut kills = 0;
    let mut daemon = env.start_with_env(&vars);
    // The sleeps below pick moments and pace the simulated users; nothing waits on
    // them for a result.
    let act_until = |until: Instant, rng: &mut Rng, act: &mut dyn FnMut(&mut Rng)| {
        while Instant::now() < until {
            act(rng);
            let left = until.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    };
    while slots_due(env, clock) < SLOTS && Instant::now() < deadline {
        // One kill in five falls in start-up (migrations, the first scan, the plan).
        let up = if rng.below(5) == 0 {
            rng.between(20, 300)
        } else {
            rng.between(300, 3000)
        };
        act_until(Instant::now() + Duration::from_millis(up), rng, &mut act);
        daemon.kill9();
        kills += 1;
        // One in four stays down 0.7–2.5 s: 17–60 virtual minutes, so slots are missed.
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_millis(rng.between(700, 2500)));
        }
        daemon = env.start_with_env(&vars);
    }
    (daemon, kills)
}

/// Waits until `unfinished` says nothing is left; panics with its last answer.
fn catch_up(env: &Env, unfinished: impl Fn(&Connection) -> Option<String>) {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let left = unfinished(&env.db());
        let Some(left) = left else { return };
        if Instant::now() >= deadline {
            panic!("after {CATCH_UP:?} the last daemon has still not caught up: {left}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(db: &Connection, sql: &str, params: impl rusqlite::Params) -> i64 {
    db.query_row(sql, params, |r| r.get(0)).unwrap()
}

// ---- checks shared by both tests ----------------------------------------------------------

/// `PRAGMA integrity_check` says ok.
fn assert_integrity(env: &Env) {
    let result: String = env
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
}

/// Every planned window holds exactly the slots the schedule gives for it after the
/// moment it was planned: no slot vanished, none was planned twice.
fn assert_plan_intact(db: &Connection) -> usize {
    let windows: Vec<(i64, String, String)> = {
        let mut stmt = db
            .prepare("SELECT chat_id, window_date, planned_at FROM planned_windows ORDER BY 1, 2")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    for (chat, date, planned_at) in &windows {
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        let window = storyline::domain::schedule::window_for(day, storyline::zone::Tz::UTC, 0, 0);
        let planned_at = DateTime::parse_from_rfc3339(planned_at)
            .unwrap()
            .with_timezone(&Utc);
        let expected: Vec<String> = storyline::domain::schedule::slots(
            &window,
            POSTS_PER_DAY,
            storyline::bot::posting::seed_for(*chat, date),
        )
        .into_iter()
        .filter(|t| *t > planned_at)
        .map(timestamp)
        .collect();
        let mut stmt = db
            .prepare(
                "SELECT scheduled_for FROM posting_queue WHERE chat_id = ?1 AND window_date = ?2
                 ORDER BY scheduled_for",
            )
            .unwrap();
        let actual: Vec<String> = stmt
            .query_map(rusqlite::params![chat, date], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(actual, expected, "chat {chat}, window {date}");
    }
    windows.len()
}

/// A slot of the period, as the database ends up.
#[derive(Debug)]
struct Slot {
    id: i64,
    chat: i64,
    at: String,
    status: String,
    message_id: Option<i64>,
    file: Option<String>,
    job: Option<(String, Option<String>)>,
}

fn period_slots(db: &Connection, cutoff: &str) -> Vec<Slot> {
    let mut stmt = db
        .prepare(
            "SELECT q.id, q.chat_id, q.scheduled_for, q.status, q.telegram_message_id, m.path,
                    j.state, j.media_id
             FROM posting_queue q
             LEFT JOIN media_items m ON m.id = q.media_item_id
             LEFT JOIN publish_jobs j ON j.queue_id = q.id
             WHERE q.scheduled_for <= ?1 ORDER BY q.scheduled_for, q.id",
        )
        .unwrap();
    stmt.query_map([cutoff], |r| {
        let state: Option<String> = r.get(6)?;
        Ok(Slot {
            id: r.get(0)?,
            chat: r.get(1)?,
            at: r.get(2)?,
            status: r.get(3)?,
            message_id: r.get(4)?,
            file: r
                .get::<_, Option<String>>(5)?
                .map(|p| p.rsplit('/').next().unwrap_or_default().to_string()),
            job: state.map(|s| (s, r.get(7).ok().flatten())),
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The chat a Bot API call went to (form fields are strings, JSON keeps numbers).
fn chat_of(call: &Call) -> Option<i64> {
    match &call.params["chat_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The queue id in the story buttons of a call's keyboard (`1:st:<action>:<id>`).
fn queue_id_in_keyboard(call: &Call) -> Option<i64> {
    let markup = match &call.params["reply_markup"] {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    let rest = &markup[markup.find("1:st:")? + 5..];
    let id: String = rest
        .split_once(':')?
        .1
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    id.parse().ok()
}

/// The text or caption of a call.
fn text_of(call: &Call) -> String {
    call.params["caption"]
        .as_str()
        .or_else(|| call.params["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Calls of `method` that Telegram took (answered 200): what users saw.
fn delivered(env: &Env, method: &str) -> Vec<Call> {
    env.tg
        .calls_of(method)
        .into_iter()
        .filter(|c| c.status == Some(200))
        .collect()
}

/// The ⏰ notices of each chat: (missed slots they count, notices repeated). A notice
/// names the next slot, so two notices of different downtimes never read the same.
fn missed_notices(env: &Env) -> (HashMap<i64, i64>, usize) {
    let mut counted = HashMap::new();
    let mut repeats = 0;
    for chat in CHATS {
        let texts: Vec<String> = delivered(env, "sendMessage")
            .iter()
            .filter(|c| chat_of(c) == Some(chat))
            .map(text_of)
            .filter(|t| t.starts_with('⏰'))
            .collect();
        let distinct: HashSet<&String> = texts.iter().collect();
        repeats += texts.len() - distinct.len();
        let missed: i64 = distinct
            .iter()
            .map(|t| {
                t.trim_start_matches("⏰ ")
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or_else(|| panic!("a missed notice without a count: {t}"))
            })
            .sum();
        counted.insert(chat, missed);
    }
    (counted, repeats)
}

/// Missed slots are all told: each chat's notices count exactly its missed slots.
fn assert_missed_all_told(env: &Env, db: &Connection) -> usize {
    let (told, repeats) = missed_notices(env);
    for chat in CHATS {
        let missed = count(
            db,
            "SELECT count(*) FROM posting_queue WHERE chat_id = ?1 AND status = 'missed'",
            [chat],
        );
        assert_eq!(
            told[&chat], missed,
            "chat {chat}: the ⏰ notices count {} missed slots, the queue has {missed}",
            told[&chat]
        );
    }
    repeats
}

fn assert_log_is_clean(env: &Env) {
    let log = env.log();
    assert!(
        log.contains("TEST CLOCK: STORYLINE_TEST_CLOCK is set"),
        "the test clock must announce itself"
    );
    for bad in [
        "panicked",
        "nothing of it was kept",
        "could not commit update",
    ] {
        assert!(!log.contains(bad), "the log says {bad:?}");
    }
    assert_token_not_logged(env);
}

// ---- manual mode -------------------------------------------------------------------------

/// A press a simulated user made on a story.
struct Press {
    update_id: i64,
    queue_id: i64,
    status: &'static str,
}

/// Users press Posted or Skip on about half of the stories, a moment after they arrive.
#[derive(Default)]
struct Users {
    seen: HashSet<(i64, i64)>,
    considered: HashSet<(i64, i64)>,
    presses: Vec<Press>,
}

impl Users {
    fn act(&mut self, env: &Env, rng: &mut Rng) {
        for chat in CHATS {
            for message in env.tg.messages(chat) {
                let key = (chat, message.message_id);
                if message.kind != "photo" || self.considered.contains(&key) {
                    continue;
                }
                // A story is pressed on the round after it was first seen.
                if self.seen.insert(key) {
                    continue;
                }
                self.considered.insert(key);
                let Some((_, data)) = buttons(&message)
                    .into_iter()
                    .find(|(text, _)| text.starts_with("✅ Posted"))
                else {
                    continue;
                };
                if rng.below(2) == 0 {
                    continue;
                }
                let queue_id: i64 = data.rsplit(':').next().unwrap().parse().unwrap();
                let (data, status) = if rng.below(2) == 0 {
                    (data, "posted")
                } else {
                    (data.replace(":p:", ":s:"), "skipped")
                };
                let update_id = env
                    .tg
                    .push_callback(chat, ADMIN, "ada", message.message_id, &data);
                self.presses.push(Press {
                    update_id,
                    queue_id,
                    status,
                });
            }
        }
    }
}

#[test]
fn kill_9_across_two_hundred_manual_slots_loses_and_doubles_nothing() {
    let started = Instant::now();
    let mut rng = Rng::from_env_or_time("manual");
    let env = crash_env("", "dry_run_mode = true");
    // A slow answer to every story widens the window between Telegram taking a call
    // and the outbox recording it, so some kills land in it and repeat a story.
    env.tg.fail_until(
        "sendPhoto",
        Instant::now() + MAX_RUN,
        Fault::Slow(SLOW_ANSWER),
    );
    let clock = TestClock::start();
    let mut users = Users::default();
    let (daemon, kills) =
        kill_at_random_moments(&env, &clock, &mut rng, |rng| users.act(&env, rng));
    // The slowness served the kills; the last daemon catches up at speed.
    env.tg.clear_faults();
    let cutoff = timestamp(clock.now());

    catch_up(&env, |db| {
        let open = count(
            db,
            "SELECT count(*) FROM posting_queue WHERE scheduled_for <= ?1
             AND status IN ('pending', 'sending')",
            [&cutoff],
        );
        let outbox = count(db, "SELECT count(*) FROM outbox", []);
        let updates = env.tg.pending_updates();
        (open + outbox > 0 || updates > 0).then(|| {
            format!("{open} slot(s) pending or sending, {outbox} call(s) in the outbox, {updates} update(s) unconfirmed")
        })
    });
    let (status, _) = daemon.terminate();
    assert!(status.success(), "{status}");
    assert_integrity(&env);
    let db = env.db();
    let windows = assert_plan_intact(&db);
    let slots = period_slots(&db, &cutoff);
    assert!(
        slots.len() >= MIN_SLOTS,
        "only {} slots up to {cutoff}",
        slots.len()
    );

    // Each story's deliveries, by the queue id in its buttons.
    let mut deliveries: HashMap<i64, usize> = HashMap::new();
    for call in delivered(&env, "sendPhoto") {
        let id = queue_id_in_keyboard(&call).expect("a story carries its queue id");
        *deliveries.entry(id).or_default() += 1;
    }
    // Each press was handled once; a refusal (an alert: the story had been sent again
    // after a kill, or was decided) changed nothing.
    let mut decided_by_press: HashMap<i64, &'static str> = HashMap::new();
    let mut refused = 0;
    for press in &users.presses {
        let answer = env.tg.wait_for_callback_answer(press.update_id, WAIT);
        let handled = count(
            &db,
            "SELECT count(*) FROM interactions WHERE update_id = ?1",
            [press.update_id],
        );
        assert_eq!(handled, 1, "press {} handled once", press.update_id);
        if is_alert(&answer) {
            refused += 1;
        } else {
            assert!(
                decided_by_press
                    .insert(press.queue_id, press.status)
                    .is_none(),
                "two presses decided story {}",
                press.queue_id
            );
        }
    }
    let history: HashMap<i64, (String, i64)> = {
        let mut stmt = db
            .prepare(
                "SELECT queue_id, min(outcome), count(*) FROM posting_history GROUP BY queue_id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        history.len(),
        decided_by_press.len(),
        "a decision for every accepted press and no other"
    );

    let mut lost = Vec::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for slot in &slots {
        *states.entry(slot.status.clone()).or_default() += 1;
        let sent = deliveries.get(&slot.id).copied().unwrap_or(0);
        let shown = slot
            .message_id
            .and_then(|id| env.tg.message(slot.chat, id))
            .filter(|m| m.kind == "photo");
        let problem = match slot.status.as_str() {
            "missed" if sent == 0 => None,
            "missed" => Some(format!("missed, yet its story was sent {sent} time(s)")),
            "sent" | "posted" | "skipped" if sent == 0 => Some("no story delivered".into()),
            "sent" | "posted" | "skipped" if shown.is_none() => {
                Some("its recorded message is not a story in the chat".into())
            }
            "sent" if decided_by_press.contains_key(&slot.id) => {
                Some("an accepted press was not recorded".into())
            }
            "sent" => None,
            decided @ ("posted" | "skipped") => {
                match (decided_by_press.get(&slot.id), history.get(&slot.id)) {
                    (Some(pressed), Some((outcome, 1)))
                        if pressed == &decided && outcome == decided =>
                    {
                        None
                    }
                    other => Some(format!("{decided}, but press and history say {other:?}")),
                }
            }
            other => Some(format!("ended {other}")),
        };
        if let Some(problem) = problem {
            lost.push(format!(
                "slot {} of chat {} at {}: {problem}",
                slot.id, slot.chat, slot.at
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} slots lost:\n{}",
        lost.len(),
        slots.len(),
        lost.join("\n")
    );
    let notice_repeats = assert_missed_all_told(&env, &db);
    let story_repeats: usize = deliveries.values().map(|n| n - 1).sum();
    let repeats = story_repeats + notice_repeats;
    println!(
        "manual: {} slots up to {cutoff} in {windows} planned windows {states:?}; {kills} kills; \
         {repeats} repeated deliveries ({story_repeats} stories, {notice_repeats} notices; \
         bound: one per kill); {} presses, {refused} refused as stale; {:?}",
        slots.len(),
        users.presses.len(),
        started.elapsed()
    );
    assert!(
        repeats <= kills as usize,
        "{repeats} repeated deliveries in {kills} kills"
    );
    assert_log_is_clean(&env);
}

// ---- auto mode ---------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ig_user(chat_index: usize) -> String {
    format!("1784140000000010{chat_index}")
}

/// The media item id in a signed media URL (`…/media/<id>?exp=…`).
fn item_in_url(url: &str) -> i64 {
    let path = url.split('?').next().unwrap_or_default();
    path.rsplit('/').next().unwrap().parse().unwrap()
}

#[test]
fn kill_9_across_two_hundred_auto_slots_never_publishes_twice() {
    let started = Instant::now();
    let mut rng = Rng::from_env_or_time("auto");
    let ig = FakeInstagram::start();
    ig.set_quota(0, 1_000_000);
    let port = free_port();
    let env = crash_env(
        &format!(
            "[instagram]\napi_url = \"{url}\"\ngraph_url = \"{url}\"\n",
            url = ig.url()
        ),
        "enable_instagram_api = true\ndry_run_mode = false",
    );
    let config = fs::read_to_string(env.config_path()).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\""),
    );
    env.write_config_raw(&config);
    // One account per chat, so a story is identified on Instagram by account and file.
    let out = env.run(&["queue"]); // creates the chats' rows
    assert!(out.status.success(), "{}", describe_output(&out));
    let mut chat_of_account: HashMap<String, i64> = HashMap::new();
    for (index, chat) in CHATS.iter().enumerate() {
        let token = format!("IGAA-crash-{index}-SECRET");
        let user = ig_user(index);
        ig.set_token(&token, &user, &format!("brand{index}"));
        let name = format!("Brand {index}");
        let username = format!("brand{index}");
        let out = env.run(&[
            "accounts",
            "add",
            "--name",
            &name,
            "--instagram-id",
            &user,
            "--username",
            &username,
            "--token",
            &token,
        ]);
        assert!(out.status.success(), "{}", describe_output(&out));
        env.db()
            .execute(
                "UPDATE chats SET posting_mode = 'auto', active_account_id =
                   (SELECT id FROM instagram_accounts WHERE instagram_user_id = ?2)
                 WHERE chat_id = ?1",
                rusqlite::params![chat, user],
            )
            .unwrap();
        chat_of_account.insert(user, *chat);
    }

    // Slow answers to media_publish and to the reports widen the windows where a kill
    // makes an outcome unknown or repeats a report.
    ig.fail_next("/media_publish", 400, IgFault::Slow(SLOW_ANSWER));
    env.tg.fail_until(
        "sendPhoto",
        Instant::now() + MAX_RUN,
        Fault::Slow(SLOW_ANSWER),
    );
    let clock = TestClock::start();
    let (daemon, kills) = kill_at_random_moments(&env, &clock, &mut rng, |_| {});
    // The slowness served the kills; the last daemon catches up at speed.
    env.tg.clear_faults();
    ig.clear_faults();
    let cutoff = timestamp(clock.now());
    catch_up(&env, |db| {
        let open = count(
            db,
            "SELECT count(*) FROM posting_queue q LEFT JOIN publish_jobs j ON j.queue_id = q.id
             WHERE q.scheduled_for <= ?1 AND (q.status = 'pending'
               OR (q.status = 'sending' AND coalesce(j.state, '') != 'unknown'))",
            [&cutoff],
        );
        let outbox = count(db, "SELECT count(*) FROM outbox", []);
        (open + outbox > 0).then(|| {
            format!("{open} slot(s) neither done nor asked about, {outbox} call(s) in the outbox")
        })
    });
    let (status, _) = daemon.terminate();
    assert!(status.success(), "{status}");
    assert_integrity(&env);
    let db = env.db();
    let windows = assert_plan_intact(&db);
    let slots = period_slots(&db, &cutoff);
    assert!(
        slots.len() >= MIN_SLOTS,
        "only {} slots up to {cutoff}",
        slots.len()
    );

    // What Instagram saw, per (chat, media item): containers, publish calls, publications.
    let containers = ig.containers();
    let story_of_container: HashMap<String, (i64, i64)> = containers
        .iter()
        .map(|c| {
            let chat = chat_of_account[&c.ig_user_id];
            (c.container_id.clone(), (chat, item_in_url(&c.media_url)))
        })
        .collect();
    let mut publish_calls: HashMap<(i64, i64), usize> = HashMap::new();
    for call in ig.calls_to("/media_publish") {
        let container = call.params["creation_id"].as_str().unwrap_or_default();
        let story = story_of_container[container];
        *publish_calls.entry(story).or_default() += 1;
    }
    let mut published: HashMap<(i64, i64), Vec<String>> = HashMap::new();
    for c in &containers {
        if let Some(media_id) = &c.media_id {
            published
                .entry(story_of_container[&c.container_id])
                .or_default()
                .push(media_id.clone());
        }
    }
    let twice: Vec<_> = publish_calls.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "media_publish called more than once for (chat, item): {twice:?}"
    );

    let slot_item: HashMap<i64, (i64, i64)> = {
        let mut stmt = db
            .prepare("SELECT id, chat_id, media_item_id FROM posting_queue WHERE media_item_id IS NOT NULL")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Every publication is known to the daemon: recorded with its media id, or asked about.
    for (story, media_ids) in &published {
        let (slot, _) = slot_item
            .iter()
            .find(|(_, s)| *s == story)
            .unwrap_or_else(|| panic!("Instagram published {story:?}, which no slot holds"));
        let (state, media_id): (String, Option<String>) = db
            .query_row(
                "SELECT state, media_id FROM publish_jobs WHERE queue_id = ?1",
                [slot],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(
            (state == "published" && media_id.as_ref() == media_ids.first()) || state == "unknown",
            "slot {slot}: Instagram published {media_ids:?}, the job says {state} {media_id:?}"
        );
    }

    let reports = delivered(&env, "sendPhoto");
    let questions: Vec<Call> = delivered(&env, "sendMessage")
        .into_iter()
        .filter(|c| text_of(c).contains("could not tell whether"))
        .collect();
    let mut lost = Vec::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let (mut report_repeats, mut question_repeats) = (0, 0);
    let (mut unknown, mut unknown_published) = (0, 0);
    for slot in &slots {
        let job = slot.job.as_ref().map(|(state, _)| state.as_str());
        *states
            .entry(format!("{}/{}", slot.status, job.unwrap_or("-")))
            .or_default() += 1;
        let story = slot_item.get(&slot.id).copied();
        let problem = match (slot.status.as_str(), job) {
            ("missed", None) => None,
            ("posted", Some("published")) => {
                let file = slot.file.clone().unwrap_or_default();
                let shown = reports
                    .iter()
                    .filter(|c| {
                        chat_of(c) == Some(slot.chat)
                            && text_of(c).contains(&format!("· {file}"))
                            && text_of(c).contains("Published to Instagram")
                    })
                    .count();
                report_repeats += shown.saturating_sub(1);
                let media_ids = story.and_then(|s| published.get(&s));
                let history: Vec<Option<String>> = {
                    let mut stmt = db
                        .prepare(
                            "SELECT instagram_media_id FROM posting_history WHERE queue_id = ?1",
                        )
                        .unwrap();
                    stmt.query_map([slot.id], |r| r.get(0))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                };
                let recorded = slot.job.as_ref().and_then(|(_, id)| id.clone());
                if shown == 0 {
                    Some("published, but the chat was not told".to_string())
                } else if media_ids.map(Vec::len) != Some(1)
                    || media_ids.and_then(|ids| ids.first()) != recorded.as_ref()
                    || history != vec![recorded.clone()]
                {
                    Some(format!(
                        "Instagram has {media_ids:?}, the job {recorded:?}, history {history:?}"
                    ))
                } else {
                    None
                }
            }
            ("sending", Some("unknown")) => {
                unknown += 1;
                unknown_published += usize::from(story.is_some_and(|s| published.contains_key(&s)));
                let asked = questions
                    .iter()
                    .filter(|c| {
                        chat_of(c) == Some(slot.chat) && queue_id_in_keyboard(c) == Some(slot.id)
                    })
                    .count();
                question_repeats += asked.saturating_sub(1);
                (asked == 0).then(|| "its outcome is unknown and the chat was not asked".into())
            }
            (status, job) => Some(format!("ended {status} with job {job:?}")),
        };
        if let Some(problem) = problem {
            lost.push(format!(
                "slot {} of chat {} at {}: {problem}",
                slot.id, slot.chat, slot.at
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} slots lost:\n{}",
        lost.len(),
        slots.len(),
        lost.join("\n")
    );
    let notice_repeats = assert_missed_all_told(&env, &db);
    let repeats = report_repeats + question_repeats + notice_repeats;
    println!(
        "auto: {} slots up to {cutoff} in {windows} planned windows {states:?}; {kills} kills; \
         {} publications, none twice; {unknown} unknown outcomes asked ({unknown_published} of \
         them had been published); {repeats} repeated deliveries ({report_repeats} reports, \
         {question_repeats} questions, {notice_repeats} notices; bound: one per kill); {:?}",
        slots.len(),
        published.len(),
        started.elapsed()
    );
    assert!(
        repeats <= kills as usize,
        "{repeats} repeated deliveries in {kills} kills"
    );
    assert_log_is_clean(&env);
    let log = env.log();
    for index in 0..CHATS.len() {
        assert!(!log.contains(&format!("IGAA-crash-{index}-SECRET")));
    }
}

// ---- full and read-only disks ----------------------------------------------------------

/// A file system mounted for one test, unmounted on Drop (lazily, in case a daemon
/// still holds it).
struct Mounted {
    dir: std::path::PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Runs a command for the set-up; the reason it failed, if it did.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// Mounting needs root (CI runs the tests as root); elsewhere these tests say why
/// they did nothing.
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// An Env whose database lives in `state/`, where `mount` puts a file system.
fn env_on_mount(
    mount: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> Option<(Env, Mounted)> {
    if !is_root() {
        eprintln!("SKIPPED: mounting a file system for the database needs root");
        return None;
    }
    let env = Env::new();
    let dir = env.path().join("state");
    fs::create_dir(&dir).unwrap();
    if let Err(why) = mount(&dir) {
        eprintln!("SKIPPED: cannot mount a file system for the database: {why}");
        return None;
    }
    let mounted = Mounted { dir };
    let config = env.base_config().replace(
        "database = \"storyline.db\"",
        "database = \"state/storyline.db\"",
    );
    // These tests toggle ten times a second, faster than [limits] lets a chat.
    env.write_config_raw(&format!("{config}\n{FAST_COMMANDS}"));
    Some((env, mounted))
}

/// Mounts a tmpfs of `size` (as mount's `size=` says it) on `dir`.
fn tmpfs(dir: &std::path::Path, size: &str) -> Result<(), String> {
    let options = format!("size={size},mode=0700");
    sh(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            &options,
            "tmpfs",
            dir.to_str().unwrap(),
        ],
    )
}

fn state_db(env: &Env) -> Connection {
    let db = Connection::open(env.path().join("state/storyline.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db
}

/// What the users did while the disk was in trouble, and what it must come to.
#[derive(Default)]
struct Toggles {
    updates: Vec<i64>,
    presses: Vec<i64>,
    /// Dry run as the updates so far leave it, and the settings versions they add.
    dry_run: bool,
    changes: i64,
    commands: i64,
}

impl Toggles {
    /// /dryrun, or a press that sets dry run to a value (a no-op when it is already so).
    fn push(&mut self, env: &Env, menu: i64, rng: &mut Rng) {
        if rng.below(2) == 0 {
            self.updates
                .push(env.tg.push_message(CHAT, ADMIN, "ada", "/dryrun"));
            self.dry_run = !self.dry_run;
            self.changes += 1;
            self.commands += 1;
        } else {
            let value = rng.below(2) == 1;
            let update = env.tg.push_callback(
                CHAT,
                ADMIN,
                "ada",
                menu,
                &format!("1:set:dry:{}", u8::from(value)),
            );
            self.updates.push(update);
            self.presses.push(update);
            if value != self.dry_run {
                self.dry_run = value;
                self.changes += 1;
            }
        }
    }
}

/// Telegram has not been told to forget an update the database does not hold.
fn assert_nothing_confirmed_unstored(env: &Env) {
    let confirmed = env.tg.confirmed_offset();
    let stored: Option<i64> = state_db(env)
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM kv WHERE key = 'telegram.last_update_id'",
            [],
            |r| r.get(0),
        )
        .ok();
    assert!(
        confirmed <= stored.map_or(0, |id| id + 1),
        "Telegram was told to forget updates below {confirmed}; the database holds up to {stored:?}"
    );
}

fn error_lines(env: &Env) -> usize {
    env.log().lines().filter(|l| l.contains("[ERROR]")).count()
}

/// Users toggle dry run while the disk is in trouble (`in_trouble` becomes true once
/// the daemon said so); checks that nothing unstored is confirmed, that the log says
/// it once rather than every second, and that, after `recover`, every held update is
/// handled exactly once.
fn toggle_through_trouble(
    env: &Env,
    rng: &mut Rng,
    start_trouble: impl FnOnce(),
    recover: impl FnOnce() -> Option<Daemon>,
) {
    let menu = say(env, CHAT, ADMIN, "/settings");
    let mut toggles = Toggles {
        dry_run: true,
        ..Toggles::default()
    };
    let errors_before = error_lines(env);
    start_trouble();
    // Users go on until the daemon hits the trouble (a write no longer fits), then
    // for five more seconds. Pushes are paced, not synchronised on.
    let hit = Instant::now() + Duration::from_secs(30);
    while error_lines(env) == errors_before {
        assert!(Instant::now() < hit, "the daemon never noticed the trouble");
        toggles.push(env, menu.message_id, rng);
        assert_nothing_confirmed_unstored(env);
        std::thread::sleep(Duration::from_millis(100));
    }
    let held_since = Instant::now();
    while held_since.elapsed() < Duration::from_secs(5) {
        toggles.push(env, menu.message_id, rng);
        assert_nothing_confirmed_unstored(env);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        env.tg.pending_updates() > 0,
        "updates pushed in the trouble were confirmed"
    );
    let errors = error_lines(env) - errors_before;
    assert!(
        (1..=4).contains(&errors),
        "{errors} ERROR lines in 5 s of trouble: once per state change, not per retry\n{}",
        env.log()
    );
    let _daemon = recover();
    assert_caught_up_once(env, &toggles);
    println!(
        "{} updates held through the trouble ({} /dryrun, {} presses), {} ERROR line(s)",
        toggles.updates.len(),
        toggles.commands,
        toggles.presses.len(),
        error_lines(env) - errors_before
    );
}

/// Once the trouble is over: every update confirmed and handled exactly once, the
/// outbox drained with one reply per /dryrun, the settings as the updates leave
/// them, and the database intact.
fn assert_caught_up_once(env: &Env, toggles: &Toggles) {
    wait_until("every held update confirmed", CATCH_UP, || {
        (env.tg.pending_updates() == 0).then_some(())
    });
    wait_until("the outbox to drain", CATCH_UP, || {
        (count(&state_db(env), "SELECT count(*) FROM outbox", []) == 0).then_some(())
    });
    assert_nothing_confirmed_unstored(env);
    let db = state_db(env);
    for update in &toggles.updates {
        let handled = count(
            &db,
            "SELECT count(*) FROM interactions WHERE update_id = ?1",
            [update],
        );
        assert_eq!(handled, 1, "update {update} handled once");
    }
    for press in &toggles.presses {
        env.tg.wait_for_callback_answer(*press, WAIT);
    }
    let replies = delivered(env, "sendMessage")
        .iter()
        .filter(|c| text_of(c).contains("Dry run is"))
        .count() as i64;
    assert_eq!(
        replies, toggles.commands,
        "one reply per /dryrun, none twice"
    );
    assert_eq!(
        count(
            &db,
            "SELECT dry_run_mode FROM chats WHERE chat_id = ?1",
            [CHAT]
        ),
        i64::from(toggles.dry_run)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM settings_history WHERE chat_id = ?1",
            [CHAT]
        ),
        1 + toggles.changes
    );
    let result: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
    assert!(!env.log().contains("nothing of it was kept"));
}

#[test]
fn a_full_disk_holds_updates_and_the_daemon_recovers_when_space_returns() {
    let mut rng = Rng::from_env_or_time("full disk");
    let Some((env, mounted)) = env_on_mount(|dir| tmpfs(dir, "3m")) else {
        return;
    };
    let _daemon = env.start_polling();
    let filler = mounted.dir.join("filler");
    toggle_through_trouble(
        &env,
        &mut rng,
        || {
            use std::io::Write as _;
            let mut file = fs::File::create(&filler).unwrap();
            for chunk in [64 * 1024, 512] {
                while file.write_all(&vec![0; chunk]).is_ok() {}
            }
            let _ = file.sync_all();
        },
        || {
            fs::remove_file(&filler).unwrap();
            None
        },
    );
    assert!(env.log().contains("works again"), "{}", env.log());
}

/// The disk fills up with the database's own WAL: SQLite copies the WAL back (and
/// reuses it) only after a commit that succeeded, so once a commit no longer fits,
/// a little room made by the operator would go to the WAL again and the daemon
/// would stay stuck. It checkpoints first instead: the little room lets the WAL be
/// copied back, and the WAL's space comes free.
#[test]
fn a_wal_that_fills_the_disk_gives_its_space_back_when_a_little_room_returns() {
    let mut rng = Rng::from_env_or_time("WAL fills the disk");
    let Some((env, mounted)) = env_on_mount(|dir| tmpfs(dir, "2m")) else {
        return;
    };
    let _daemon = env.start_polling();
    let menu = say(&env, CHAT, ADMIN, "/settings");
    // 512 KiB the operator frees later; the rest of the disk filled but for
    // 256 KiB, less than the WAL grows to before its own checkpoint (1 MiB).
    let room = mounted.dir.join("room");
    fs::write(&room, vec![0u8; 512 * 1024]).unwrap();
    {
        use std::io::Write as _;
        let mut filler = fs::File::create(mounted.dir.join("filler")).unwrap();
        while filler.write_all(&[0; 64 * 1024]).is_ok() {}
        let len = filler.metadata().unwrap().len();
        filler.set_len(len.saturating_sub(256 * 1024)).unwrap();
    }
    let mut toggles = Toggles {
        dry_run: true,
        ..Toggles::default()
    };
    // Each toggle adds its update, its reply and a settings version to the WAL.
    let full = Instant::now() + Duration::from_secs(60);
    while !env.log().contains("database or disk is full") {
        assert!(Instant::now() < full, "the WAL never filled the disk");
        toggles.push(&env, menu.message_id, &mut rng);
        assert_nothing_confirmed_unstored(&env);
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..20 {
        toggles.push(&env, menu.message_id, &mut rng);
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::remove_file(&room).unwrap();
    assert_caught_up_once(&env, &toggles);
    let log = env.log();
    assert!(log.contains("works again"), "{log}");
    println!(
        "the WAL filled the disk after {} updates; {} handled once",
        toggles.updates.len() - 20,
        toggles.updates.len()
    );
}

/// A read-only database, the way it happens to a Pi: ext4 with errors=remount-ro
/// turns itself read-only under the running daemon (triggered here through ext4's
/// own test hook). Linux refuses `mount -o remount,ro` while a file is open for
/// writing, and an ext4 that remounted itself read-only stays so until it is
/// unmounted and checked, so recovery is what an operator does: stop the daemon,
/// fsck, mount, start it again. The held updates are then handled exactly once.
#[test]
fn a_database_gone_read_only_holds_updates_until_the_disk_is_repaired() {
    let mut rng = Rng::from_env_or_time("read-only disk");
    // The disk image sits beside the mount point, in the test's temp dir.
    let image_of = |dir: &std::path::Path| dir.with_file_name("disk.img");
    let Some((env, mounted)) = env_on_mount(|dir| {
        let image = image_of(dir);
        let image = image.to_str().unwrap();
        sh("truncate", &["-s", "16M", image])?;
        sh("mkfs.ext4", &["-q", "-F", image])?;
        sh(
            "mount",
            &["-o", "loop,errors=remount-ro", image, dir.to_str().unwrap()],
        )
    }) else {
        return;
    };
    let image_text = image_of(&mounted.dir).to_str().unwrap().to_string();
    let dir = mounted.dir.to_str().unwrap().to_string();
    let daemon = env.start_polling();
    toggle_through_trouble(
        &env,
        &mut rng,
        || {
            let out = std::process::Command::new("findmnt")
                .args(["-n", "-o", "SOURCE", &dir])
                .output()
                .unwrap();
            let source = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let device = source.rsplit('/').next().unwrap_or_default().to_string();
            fs::write(format!("/sys/fs/ext4/{device}/trigger_fs_error"), "1")
                .unwrap_or_else(|e| panic!("turning {source} read-only: {e}"));
            assert!(
                fs::write(mounted.dir.join("probe"), "x").is_err(),
                "{dir} is still writable"
            );
        },
        || {
            let (status, _) = daemon.terminate();
            assert!(status.success(), "stopping on a read-only disk: {status}");
            sh("umount", &[&dir]).unwrap();
            let fsck = std::process::Command::new("e2fsck")
                .args(["-f", "-y", &image_text])
                .output()
                .unwrap();
            assert!(
                matches!(fsck.status.code(), Some(0 | 1)),
                "e2fsck: {}",
                describe_output(&fsck)
            );
            sh(
                "mount",
                &["-o", "loop,errors=remount-ro", &image_text, &dir],
            )
            .unwrap();
            Some(env.start_polling())
        },
    );
    drop(mounted);
}
