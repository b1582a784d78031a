//! Rate limits as arithmetic on the times the caller passes (no clock here):
//!
//! - `CommandLimiter`: each chat's token bucket on commands and button presses
//!   (`[limits]` in storyline.toml). Over the limit, the first refusal carries a
//!   notice and later ones are silent until the bucket is full again.
//! - `Pacer`: Telegram's own limits on what the bot sends, as sliding windows:
//!   about 30 calls a second overall, one a second per chat in bursts of
//!   `CHAT_BURST`, and 20 a minute per group (a negative chat id).
//!
//! Both live in the daemon's memory: a restart forgets them (the buckets start
//! full, the windows empty).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

// ---- commands and presses ------------------------------------------------------

/// What the bucket says about one command or press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit: nothing is done for it. `notice` is true for the first
    /// refusal since the bucket was last full; `retry_in_secs` is when the next
    /// token comes (at least 1).
    Refused {
        notice: bool,
        retry_in_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
    /// The chat was told it is over the limit; silent until the bucket is full.
    noticed: bool,
}

/// Chats kept before the full (idle) buckets are forgotten: a full bucket is
/// what a chat not in the map gets anyway.
const KEEP_CHATS: usize = 1024;

/// Per-chat token buckets: `per_minute` tokens a minute, at most `burst`.
#[derive(Debug, Clone)]
pub struct CommandLimiter {
    per_second: f64,
    burst: f64,
    chats: HashMap<i64, Bucket>,
}

impl CommandLimiter {
    pub fn new(per_minute: u32, burst: u32) -> CommandLimiter {
        CommandLimiter {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            chats: HashMap::new(),
        }
    }

    /// Takes a token from the chat's bucket if there is one.
    pub fn admit(&mut self, chat_id: i64, now: DateTime<Utc>) -> Admission {
        if self.chats.len() >= KEEP_CHATS {
            self.forget_full(now);
        }
        let (per_second, burst) = (self.per_second, self.burst);
        let bucket = self.chats.entry(chat_id).or_insert(Bucket {
            tokens: burst,
            at: now,
            noticed: false,
        });
        refill(bucket, per_second, burst, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Admission::Allowed;
        }
        let notice = !bucket.noticed;
        bucket.noticed = true;
        let retry_in_secs = ((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64;
        Admission::Refused {
            notice,
            retry_in_secs,
        }
    }

    /// How many chats have a bucket in memory.
    pub fn chats_held(&self) -> usize {
        self.chats.len()
    }

    fn forget_full(&mut self, now: DateTime<Utc>) {
        let (per_second, burst) = (self.per_second, self.burst);
        self.chats.retain(|_, bucket| {
            refill(bucket, per_second, burst, now);
            bucket.tokens < burst
        });
    }
}

fn refill(bucket: &mut Bucket, per_second: f64, burst: f64, now: DateTime<Utc>) {
    // A clock that went back adds nothing and takes nothing.
    let elapsed = (now - bucket.at).num_milliseconds().max(0) as f64 / 1000.0;
    bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
    if now > bucket.at {
        bucket.at = now;
    }
    if bucket.tokens >= burst {
        bucket.noticed = false;
    }
}

// ---- what the bot sends ----------------------------------------------------------

/// Calls a second to all chats together (Telegram: "about 30").
pub const OVERALL_PER_SECOND: usize = 30;
/// Calls to one chat within as many seconds: one a second, in bursts of this many.
pub const CHAT_BURST: usize = 5;
/// Calls a minute to one group (a negative chat id).
pub const GROUP_PER_MINUTE: usize = 20;

/// At most `max` events in any `per`: the times of the last `max`.
#[derive(Debug, Clone)]
pub struct Window {
    max: usize,
    per: Duration,
    sent: VecDeque<Instant>,
}

impl Window {
    pub fn new(max: usize, per: Duration) -> Window {
        Window {
            max: max.max(1),
            per,
            sent: VecDeque::new(),
        }
    }

    /// When the next event may happen: `None` for now.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        if self.sent.len() < self.max {
            return None;
        }
        let at = *self.sent.front()? + self.per;
        (at > now).then_some(at)
    }

    pub fn record(&mut self, at: Instant) {
        self.sent.push_back(at);
        while self.sent.len() > self.max {
            self.sent.pop_front();
        }
    }

    /// Nothing in it limits anything any more at `now`.
    fn is_idle(&self, now: Instant) -> bool {
        self.sent.back().is_none_or(|last| *last + self.per <= now)
    }
}

