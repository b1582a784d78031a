//! A day of load on the real binary, for the capacity benchmark (`benches/capacity.rs`)
//! and its small integration test (`tests/it/capacity.rs`): many chats, each with its
//! stories a day, on the test clock (`STORYLINE_TEST_CLOCK`), against the fake Telegram
//! server, while simulated people press story buttons and send /status. What it cost
//! comes from /proc (RSS, CPU per thread) and what Telegram saw from the fake's calls
//! (each recorded with its arrival `Instant`).
//!
//! Two clocks: *wall* time is the machine's, *daemon* time is the test clock, `speed`
//! times faster. A slot's lateness is the arrival of its sendPhoto at the fake, turned
//! into daemon time, minus the slot's `scheduled_for` in the database.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{describe_output, Call, Env};

/// The load: `chats` chats (every other one a group), each `posts_per_day` stories in
/// its window, over `hours` of daemon time on a clock `speed` times the wall clock.
#[derive(Clone, Debug)]
pub struct Load {
    pub chats: usize,
    pub posts_per_day: u32,
    pub speed: f64,
    pub hours: f64,
    /// The posting window in UTC, start and end hour (as `[defaults]`).
    pub window: (u32, u32),
    /// One chat in this many sends /status, `statuses_a_day` times a day.
    pub status_every_nth_chat: usize,
    pub statuses_a_day: usize,
    /// The share of stories someone presses ✅ Posted or Skip on, 5–90 daemon
    /// minutes after it arrived.
    pub press_share: f64,
    pub seed: u64,
}

/// Distinct images in the library: more than a chat needs for a week, so no chat
/// is warned that it runs dry (7 days × 10 a day).
const FILES: usize = 80;
/// Daemon time after the last slot, for the last stories and presses to go out.
const DRAIN_SECS: f64 = 20.0 * 60.0;
/// Wall time the outbox gets after the drain to send what is still waiting.
const OUTBOX_DRAIN: Duration = Duration::from_secs(120);
/// The virtual day starts at midnight UTC of a Monday.
const VIRTUAL_START: &str = "2030-01-07T00:00:00Z";
/// The calls that post or change a message in a chat: what Telegram's limits count.
const MESSAGE_METHODS: &[&str] = &[
    "sendMessage",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
];

/// What a day cost and what Telegram saw.
#[derive(Debug, Default)]
pub struct Report {
    pub wall: Duration,
    pub simulated_hours: f64,
    /// Slots scheduled in the simulated period, by their status at the end.
    pub slots: usize,
    pub statuses: BTreeMap<String, usize>,
    /// Slots whose story reached Telegram, and how late, in seconds (sorted).
    pub late_daemon: Vec<f64>,
    pub late_wall: Vec<f64>,
    /// What Telegram's 30 messages a second overall alone would add to each story
    /// (a pacer sending the stories in due order, none before its time), and the
    /// estimate at 1x: the measured wall-clock lateness plus that.
    pub late_forced: Vec<f64>,
    pub late_estimate: Vec<f64>,
    /// Stories due in the same second of daemon time, at most (slots are whole minutes).
    pub most_due_at_once: usize,
    pub commands: usize,
    pub presses: usize,
    pub cpu: Duration,
    /// CPU per thread (threads still alive at the end), highest first.
    pub cpu_by_thread: Vec<(String, Duration)>,
    /// CPU per daemon hour of the simulated period.
    pub cpu_by_hour: Vec<Duration>,
    pub rss_end_kb: u64,
    pub rss_peak_kb: u64,
    pub threads: u64,
    pub rates: Rates,
    pub outbox_left: i64,
    /// The main thread's CPU over the wall time of the busiest daemon hour: near 1,
    /// the daemon cannot keep up with this clock, and wall-clock lateness is queueing
    /// a 1x run would not have.
    pub busiest_hour_load: f64,
}

