//! When a chat's stories go out: the daily posting window in the chat's time zone and
//! the slot times inside it. Pure: the caller passes `now` and a seed, so the daemon,
//! `storyline queue` and the tests all compute the same schedule from the same inputs.
//!
//! Everything is worked out in local wall-clock hours and then turned into UTC
//! instants, because "9 to 21 in Berlin" means different UTC hours in summer and
//! winter, and on the two DST days a window is an hour shorter or longer.

use crate::zone::Tz;
use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};

use crate::domain::picker::Rng;

/// A jitter larger than this would make "around 14:00" noticeably not 14:00.
const MAX_JITTER_SECONDS: i64 = 10 * 60;

/// One day's posting window, `start` inclusive and `end` exclusive. `date` is the local
/// date the window starts on, which is also the date a window wrapping past midnight
/// belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The window that starts on local `date`. An end hour after the start hour ends the
/// same day, an earlier one ends the next day, and an equal one means the whole day.
/// DST-correct: a start/end hour that does not exist that day (spring-forward gap)
/// moves to the first instant after the gap; an ambiguous one (fall-back) takes the
/// earlier instant. The duration is real elapsed time, so a whole-day window lasts
/// 23 h or 25 h on DST days.
pub fn window_for(date: NaiveDate, tz: Tz, start_hour: u32, end_hour: u32) -> Window {
    // Settings validate hours; clamping keeps a corrupt row from crashing the daemon.
    let start_hour = start_hour.min(23);
    let end_hour = end_hour.min(23);
    let end_date = if end_hour > start_hour {
        date
    } else {
        date.succ_opt().unwrap_or(date)
    };
    Window {
        date,
        start: local_hour_instant(tz, date, start_hour),
        end: local_hour_instant(tz, end_date, end_hour),
    }
}

