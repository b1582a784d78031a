//! The fake Telegram's flood control, as strict as the real service's documented
//! limits: more than 30 messages a second overall, more than one a second to a
//! chat (bursts of up to 5 within 5 seconds are let through), or more than 20 a
//! minute to a group (a negative chat id) get 429 "Too Many Requests: retry after
//! N" with `parameters.retry_after`. Every method that names a chat counts except
//! getChatMember (a question, not a message); a refused call does not count.
//!
//! Windows are sliding (no call may be the 31st within any second), and measured
//! in real time divided by `speed`: a daemon on a test clock (`Env::start_with_env`
//! sets it) is held to the limits in its own time, so a test can send a minute's
//! worth to a group in a second.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const OVERALL_PER_SECOND: usize = 30;
pub const CHAT_BURST: usize = 5;
pub const GROUP_PER_MINUTE: usize = 20;

pub struct FloodControl {
    pub enforce: bool,
    speed: f64,
    overall: VecDeque<Instant>,
    chats: HashMap<i64, VecDeque<Instant>>,
    /// Chats whose next call gets a 429 with this retry_after, whatever the rate.
    forced: HashMap<i64, u64>,
}

impl Default for FloodControl {
    fn default() -> Self {
        FloodControl {
            enforce: true,
            speed: 1.0,
            overall: VecDeque::new(),
            chats: HashMap::new(),
            forced: HashMap::new(),
        }
    }
}

impl FloodControl {
    pub fn set_speed(&mut self, speed: f64) {
        assert!(speed.is_finite() && speed > 0.0, "speed {speed}");
        self.speed = speed;
    }

    /// The next call naming `chat_id` gets 429 with `retry_after` seconds.
    pub fn force(&mut self, chat_id: i64, retry_after: u64) {
        self.forced.insert(chat_id, retry_after);
    }

    fn window(&self, secs: u64) -> Duration {
        Duration::from_secs(secs).div_f64(self.speed)
    }

    /// Ok when a call of `method` naming `chat_id`, arriving `at`, is within the
    /// limits; else the `retry_after` to answer with, in (daemon) seconds.
    pub fn check(&mut self, method: &str, chat_id: Option<i64>, at: Instant) -> Result<(), u64> {
        let Some(chat_id) = chat_id.filter(|_| counts(method)) else {
            return Ok(());
        };
        if let Some(retry_after) = self.forced.remove(&chat_id) {
            return Err(retry_after);
        }
        if !self.enforce {
            return Ok(());
        }
        let mut free_at: Option<Instant> = None;
        let mut limit = |times: &VecDeque<Instant>, max: usize, per: Duration| {
            // The max-th newest call must be at least `per` old.
            if times.len() >= max {
                let nth = times[times.len() - max];
                if at < nth + per {
                    free_at = Some(free_at.map_or(nth + per, |f: Instant| f.max(nth + per)));
                }
            }
        };
        limit(&self.overall, OVERALL_PER_SECOND, self.window(1));
        if let Some(times) = self.chats.get(&chat_id) {
            limit(times, CHAT_BURST, self.window(CHAT_BURST as u64));
            if chat_id < 0 {
                limit(times, GROUP_PER_MINUTE, self.window(60));
            }
        }
        match free_at {
            None => Ok(()),
            Some(free) => {
                let wait = (free - at).as_secs_f64() * self.speed;
                Err((wait.ceil() as u64).max(1))
            }
        }
    }

    /// Counts a call that was taken.
    pub fn taken(&mut self, method: &str, chat_id: Option<i64>, at: Instant) {
        let Some(chat_id) = chat_id.filter(|_| counts(method)) else {
            return;
        };
        let keep = self.window(60);
        self.overall.push_back(at);
        while self.overall.len() > OVERALL_PER_SECOND {
            self.overall.pop_front();
        }
        let times = self.chats.entry(chat_id).or_default();
        times.push_back(at);
        while times.len() > GROUP_PER_MINUTE.max(CHAT_BURST)
            || times.front().is_some_and(|t| *t + keep < at)
        {
            times.pop_front();
        }
    }
}

fn counts(method: &str) -> bool {
    !matches!(method, "getChatMember" | "getUpdates")
}
