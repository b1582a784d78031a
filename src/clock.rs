//! The daemon's clock. Normally the wall clock; with `STORYLINE_TEST_CLOCK` set, a
//! virtual clock that runs `speed` times faster than the wall clock, so that the
//! crash tests can take the real binary through hundreds of slots in a minute.
//!
//! `STORYLINE_TEST_CLOCK="<virtual start RFC 3339>,<real anchor unix ms>,<speed>"`
//! makes now = virtual start + (real now − anchor) × speed. The formula depends on
//! the wall clock only, so a process killed and started again with the same value
//! goes on at the same virtual time. It is a test seam: `storyline run` says so in a
//! WARN line at start, and without the variable `now()` is `Utc::now()` behind one
//! atomic load.
//!
//! Waits that come from daemon time (until the next slot, the scheduler's minute,
//! the publisher's minute between looks for due insight reads) go through
//! `real_duration`, and so do the waits between retries: the back-off
//! through a Telegram outage (poller, outbox) and Instagram's retries and container
//! polls (publish). Under a 60x clock a 30 s back-off cap is 0.5 real seconds, so a
//! test can live through minutes of outage in seconds. HTTP timeouts and
//! housekeeping stay in real time.
//!
//! `STORYLINE_TEST_PACING=<factor>` (a second test seam, also warned about at
//! start) divides the windows of Telegram's sending limits that the outbox keeps
//! (one a second per chat, 20 a minute per group, 30 a second overall), so that
//! tests exchanging dozens of messages with one chat need not wait for them; the
//! tests of those limits run with the real windows.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use chrono::{DateTime, Utc};

pub const ENV_VAR: &str = "STORYLINE_TEST_CLOCK";

/// A virtual clock: `speed` times the wall clock, `virtual_start` at `anchor_unix_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestClock {
    pub virtual_start: DateTime<Utc>,
    pub anchor_unix_ms: i64,
    pub speed: f64,
}

static CLOCK: OnceLock<TestClock> = OnceLock::new();

pub const PACING_VAR: &str = "STORYLINE_TEST_PACING";
static PACING: OnceLock<f64> = OnceLock::new();

/// How long to really wait for `window` of Telegram's sending limits: daemon
/// time, shortened by `STORYLINE_TEST_PACING` when a test set it.
pub fn pacing_duration(window: Duration) -> Duration {
    let real = real_duration(window);
    match PACING.get() {
        Some(factor) => real.div_f64(*factor),
        None => real,
    }
}

/// Reads `STORYLINE_TEST_PACING`; returns the factor when it is set.
pub fn install_pacing_from_env() -> Result<Option<f64>> {
    let Some(value) = std::env::var_os(PACING_VAR) else {
        return Ok(None);
    };
    let text = value
        .into_string()
        .map_err(|_| anyhow!("{PACING_VAR} is not valid UTF-8"))?;
    let factor: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && (1.0..=1000.0).contains(f))
        .ok_or_else(|| anyhow!("{PACING_VAR}={text:?}: a number from 1 to 1000"))?;
    let _ = PACING.set(factor);
    Ok(Some(factor))
}

/// The daemon's now.
pub fn now() -> DateTime<Utc> {
    match CLOCK.get() {
        Some(clock) => clock.at(Utc::now()),
        None => Utc::now(),
    }
}

/// How long to really wait for `wait` of daemon time.
pub fn real_duration(wait: Duration) -> Duration {
    match CLOCK.get() {
        Some(clock) => wait.div_f64(clock.speed),
        None => wait,
    }
}

/// Reads `STORYLINE_TEST_CLOCK` and, when it is set, makes the virtual clock the
/// daemon's clock for the life of the process. Returns it, for the caller's warning.
pub fn install_from_env() -> Result<Option<TestClock>> {
    let Some(value) = std::env::var_os(ENV_VAR) else {
        return Ok(None);
    };
    let value = value
        .into_string()
        .map_err(|_| anyhow!("{ENV_VAR} is not valid UTF-8"))?;
    let clock = parse(&value).with_context(|| format!("{ENV_VAR}={value:?}"))?;
    let installed = *CLOCK.get_or_init(|| clock);
    Ok(Some(installed))
}

/// Parses `<virtual start RFC 3339>,<real anchor unix ms>,<speed>`.
pub fn parse(value: &str) -> Result<TestClock> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [start, anchor, speed] = parts.as_slice() else {
        return Err(anyhow!(
            "expected \"<virtual start RFC 3339>,<real anchor unix ms>,<speed>\""
        ));
    };
    let virtual_start = DateTime::parse_from_rfc3339(start)
        .map_err(|e| anyhow!("the virtual start {start:?} is not RFC 3339: {e}"))?
        .with_timezone(&Utc);
    let anchor_unix_ms: i64 = anchor
        .parse()
        .map_err(|_| anyhow!("the real anchor {anchor:?} is not a number of milliseconds"))?;
    let speed: f64 = speed
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 1_000_000.0)
        .ok_or_else(|| anyhow!("the speed {speed:?} is not a number in (0, 1000000]"))?;
    Ok(TestClock {
        virtual_start,
        anchor_unix_ms,
        speed,
    })
}

impl TestClock {
    /// The virtual time when the wall clock shows `real`.
    pub fn at(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed_ms = (real.timestamp_millis() - self.anchor_unix_ms) as f64 * self.speed;
        let elapsed = chrono::Duration::milliseconds(elapsed_ms as i64);
        self.virtual_start
            .checked_add_signed(elapsed)
            .unwrap_or(self.virtual_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn virtual_time_runs_at_speed_from_the_anchor() {
        let clock = parse("2030-01-01T00:00:00Z,1700000000000,1440").unwrap();
        let anchor = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        assert_eq!(clock.at(anchor), at("2030-01-01T00:00:00Z"));
        // One real minute is one virtual day, whenever the process started.
        assert_eq!(
            clock.at(anchor + chrono::Duration::seconds(60)),
            at("2030-01-02T00:00:00Z")
        );
        assert_eq!(
            clock.at(anchor - chrono::Duration::seconds(1)),
            at("2029-12-31T23:36:00Z")
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (value, reason) in [
            ("", "expected"),
            ("2030-01-01T00:00:00Z,1700000000000", "expected"),
            ("yesterday,1700000000000,10", "not RFC 3339"),
            (
                "2030-01-01T00:00:00Z,soon,10",
                "not a number of milliseconds",
            ),
            ("2030-01-01T00:00:00Z,1700000000000,0", "speed"),
            ("2030-01-01T00:00:00Z,1700000000000,-3", "speed"),
            ("2030-01-01T00:00:00Z,1700000000000,NaN", "speed"),
        ] {
            let error = parse(value).unwrap_err().to_string();
            assert!(error.contains(reason), "{value:?}: {error}");
        }
    }

    #[test]
    fn without_the_variable_waits_are_real() {
        // No test in this binary installs a clock, so this is the production path.
        assert!(CLOCK.get().is_none());
        assert_eq!(
            real_duration(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let before = Utc::now();
        let now = now();
        assert!(now >= before && now <= Utc::now());
    }
}