/// Which limit holds a call back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Every chat waits (the overall rate).
    Overall,
    /// Only this call's chat waits.
    Chat,
}

/// Telegram's limits on the bot's calls, with the durations given in real time
/// (the daemon passes them through its clock, so a test clock scales them).
#[derive(Debug, Clone)]
pub struct Pacer {
    overall: Window,
    chat_limit: (usize, Duration),
    group_limit: (usize, Duration),
    chats: HashMap<i64, Window>,
    groups: HashMap<i64, Window>,
}

impl Pacer {
    /// Telegram's limits; `scale` turns a duration of daemon time into real time.
    pub fn telegram(scale: impl Fn(Duration) -> Duration) -> Pacer {
        Pacer::new(
            (OVERALL_PER_SECOND, scale(Duration::from_secs(1))),
            (CHAT_BURST, scale(Duration::from_secs(CHAT_BURST as u64))),
            (GROUP_PER_MINUTE, scale(Duration::from_secs(60))),
        )
    }

    pub fn new(
        overall: (usize, Duration),
        chat: (usize, Duration),
        group: (usize, Duration),
    ) -> Pacer {
        Pacer {
            overall: Window::new(overall.0, overall.1),
            chat_limit: chat,
            group_limit: group,
            chats: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// When a call to `chat` (None: a call naming no chat, such as
    /// answerCallbackQuery) may go, and which limit holds it; `None` for now.
    pub fn wait(&self, chat: Option<i64>, now: Instant) -> Option<(Instant, Blocker)> {
        let mut chat_ready = None;
        if let Some(chat) = chat {
            let windows = [self.chats.get(&chat), self.groups.get(&chat)];
            chat_ready = windows
                .into_iter()
                .flatten()
                .filter_map(|w| w.ready_at(now))
                .max();
        }
        let overall_ready = self.overall.ready_at(now);
        match (chat_ready, overall_ready) {
            (Some(c), Some(o)) if o > c => Some((o, Blocker::Overall)),
            // The chat's own limit is the longer wait: only it waits, and other
            // chats' calls may pass it.
            (Some(c), _) => Some((c, Blocker::Chat)),
            (None, Some(o)) => Some((o, Blocker::Overall)),
            (None, None) => None,
        }
    }

    /// A call to `chat` was answered at `at` (the time after Telegram's
    /// answer, which is after Telegram counted it).
    pub fn sent(&mut self, chat: Option<i64>, at: Instant) {
        self.overall.record(at);
        let Some(chat) = chat else {
            return;
        };
        if self.chats.len() >= KEEP_CHATS {
            self.chats.retain(|_, w| !w.is_idle(at));
            self.groups.retain(|_, w| !w.is_idle(at));
        }
        let (max, per) = self.chat_limit;
        self.chats
            .entry(chat)
            .or_insert_with(|| Window::new(max, per))
            .record(at);
        if chat < 0 {
            let (max, per) = self.group_limit;
            self.groups
                .entry(chat)
                .or_insert_with(|| Window::new(max, per))
                .record(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_bucket_admits_its_burst_then_refuses_once_aloud_then_silently() {
        let mut limiter = CommandLimiter::new(6, 3);
        for _ in 0..3 {
            assert_eq!(limiter.admit(1, t(0)), Admission::Allowed);
        }
        assert_eq!(
            limiter.admit(1, t(0)),
            Admission::Refused {
                notice: true,
                retry_in_secs: 10
            }
        );
        assert_eq!(
            limiter.admit(1, t(4)),
            Admission::Refused {
                notice: false,
                retry_in_secs: 6
            }
        );
        // Another chat has its own bucket.
        assert_eq!(limiter.admit(2, t(4)), Admission::Allowed);
        // One token a ten seconds: one command, then silence again.
        assert_eq!(limiter.admit(1, t(10)), Admission::Allowed);
        assert!(matches!(
            limiter.admit(1, t(11)),
            Admission::Refused { notice: false, .. }
        ));
        // Full again after 30 s of quiet: the burst again, then a new notice.
        for _ in 0..3 {
            assert_eq!(limiter.admit(1, t(45)), Admission::Allowed);
        }
        assert!(matches!(
            limiter.admit(1, t(45)),
            Admission::Refused { notice: true, .. }
        ));
    }

    #[test]
    fn sixty_commands_at_once_get_the_burst_and_one_notice() {
        let mut limiter = CommandLimiter::new(30, 20);
        let outcomes: Vec<Admission> = (0..60).map(|i| limiter.admit(7, t(i / 20))).collect();
        let allowed = outcomes
            .iter()
            .filter(|a| **a == Admission::Allowed)
            .count();
        let notices = outcomes
            .iter()
            .filter(|a| matches!(a, Admission::Refused { notice: true, .. }))
            .count();
        // 20 at once, one more token in the two seconds that follow.
        assert_eq!((allowed, notices), (21, 1));
    }

    #[test]
    fn a_clock_going_back_neither_adds_nor_breaks() {
        let mut limiter = CommandLimiter::new(60, 1);
        assert_eq!(limiter.admit(1, t(100)), Admission::Allowed);
        assert!(matches!(limiter.admit(1, t(50)), Admission::Refused { .. }));
        assert_eq!(limiter.admit(1, t(101)), Admission::Allowed);
    }

    #[test]
    fn idle_full_buckets_are_forgotten_when_many_chats_came() {
        let mut limiter = CommandLimiter::new(60, 2);
        for chat in 0..KEEP_CHATS as i64 {
            limiter.admit(chat, t(0));
        }
        assert_eq!(limiter.chats_held(), KEEP_CHATS);
        // A minute later every one of them is full again.
        limiter.admit(-1, t(60));
        assert_eq!(limiter.chats_held(), 1);
    }

    fn pacer() -> (Pacer, Instant) {
        (Pacer::telegram(|d| d), Instant::now())
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Sends `count` calls to `chat` as soon as the pacer lets them; their times.
    fn send_all(pacer: &mut Pacer, start: Instant, chat: i64, count: usize) -> Vec<Instant> {
        let mut now = start;
        let mut times = Vec::new();
        for _ in 0..count {
            if let Some((at, _)) = pacer.wait(Some(chat), now) {
                now = at;
            }
            pacer.sent(Some(chat), now);
            times.push(now);
        }
        times
    }

    #[test]
    fn a_group_gets_twenty_a_minute_and_bursts_of_five() {
        let (mut pacer, start) = pacer();
        let times = send_all(&mut pacer, start, -100, 40);
        for (i, at) in times.iter().enumerate() {
            if i >= GROUP_PER_MINUTE {
                assert!(*at - times[i - GROUP_PER_MINUTE] >= secs(60.0), "call {i}");
            }
            if i >= CHAT_BURST {
                assert!(*at - times[i - CHAT_BURST] >= secs(5.0), "call {i}");
            }
        }
        // The first five at once, the 21st a minute after the first.
        assert_eq!(times[4], start);
        assert_eq!(times[20] - start, secs(60.0));
    }

    #[test]
    fn a_private_chat_gets_one_a_second_in_bursts() {
        let (mut pacer, start) = pacer();
        let times = send_all(&mut pacer, start, 42, 11);
        assert_eq!(times[4], start);
        assert_eq!(times[5] - start, secs(5.0));
        assert_eq!(times[10] - start, secs(10.0));
    }

    #[test]
    fn a_waiting_chat_holds_only_itself_and_the_overall_rate_holds_all() {
        let (mut pacer, start) = pacer();
        send_all(&mut pacer, start, 1, CHAT_BURST);
        assert_eq!(
            pacer.wait(Some(1), start),
            Some((start + secs(5.0), Blocker::Chat))
        );
        assert_eq!(pacer.wait(Some(2), start), None);
        assert_eq!(pacer.wait(None, start), None);
        for chat in 2..=OVERALL_PER_SECOND as i64 - CHAT_BURST as i64 + 1 {
            pacer.sent(Some(chat), start);
        }
        let next_second = Some((start + secs(1.0), Blocker::Overall));
        assert_eq!(pacer.wait(Some(99), start), next_second);
        assert_eq!(pacer.wait(None, start), next_second);
        // Chat 1 waits longer for itself than for everyone.
        assert_eq!(pacer.wait(Some(1), start).map(|w| w.1), Some(Blocker::Chat));
        assert_eq!(pacer.wait(Some(99), start + secs(1.0)), None);
    }

    #[test]
    fn a_scaled_clock_scales_the_windows() {
        let mut pacer = Pacer::telegram(|d| d / 60);
        let start = Instant::now();
        let times = send_all(&mut pacer, start, -5, 21);
        assert_eq!(times[20] - start, secs(1.0));
    }
}