/// Windows that are not over at `now` and start before `now + horizon`, in order. This
/// includes a window that wrapped past midnight, started yesterday and is still open.
pub fn upcoming_windows(
    now: DateTime<Utc>,
    tz: Tz,
    start_hour: u32,
    end_hour: u32,
    horizon: Duration,
) -> Vec<Window> {
    let limit = now
        .checked_add_signed(horizon)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    // A window lasts at most about a day, so one that started two local days ago is
    // always over; starting there never misses a window that is still open.
    let today = now.with_timezone(&tz).date_naive();
    let mut date = today.pred_opt().and_then(|d| d.pred_opt()).unwrap_or(today);
    let mut windows = Vec::new();
    loop {
        let window = window_for(date, tz, start_hour, end_hour);
        // Window starts grow with the date, so the first one past the limit ends the search.
        if window.start >= limit {
            break;
        }
        if window.end > now {
            windows.push(window);
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    windows
}

/// The slot times of one window: `posts` times spread evenly (slot i near
/// `start + (i + 0.5) * len / posts`), each moved by a random jitter of up to
/// ±min(spacing / 4, 10 min) drawn from `seed`, truncated to the whole minute, strictly
/// increasing, never two in the same minute, all inside `[start, end)`. If the window
/// has fewer minutes than `posts` (possible only on odd DST days, such as 2→3 on a
/// spring-forward day), the slots still go one minute apart from the start, past the
/// end if need be, because a chat asked for that many stories. Same seed, same slots.
pub fn slots(window: &Window, posts: u32, seed: u64) -> Vec<DateTime<Utc>> {
    if posts == 0 {
        return Vec::new();
    }
    let posts = i64::from(posts);
    let start = window.start.timestamp();
    let end = window.end.timestamp();
    // Minute m is usable when m * 60 lies in [start, end).
    let first_minute = start.div_euclid(60) + i64::from(start.rem_euclid(60) != 0);
    let last_minute = (end - 1).div_euclid(60);
    let minutes: Vec<i64> = if last_minute - first_minute + 1 < posts {
        (0..posts).map(|i| first_minute + i).collect()
    } else {
        let len = end - start;
        let max_jitter = (len / (4 * posts)).min(MAX_JITTER_SECONDS);
        let mut rng = Rng::new(seed);
        let mut previous = i64::MIN;
        (0..posts)
            .map(|i| {
                let ideal = start + (2 * i + 1) * len / (2 * posts);
                let jitter = rng.below(2 * max_jitter as u64 + 1) as i64 - max_jitter;
                let wanted = (ideal + jitter).div_euclid(60);
                // Leave room for the slots still to come, so pushing one slot past a
                // collision can never push a later one out of the window.
                let minute = wanted
                    .max(previous.saturating_add(1))
                    .max(first_minute + i)
                    .min(last_minute - (posts - 1 - i));
                previous = minute;
                minute
            })
            .collect()
    };
    minutes
        .into_iter()
        .map(|minute| DateTime::from_timestamp(minute * 60, 0).unwrap_or(window.start))
        .collect()
}

/// The instant a local day ends: the first moment of the next local date (its
/// midnight, or the first minute after a DST gap that skips it).
pub fn local_midnight_after(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    match date.succ_opt() {
        Some(next) => local_hour_instant(tz, next, 0),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

/// The instant the wall clock in `tz` shows `hour`:00 on `date`: the earlier one when
/// the clock shows it twice, the end of the gap when it skips it.
pub fn local_hour_instant(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
    let wanted = NaiveDateTime::new(
        date,
        NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN),
    );
    // The first wall-clock minute after a gap is the instant the clocks jumped. Gaps
    // are an hour almost everywhere, but Samoa skipped a whole day in 2011.
    let mut local = wanted;
    for _ in 0..=2 * 24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(instant) => return instant.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    // Not reached with real zone data; the offset of the day before is close enough.
    let offset = tz
        .offset_from_utc_datetime(&(wanted - Duration::days(1)))
        .fix();
    wanted.and_utc() - Duration::seconds(i64::from(offset.local_minus_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    fn new_york() -> crate::zone::Tz {
        "America/New_York".parse().unwrap()
    }
    fn berlin() -> crate::zone::Tz {
        "Europe/Berlin".parse().unwrap()
    }
    use expect_test::expect;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// A UTC instant written as "2026-03-29 01:00".
    fn utc(text: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    struct WindowCase {
        name: &'static str,
        tz: Tz,
        date: &'static str,
        hours: (u32, u32),
        start: &'static str,
        end: &'static str,
        length_hours: i64,
    }

    fn check_window(case: &WindowCase) {
        let window = window_for(date(case.date), case.tz, case.hours.0, case.hours.1);
        let got = (
            window.start,
            window.end,
            (window.end - window.start).num_hours(),
        );
        let want = (utc(case.start), utc(case.end), case.length_hours);
        assert_eq!(got, want, "case {:?}", case.name);
        assert_eq!(window.date, date(case.date), "case {:?}", case.name);
        assert_eq!(
            (window.end - window.start).num_seconds() % 3600,
            0,
            "case {:?}",
            case.name
        );
    }

    #[test]
    fn windows() {
        let cases = [
            WindowCase {
                name: "summer day in Berlin",
                tz: berlin(),
                date: "2026-06-01",
                hours: (9, 21),
                start: "2026-06-01 07:00",
                end: "2026-06-01 19:00",
                length_hours: 12,
            },
            WindowCase {
                name: "winter day in Berlin",
                tz: berlin(),
                date: "2026-01-15",
                hours: (9, 21),
                start: "2026-01-15 08:00",
                end: "2026-01-15 20:00",
                length_hours: 12,
            },
            WindowCase {
                name: "14→2 wraps into the next day",
                tz: berlin(),
                date: "2026-06-01",
                hours: (14, 2),
                start: "2026-06-01 12:00",
                end: "2026-06-02 00:00",
                length_hours: 12,
            },
            WindowCase {
                name: "start == end is the whole day from the start hour",
                tz: berlin(),
                date: "2026-06-01",
                hours: (8, 8),
                start: "2026-06-01 06:00",
                end: "2026-06-02 06:00",
                length_hours: 24,
            },
            WindowCase {
                name: "23→0 is one hour, ending at midnight",
                tz: new_york(),
                date: "2026-06-01",
                hours: (23, 0),
                start: "2026-06-02 03:00",
                end: "2026-06-02 04:00",
                length_hours: 1,
            },
            // Berlin, spring forward 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
            WindowCase {
                name: "Berlin spring-forward whole day is 23 h",
                tz: berlin(),
                date: "2026-03-29",
                hours: (0, 0),
                start: "2026-03-28 23:00",
                end: "2026-03-29 22:00",
                length_hours: 23,
            },
            WindowCase {
                name: "Berlin start hour in the gap moves to its end",
                tz: berlin(),
                date: "2026-03-29",
                hours: (2, 10),
                start: "2026-03-29 01:00",
                end: "2026-03-29 08:00",
                length_hours: 7,
            },
            WindowCase {
                name: "Berlin whole day starting in the gap",
                tz: berlin(),
                date: "2026-03-29",
                hours: (2, 2),
                start: "2026-03-29 01:00",
                end: "2026-03-30 00:00",
                length_hours: 23,
            },
            WindowCase {
                name: "Berlin window across the gap loses an hour",
                tz: berlin(),
                date: "2026-03-29",
                hours: (1, 4),
                start: "2026-03-29 00:00",
                end: "2026-03-29 02:00",
                length_hours: 2,
            },
            WindowCase {
                name: "Berlin 2→3 on spring-forward day is empty",
                tz: berlin(),
                date: "2026-03-29",
                hours: (2, 3),
                start: "2026-03-29 01:00",
                end: "2026-03-29 01:00",
                length_hours: 0,
            },
            WindowCase {
                name: "Berlin wrapped window ending in the gap",
                tz: berlin(),
                date: "2026-03-28",
                hours: (22, 2),
                start: "2026-03-28 21:00",
                end: "2026-03-29 01:00",
                length_hours: 4,
            },
            // Berlin, fall back 2026-10-25: 03:00 CEST returns to 02:00 CET (01:00 UTC).
            WindowCase {
                name: "Berlin fall-back whole day is 25 h",
                tz: berlin(),
                date: "2026-10-25",
                hours: (0, 0),
                start: "2026-10-24 22:00",
                end: "2026-10-25 23:00",
                length_hours: 25,
            },
            WindowCase {
                name: "Berlin ambiguous start takes the earlier 02:00",
                tz: berlin(),
                date: "2026-10-25",
                hours: (2, 5),
                start: "2026-10-25 00:00",
                end: "2026-10-25 04:00",
                length_hours: 4,
            },
            WindowCase {
                name: "Berlin wrapped window ending at the ambiguous hour",
                tz: berlin(),
                date: "2026-10-24",
                hours: (22, 2),
                start: "2026-10-24 20:00",
                end: "2026-10-25 00:00",
                length_hours: 4,
            },
            // New York, spring forward 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
            WindowCase {
                name: "New York spring-forward whole day is 23 h",
                tz: new_york(),
                date: "2026-03-08",
                hours: (0, 0),
                start: "2026-03-08 05:00",
                end: "2026-03-09 04:00",
                length_hours: 23,
            },
            WindowCase {
                name: "New York start hour in the gap moves to its end",
                tz: new_york(),
                date: "2026-03-08",
                hours: (2, 12),
                start: "2026-03-08 07:00",
                end: "2026-03-08 16:00",
                length_hours: 9,
            },
            WindowCase {
                name: "New York wrapped window ending in the gap",
                tz: new_york(),
                date: "2026-03-07",
                hours: (23, 2),
                start: "2026-03-08 04:00",
                end: "2026-03-08 07:00",
                length_hours: 3,
            },
            // New York, fall back 2026-11-01: 02:00 EDT returns to 01:00 EST (06:00 UTC).
            WindowCase {
                name: "New York fall-back whole day is 25 h",
                tz: new_york(),
                date: "2026-11-01",
                hours: (0, 0),
                start: "2026-11-01 04:00",
                end: "2026-11-02 05:00",
                length_hours: 25,
            },
            WindowCase {
                name: "New York ambiguous start takes the earlier 01:00",
                tz: new_york(),
                date: "2026-11-01",
                hours: (1, 9),
                start: "2026-11-01 05:00",
                end: "2026-11-01 14:00",
                length_hours: 9,
            },
            WindowCase {
                name: "New York wrapped window across fall-back",
                tz: new_york(),
                date: "2026-10-31",
                hours: (20, 1),
                start: "2026-11-01 00:00",
                end: "2026-11-01 05:00",
                length_hours: 5,
            },
        ];
        for case in &cases {
            check_window(case);
        }
    }

    struct UpcomingCase {
        name: &'static str,
        now: &'static str,
        horizon_hours: i64,
        dates: &'static [&'static str],
    }

    /// All cases use a 14→2 Berlin window in June: 12:00 to 00:00 UTC.
    fn check_upcoming(case: &UpcomingCase) {
        let now = utc(case.now);
        let windows = upcoming_windows(now, berlin(), 14, 2, Duration::hours(case.horizon_hours));
        let got: Vec<String> = windows.iter().map(|w| w.date.to_string()).collect();
        assert_eq!(got, case.dates, "case {:?}", case.name);
        for window in &windows {
            assert_eq!(
                *window,
                window_for(window.date, berlin(), 14, 2),
                "case {:?}",
                case.name
            );
        }
    }

    #[test]
    fn upcoming() {
        let cases = [
            UpcomingCase {
                name: "before today's window",
                now: "2026-06-01 10:00",
                horizon_hours: 24,
                dates: &["2026-06-01"],
            },
            UpcomingCase {
                name: "inside today's window",
                now: "2026-06-01 15:00",
                horizon_hours: 1,
                dates: &["2026-06-01"],
            },
            UpcomingCase {
                name: "after midnight inside yesterday's wrapped window",
                now: "2026-06-01 23:30",
                horizon_hours: 24,
                dates: &["2026-06-01", "2026-06-02"],
            },
            UpcomingCase {
                name: "at the exact end of a window it is over",
                now: "2026-06-02 00:00",
                horizon_hours: 24,
                dates: &["2026-06-02"],
            },
            UpcomingCase {
                name: "after the window, horizon short of the next start",
                now: "2026-06-02 03:00",
                horizon_hours: 2,
                dates: &[],
            },
            UpcomingCase {
                name: "a horizon ending exactly at a start excludes it",
                now: "2026-06-02 03:00",
                horizon_hours: 9,
                dates: &[],
            },
            UpcomingCase {
                name: "three days ahead",
                now: "2026-06-02 03:00",
                horizon_hours: 72,
                dates: &["2026-06-02", "2026-06-03", "2026-06-04"],
            },
        ];
        for case in &cases {
            check_upcoming(case);
        }
    }

    /// The promises `slots` makes for every input.
    fn check_slot_invariants(window: &Window, posts: u32, slots: &[DateTime<Utc>], what: &str) {
        assert_eq!(slots.len(), posts as usize, "{what}: count");
        for pair in slots.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::minutes(1),
                "{what}: {pair:?} not a minute apart"
            );
        }
        for slot in slots {
            assert_eq!(
                slot.timestamp() % 60,
                0,
                "{what}: {slot} not a whole minute"
            );
        }
        let minutes_in_window = (window.end - window.start).num_minutes();
        if minutes_in_window >= i64::from(posts) {
            for slot in slots {
                assert!(
                    window.start <= *slot && *slot < window.end,
                    "{what}: {slot} outside {window:?}"
                );
            }
        } else if let Some(first) = slots.first() {
            assert_eq!(
                *first, window.start,
                "{what}: short window starts at its start"
            );
        }
        // With at least two minutes between ideal times, jitter alone moves a slot, so
        // each stays within the jitter (plus the truncated seconds) of its ideal time.
        let len = (window.end - window.start).num_seconds();
        let spacing = len / i64::from(posts.max(1));
        if spacing >= 120 {
            let max_jitter = (spacing / 4).min(MAX_JITTER_SECONDS);
            for (i, slot) in slots.iter().enumerate() {
                let ideal =
                    window.start.timestamp() + (2 * i as i64 + 1) * len / (2 * i64::from(posts));
                let off = slot.timestamp() - ideal;
                assert!(
                    -max_jitter - 60 < off && off <= max_jitter,
                    "{what}: slot {i} is {off} s from its ideal time"
                );
            }
        }
    }

    struct SlotCase {
        name: &'static str,
        tz: Tz,
        date: &'static str,
        hours: (u32, u32),
        posts: u32,
        seed: u64,
        /// The first and last slot in UTC, when the case pins them down.
        first_last: Option<(&'static str, &'static str)>,
    }

    fn check_slots(case: &SlotCase) {
        let window = window_for(date(case.date), case.tz, case.hours.0, case.hours.1);
        let got = slots(&window, case.posts, case.seed);
        check_slot_invariants(&window, case.posts, &got, case.name);
        assert_eq!(
            got,
            slots(&window, case.posts, case.seed),
            "case {:?}",
            case.name
        );
        if let Some((first, last)) = case.first_last {
            let got_first_last = (got[0], got[got.len() - 1]);
            assert_eq!(
                got_first_last,
                (utc(first), utc(last)),
                "case {:?}",
                case.name
            );
        }
    }

    #[test]
    fn slot_cases() {
        let cases = [
            SlotCase {
                name: "one post a day lands near the middle",
                tz: berlin(),
                date: "2026-06-01",
                hours: (9, 21),
                posts: 1,
                seed: 1,
                first_last: None,
            },
            SlotCase {
                name: "fifty posts a day",
                tz: berlin(),
                date: "2026-06-01",
                hours: (9, 21),
                posts: 50,
                seed: 2,
                first_last: None,
            },
            SlotCase {
                name: "wrapped window",
                tz: berlin(),
                date: "2026-06-01",
                hours: (14, 2),
                posts: 7,
                seed: 3,
                first_last: None,
            },
            SlotCase {
                name: "whole day",
                tz: new_york(),
                date: "2026-06-01",
                hours: (6, 6),
                posts: 24,
                seed: 4,
                first_last: None,
            },
            SlotCase {
                name: "fifty posts in one hour, no two in a minute",
                tz: berlin(),
                date: "2026-06-01",
                hours: (12, 13),
                posts: 50,
                seed: 5,
                first_last: None,
            },
            SlotCase {
                name: "sixty posts fill every minute of one hour",
                tz: berlin(),
                date: "2026-06-01",
                hours: (12, 13),
                posts: 60,
                seed: 6,
                first_last: Some(("2026-06-01 10:00", "2026-06-01 10:59")),
            },
            SlotCase {
                name: "23 h whole day on berlin()'s spring-forward day",
                tz: berlin(),
                date: "2026-03-29",
                hours: (0, 0),
                posts: 50,
                seed: 7,
                first_last: None,
            },
            SlotCase {
                name: "25 h whole day on New York's fall-back day",
                tz: new_york(),
                date: "2026-11-01",
                hours: (0, 0),
                posts: 50,
                seed: 8,
                first_last: None,
            },
            SlotCase {
                name: "start hour in New York's gap",
                tz: new_york(),
                date: "2026-03-08",
                hours: (2, 4),
                posts: 50,
                seed: 9,
                first_last: None,
            },
            SlotCase {
                name:
                    "empty 2→3 window on berlin()'s spring-forward day: a minute apart from its start",
                tz: berlin(),
                date: "2026-03-29",
                hours: (2, 3),
                posts: 3,
                seed: 10,
                first_last: Some(("2026-03-29 01:00", "2026-03-29 01:02")),
            },
        ];
        for case in &cases {
            check_slots(case);
        }
    }

    #[test]
    fn same_seed_same_slots_other_seed_other_slots() {
        let window = window_for(date("2026-06-01"), berlin(), 9, 21);
        assert_eq!(slots(&window, 10, 42), slots(&window, 10, 42));
        assert_ne!(slots(&window, 10, 42), slots(&window, 10, 43));
    }

    #[test]
    fn slots_read_like_a_day() {
        let window = window_for(date("2026-06-01"), berlin(), 9, 21);
        let local: Vec<String> = slots(&window, 6, 42)
            .iter()
            .map(|slot| slot.with_timezone(&berlin()).format("%H:%M").to_string())
            .collect();
        expect!["10:04 11:53 13:55 15:56 17:50 20:07"].assert_eq(&local.join(" "));
    }

    #[test]
    fn invariants_hold_for_many_seeds_zones_and_hours() {
        let zones = [
            berlin(),
            new_york(),
            crate::zone::Tz::UTC,
            "Asia/Kolkata".parse::<crate::zone::Tz>().unwrap(),
            "Asia/Kathmandu".parse::<crate::zone::Tz>().unwrap(),
            "Australia/Lord_Howe".parse::<crate::zone::Tz>().unwrap(),
            "Pacific/Auckland".parse::<crate::zone::Tz>().unwrap(),
            "Pacific/Chatham".parse::<crate::zone::Tz>().unwrap(),
            "America/Santiago".parse::<crate::zone::Tz>().unwrap(),
            "Pacific/Apia".parse::<crate::zone::Tz>().unwrap(),
        ];
        let dates = [
            "2026-03-08",
            "2026-03-29",
            "2026-04-05",
            "2026-06-01",
            "2026-09-27",
            "2026-10-04",
            "2026-10-25",
            "2026-11-01",
            "2011-12-29",
        ];
        let mut rng = Rng::new(2026);
        for round in 0..3000 {
            let tz = zones[rng.below(zones.len() as u64) as usize];
            let day = date(dates[rng.below(dates.len() as u64) as usize]);
            let start_hour = rng.below(24) as u32;
            let end_hour = rng.below(24) as u32;
            let posts = 1 + rng.below(50) as u32;
            let seed = rng.next_u64();
            let window = window_for(day, tz, start_hour, end_hour);
            assert!(window.start <= window.end, "round {round}: {window:?}");
            assert!(
                window.end - window.start <= Duration::hours(26),
                "round {round}: {window:?}"
            );
            let what = format!(
                "round {round}: {tz} {day} {start_hour}→{end_hour}, {posts} posts, seed {seed}"
            );
            check_slot_invariants(&window, posts, &slots(&window, posts, seed), &what);
        }
    }
}