/// The most messages Telegram saw in a window, by its limits' measures.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rates {
    pub messages: usize,
    pub too_many_requests: usize,
    /// In daemon time: any one second overall, one chat in any second, one group in
    /// any minute.
    pub overall_per_second: usize,
    pub chat_per_second: usize,
    /// One chat in any 5 s of daemon time: Telegram lets a chat have short bursts
    /// (5 in 5 s, as `flood.rs` and the outbox's pacer count) at one a second.
    pub chat_per_burst: usize,
    pub group_per_minute: usize,
    /// Overall in any one second of wall time.
    pub overall_per_wall_second: usize,
}

impl Report {
    pub fn delivered(&self) -> usize {
        self.late_daemon.len()
    }

    pub fn cpu_per_day(&self) -> Duration {
        self.cpu.mul_f64(24.0 / self.simulated_hours.max(1e-9))
    }
}

/// The `q`-quantile (0–1) of sorted values, nearest rank; 0 when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The most of `times` (seconds, any order) that fall in one window `[t, t + width)`.
pub fn most_in_window(times: &[f64], width: f64) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut best = 0;
    let mut start = 0;
    for end in 0..sorted.len() {
        while sorted[end] - sorted[start] >= width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// For stories due at `dues` (seconds, sorted), how late a sender of at most
/// `per_second` a second sends each one, in order, none before its time.
pub fn paced_lateness(dues: &[f64], per_second: f64) -> Vec<f64> {
    let gap = 1.0 / per_second;
    let mut free = f64::NEG_INFINITY;
    dues.iter()
        .map(|due| {
            let sent = free.max(*due);
            free = sent + gap;
            sent - due
        })
        .collect()
}

/// The most values of `keys` sharing one key, per key's own `most_in_window`.
fn most_per_key(points: &[(i64, f64)], width: f64, keep: impl Fn(i64) -> bool) -> usize {
    let mut by_key: HashMap<i64, Vec<f64>> = HashMap::new();
    for (key, t) in points {
        if keep(*key) {
            by_key.entry(*key).or_default().push(*t);
        }
    }
    by_key
        .values()
        .map(|times| most_in_window(times, width))
        .max()
        .unwrap_or(0)
}

/// The chat a Bot API call went to (form fields are strings, JSON keeps numbers).
pub fn chat_of(call: &Call) -> Option<i64> {
    match &call.params["chat_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The queue id in callback data `1:st:<action>:<id>...`.
fn queue_id_in(text: &str) -> Option<i64> {
    let rest = &text[text.find("1:st:")? + 5..];
    let id: String = rest
        .split_once(':')?
        .1
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    id.parse().ok()
}

/// The queue id in the story buttons of a call's keyboard.
pub fn story_queue_id(call: &Call) -> Option<i64> {
    let markup = match &call.params["reply_markup"] {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    queue_id_in(&markup)
}

/// xorshift64: small and seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A small 9:16 JPEG that shows `index` as blocks, so every file has its own content.
fn jpeg(index: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(36, 64, |x, y| {
        let bit = (y / 8) * 4 + x / 9;
        let v = if (index >> bit) & 1 == 1 { 255 } else { 0 };
        image::Rgb([v, v, 255 - v])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .expect("encode a test JPEG");
    bytes
}

/// The chats of a load: private chats (the user's id) and basic groups, alternating.
pub fn chat_ids(count: usize) -> Vec<i64> {
    (0..count as i64)
        .map(|i| {
            if i % 2 == 0 {
                10_000 + i
            } else {
                -(300_000 + i)
            }
        })
        .collect()
}

/// Who acts in a chat: a private chat's own user; in a group a plain member, so the
/// daemon asks Telegram about their role as it would in life.
fn user_of(chat: i64) -> i64 {
    if chat > 0 {
        chat
    } else {
        900_000 - chat
    }
}

fn proc_status(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// CPU time of each living thread, from /proc/PID/task/*/schedstat (nanoseconds,
/// exact), by thread name.
fn cpu_by_thread(pid: u32) -> Vec<(String, Duration)> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let name = fs::read_to_string(task.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            let ns = fs::read_to_string(task.path().join("schedstat"))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            *out.entry(name).or_default() += ns;
        }
    }
    let mut out: Vec<(String, Duration)> = out
        .into_iter()
        .map(|(name, ns)| (name, Duration::from_nanos(ns)))
        .collect();
    out.sort_by_key(|(_, cpu)| std::cmp::Reverse(*cpu));
    out
}

/// CPU time of the whole process, finished threads included (utime + stime of
/// /proc/PID/stat, in clock ticks).
fn cpu_total(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let from_stat = Duration::from_nanos(ticks * 1_000_000_000 / per_second);
    let from_threads: Duration = cpu_by_thread(pid).iter().map(|(_, d)| *d).sum();
    from_stat.max(from_threads)
}

/// A press waiting for its moment: the chat, the story's queue id, Posted or Skip.
struct Press {
    at: Instant,
    chat: i64,
    queue_id: i64,
    posted: bool,
}

/// Runs the load and measures it. Panics when the set-up fails.
pub fn run(load: &Load) -> Report {
    let env = Env::new();
    let chats = chat_ids(load.chats);
    let ids: Vec<String> = chats.iter().map(i64::to_string).collect();
    let config = env
        .base_config()
        .replace(
            &format!("allowed_chat_ids = [{}]", super::CHAT),
            &format!("allowed_chat_ids = [{}]", ids.join(", ")),
        )
        .replace("poll_timeout_secs = 2", "poll_timeout_secs = 50")
        .replace("level = \"debug\"", "level = \"info\"");
    env.write_config_raw(&format!(
        "{config}\n[defaults]\nposts_per_day = {}\nposting_hours_start = {}\n\
         posting_hours_end = {}\ntimezone = \"UTC\"\n",
        load.posts_per_day, load.window.0, load.window.1
    ));
    for index in 0..FILES {
        let category = ["quotes", "products", "team", "places"][index % 4];
        let path = env
            .media_dir()
            .join(category)
            .join(format!("s{index:03}.jpg"));
        fs::create_dir_all(path.parent().expect("a folder")).expect("create a category");
        fs::write(path, jpeg(index)).expect("write a test image");
    }
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    for chat in chats.iter().filter(|c| **c < 0) {
        env.tg.set_member(*chat, user_of(*chat), "member");
    }

    let virtual_start = DateTime::parse_from_rfc3339(VIRTUAL_START)
        .expect("the virtual start")
        .with_timezone(&Utc);
    let anchor = Instant::now();
    let anchor_ms = Utc::now().timestamp_millis();
    let clock = format!(
        "{},{anchor_ms},{}",
        virtual_start.to_rfc3339_opts(SecondsFormat::Secs, true),
        load.speed
    );
    let speed = load.speed;
    // Daemon seconds since the virtual start at a wall instant, and back.
    let daemon_secs = |at: Instant| match at.checked_duration_since(anchor) {
        Some(d) => d.as_secs_f64() * speed,
        None => -anchor.duration_since(at).as_secs_f64() * speed,
    };
    let wall_at = |secs: f64| anchor + Duration::from_secs_f64(secs.max(0.0) / speed);
    let period = load.hours * 3600.0;
    let hours = (period / 3600.0).ceil() as usize;

    let mut rng = Rng(load.seed.max(1));
    let mut commands: Vec<(Instant, i64)> = Vec::new();
    for chat in chats.iter().step_by(load.status_every_nth_chat.max(1)) {
        for _ in 0..load.statuses_a_day {
            let at = rng.unit() * period.min(86_400.0);
            commands.push((wall_at(at), *chat));
        }
    }
    commands.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let command_count = commands.len();

    // Telegram's real sending windows (the tests' default is 20x faster).
    let daemon = env.start_with_env(&[
        ("STORYLINE_TEST_CLOCK", &clock),
        ("STORYLINE_TEST_PACING", "1"),
    ]);
    let pid = daemon.pid();
    let mut seen = 0;
    let mut presses: Vec<Press> = Vec::new();
    let mut pressed = 0;
    let mut rss_max = 0;
    let mut cpu_marks = vec![Duration::ZERO];
    loop {
        let now = Instant::now();
        let t = daemon_secs(now);
        if t >= period + DRAIN_SECS {
            break;
        }
        let hour = (t.max(0.0) / 3600.0) as usize;
        while cpu_marks.len() <= hour.min(hours) {
            cpu_marks.push(cpu_total(pid));
        }
        let calls = env.tg.calls_since(seen);
        seen += calls.len();
        for call in calls.iter().filter(|c| c.method == "sendPhoto") {
            let (Some(chat), Some(queue_id)) = (chat_of(call), story_queue_id(call)) else {
                continue;
            };
            if rng.unit() < load.press_share {
                let after = (5.0 + rng.unit() * 85.0) * 60.0 / speed;
                presses.push(Press {
                    at: now + Duration::from_secs_f64(after),
                    chat,
                    queue_id,
                    posted: rng.unit() < 0.7,
                });
            }
        }
        presses.retain(|press| {
            if press.at > now {
                return true;
            }
            if push_press(&env, press) {
                pressed += 1;
            }
            false
        });
        while commands.last().is_some_and(|(at, _)| *at <= now) {
            let Some((_, chat)) = commands.pop() else {
                break;
            };
            let user = user_of(chat);
            env.tg
                .push_message(chat, user, &format!("user{user}"), "/status");
        }
        rss_max = rss_max.max(proc_status(pid, "VmRSS:"));
        // Paces this driver; the daemon runs on its own.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Stories still waiting (a daemon behind its clock) are late, not lost: they
    // may go out until the outbox is empty, for up to OUTBOX_DRAIN of wall time.
    let drain_until = Instant::now() + OUTBOX_DRAIN;
    let db = env.db();
    let outbox_size = || -> i64 {
        db.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .unwrap_or(0)
    };
    while outbox_size() > 0 && Instant::now() < drain_until {
        rss_max = rss_max.max(proc_status(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_total(pid);
    // An hour the loop did not reach the end of (a period of part of an hour).
    while cpu_marks.len() <= hours {
        cpu_marks.push(cpu);
    }
    let report_threads = cpu_by_thread(pid);
    let cpu_by_hour: Vec<Duration> = cpu_marks
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    let hour_wall = 3600.0 / speed;
    let busiest_hour_load = cpu_by_hour
        .iter()
        .map(|d| d.as_secs_f64() / hour_wall)
        .fold(0.0, f64::max);
    let rss_end_kb = proc_status(pid, "VmRSS:");
    let rss_peak_kb = proc_status(pid, "VmHWM:").max(rss_max);
    let threads = proc_status(pid, "Threads:");
    let wall = anchor.elapsed();
    let (status, _) = daemon.terminate();
    assert!(status.success(), "the daemon exited with {status}");

    let end = virtual_start + chrono::Duration::seconds(period as i64);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut stmt = db
        .prepare(
            "SELECT id, scheduled_for, status FROM posting_queue
             WHERE scheduled_for >= ?1 AND scheduled_for < ?2",
        )
        .expect("prepare the slot query");
    let slots: Vec<(i64, String, String)> = stmt
        .query_map([stamp(virtual_start), stamp(end)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("read the slots")
        .map(|row| row.expect("a slot row"))
        .collect();
    let outbox_left: i64 = db
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("count the outbox");

    let calls = env.tg.calls();
    let mut arrivals: HashMap<i64, f64> = HashMap::new();
    for call in &calls {
        if call.method == "sendPhoto" && call.status == Some(200) {
            if let Some(id) = story_queue_id(call) {
                arrivals.entry(id).or_insert_with(|| daemon_secs(call.at));
            }
        }
    }
    let mut statuses = BTreeMap::new();
    let mut due_at: HashMap<i64, usize> = HashMap::new();
    // (due, lateness in daemon time) of each delivered story.
    let mut delivered = Vec::new();
    for (id, scheduled_for, status) in &slots {
        *statuses.entry(status.clone()).or_default() += 1;
        let due = DateTime::parse_from_rfc3339(scheduled_for)
            .expect("a stored slot time")
            .with_timezone(&Utc);
        let due = (due - virtual_start).num_seconds();
        *due_at.entry(due).or_default() += 1;
        if let Some(arrived) = arrivals.get(id) {
            delivered.push((due as f64, arrived - due as f64));
        }
    }
    delivered.sort_by(|a, b| a.0.total_cmp(&b.0));
    let dues: Vec<f64> = delivered.iter().map(|(due, _)| *due).collect();
    let forced = paced_lateness(&dues, 30.0);
    let sorted = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
    };
    let late = sorted(delivered.iter().map(|(_, late)| *late).collect());
    let late_wall = late.iter().map(|l| l / speed).collect();
    let late_estimate = sorted(
        delivered
            .iter()
            .zip(&forced)
            .map(|((_, late), forced)| late / speed + forced)
            .collect(),
    );
    let late_forced = sorted(forced);

    let messages: Vec<&Call> = calls
        .iter()
        .filter(|c| MESSAGE_METHODS.contains(&c.method.as_str()) && c.status == Some(200))
        .collect();
    let points: Vec<(i64, f64)> = messages
        .iter()
        .map(|c| (chat_of(c).unwrap_or(0), daemon_secs(c.at)))
        .collect();
    let daemon_times: Vec<f64> = points.iter().map(|(_, t)| *t).collect();
    let wall_times: Vec<f64> = daemon_times.iter().map(|t| t / speed).collect();
    let rates = Rates {
        messages: messages.len(),
        too_many_requests: calls.iter().filter(|c| c.status == Some(429)).count(),
        overall_per_second: most_in_window(&daemon_times, 1.0),
        chat_per_second: most_per_key(&points, 1.0, |_| true),
        chat_per_burst: most_per_key(&points, super::flood::CHAT_BURST as f64, |_| true),
        group_per_minute: most_per_key(&points, 60.0, |chat| chat < 0),
        overall_per_wall_second: most_in_window(&wall_times, 1.0),
    };

    Report {
        wall,
        simulated_hours: load.hours,
        slots: slots.len(),
        statuses,
        late_daemon: late,
        late_wall,
        late_forced,
        late_estimate,
        most_due_at_once: due_at.values().copied().max().unwrap_or(0),
        commands: command_count,
        presses: pressed,
        cpu,
        cpu_by_thread: report_threads,
        cpu_by_hour,
        rss_end_kb,
        rss_peak_kb,
        threads,
        rates,
        outbox_left,
        busiest_hour_load,
    }
}

/// Presses the story's ✅ Posted (or Skip) button as the chat's user; false when the
/// story is not in the chat (its delivery failed).
fn push_press(env: &Env, press: &Press) -> bool {
    for message in env.tg.messages(press.chat).iter().rev() {
        let Some(rows) = message
            .reply_markup
            .as_ref()
            .and_then(|m| m["inline_keyboard"].as_array())
        else {
            continue;
        };
        let data = rows
            .iter()
            .flat_map(|row| row.as_array().into_iter().flatten())
            .find(|button| {
                button["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("✅ Posted"))
            })
            .and_then(|button| button["callback_data"].as_str());
        let Some(data) = data.filter(|d| queue_id_in(d) == Some(press.queue_id)) else {
            continue;
        };
        let data = if press.posted {
            data.to_string()
        } else {
            data.replace(":p:", ":s:")
        };
        let user = user_of(press.chat);
        env.tg.push_callback(
            press.chat,
            user,
            &format!("user{user}"),
            message.message_id,
            &data,
        );
        return true;
    }
    false
}
