//! The daily summary, pure: which local day's summary is due at `now` (once per
//! local date, at the chat's hour, DST-correct; late after downtime; never for
//! a day before the chat existed), and the figures it tells of. The figures
//! come from `db::summary`, the words from `ui::daily_summary_text`.

use crate::zone::Tz;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::domain::rows::TokenHealth;
use crate::domain::schedule::local_hour_instant;

/// A summary sent later than this after its hour says it is late (the
/// scheduler runs at least once a minute, so only downtime makes one late).
pub const LATE_AFTER: Duration = Duration::minutes(15);

/// The summary to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The chat's local date it is for (sent on).
    pub local_date: NaiveDate,
    /// The local day it tells of: the day before.
    pub covers: NaiveDate,
    /// When it was due: `hour`:00 local on `local_date`.
    pub due_at: DateTime<Utc>,
    /// Storyline was not running at `due_at`.
    pub late: bool,
}

/// The summary due at `now`, if one is: the latest local date whose `hour` has
/// come (today's, or yesterday's before today's hour), unless a summary for that
/// date or a later one was sent (`last_sent`), or the day it tells of is before
/// the chat existed. A summary missed on an earlier day is not sent any more:
/// after downtime only the latest one goes out, once.
pub fn due(
    now: DateTime<Utc>,
    tz: Tz,
    hour: u32,
    chat_created: DateTime<Utc>,
    last_sent: Option<NaiveDate>,
) -> Option<Due> {
    let today = now.with_timezone(&tz).date_naive();
    let (local_date, due_at) = [today, today.pred_opt()?]
        .into_iter()
        .map(|date| (date, local_hour_instant(tz, date, hour)))
        .find(|(_, at)| *at <= now)?;
    let covers = local_date.pred_opt()?;
    if last_sent.is_some_and(|sent| sent >= local_date)
        || covers < chat_created.with_timezone(&tz).date_naive()
    {
        return None;
    }
    Some(Due {
        local_date,
        covers,
        due_at,
        late: now - due_at > LATE_AFTER,
    })
}

/// What became of one category's slots on the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryDay {
    /// The category, or `None` for slots that found nothing to pick.
    pub category: Option<String>,
    pub posted: u32,
    pub skipped: u32,
    pub rejected: u32,
    pub failed: u32,
    pub missed: u32,
    /// Still with people, on their way, or not yet due.
    pub open: u32,
}

impl CategoryDay {
    pub fn total(&self) -> u32 {
        self.posted + self.skipped + self.rejected + self.failed + self.missed + self.open
    }
}

/// The day's publishes through the Instagram API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Publishing {
    /// Published on Instagram.
    pub by_api: u32,
    /// Went through the motions in dry run (nothing reached Instagram).
    pub dry_run: u32,
    /// Not published; the story went to the chat with its buttons instead.
    pub fell_back: u32,
    /// Neither published nor handed to people.
    pub failed: u32,
    /// Still on the way, or no answer from Instagram.
    pub pending_or_unknown: u32,
}

impl Publishing {
    pub fn any(&self) -> bool {
        self.by_api + self.dry_run + self.fell_back + self.failed + self.pending_or_unknown > 0
    }
}

/// Everything a summary says.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub covers: NaiveDate,
    /// Sent late: the hour it was due at.
    pub late_hour: Option<u32>,
    /// Per category, categories by name, "nothing picked" last.
    pub categories: Vec<CategoryDay>,
    pub publishing: Publishing,
    /// Items the chat could post now, and its posts a day.
    pub eligible: usize,
    pub posts_per_day: u32,
    /// The account's handle ("@brand") and its token's health, if the chat has one.
    pub token: Option<(String, TokenHealth)>,
    pub paused: bool,
    /// The next planned slots.
    pub next_slots: Vec<DateTime<Utc>>,
    /// Stories in the chat that no one decided on yet (any day).
    pub waiting_for_decision: u32,
    /// Publishes whose outcome Instagram never told (any day).
    pub unknown_outcomes: u32,
    /// The insights of the day's stories so far, per category (`domain::insights`).
    pub results: Option<crate::domain::insights::InsightsReport>,
}

/// Whole days of stories the eligible items cover at the chat's pace.
pub fn days_of_stories(eligible: usize, posts_per_day: u32) -> usize {
    eligible / (posts_per_day.max(1) as usize)
}

/// A token with this many days left or fewer is worth a warning.
pub const TOKEN_WARNING_DAYS: i64 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    struct Case {
        what: &'static str,
        now: &'static str,
        tz: Tz,
        hour: u32,
        created: &'static str,
        last_sent: Option<&'static str>,
        /// (for local date, due at, late)
        expected: Option<(&'static str, &'static str, bool)>,
    }

    #[test]
    fn one_summary_per_local_day_at_its_hour() {
        let berlin = "Europe/Berlin".parse::<crate::zone::Tz>().unwrap();
        let ny = "America/New_York".parse::<crate::zone::Tz>().unwrap();
        let old = "2026-01-01T00:00:00Z";
        let cases = [
            Case {
                what: "before the hour: yesterday's was sent",
                now: "2026-06-10T06:59:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-09"),
                expected: None,
            },
            Case {
                what: "at the hour (09:00 CEST is 07:00 UTC)",
                now: "2026-06-10T07:00:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-09"),
                expected: Some(("2026-06-10", "2026-06-10T07:00:00Z", false)),
            },
            Case {
                what: "sent already today",
                now: "2026-06-10T20:00:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-10"),
                expected: None,
            },
            Case {
                what: "a later date sent (the zone moved west): never one for an earlier day",
                now: "2026-06-10T20:00:00Z",
                tz: ny,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-11"),
                expected: None,
            },
            Case {
                what: "the Pi was off over the hour: late",
                now: "2026-06-10T11:30:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-09"),
                expected: Some(("2026-06-10", "2026-06-10T07:00:00Z", true)),
            },
            Case {
                what: "off for days, started before today's hour: only yesterday's, late",
                now: "2026-06-10T05:00:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-06-05"),
                expected: Some(("2026-06-09", "2026-06-09T07:00:00Z", true)),
            },
            Case {
                what: "within the grace minutes: on time",
                now: "2026-06-10T07:14:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: None,
                expected: Some(("2026-06-10", "2026-06-10T07:00:00Z", false)),
            },
            Case {
                what: "spring forward: 09:00 CEST is 07:00 UTC, the day before it was 08:00",
                now: "2026-03-29T07:00:00Z",
                tz: berlin,
                hour: 9,
                created: old,
                last_sent: Some("2026-03-28"),
                expected: Some(("2026-03-29", "2026-03-29T07:00:00Z", false)),
            },
            Case {
                what: "spring forward: 02:00 does not exist, 03:00 CEST is the hour",
                now: "2026-03-29T01:00:00Z",
                tz: berlin,
                hour: 2,
                created: old,
                last_sent: Some("2026-03-28"),
                expected: Some(("2026-03-29", "2026-03-29T01:00:00Z", false)),
            },
            Case {
                what: "fall back: 02:00 comes twice, the first one counts",
                now: "2026-10-25T00:00:00Z",
                tz: berlin,
                hour: 2,
                created: old,
                last_sent: Some("2026-10-24"),
                expected: Some(("2026-10-25", "2026-10-25T00:00:00Z", false)),
            },
            Case {
                what: "fall back: the second 02:00 sends nothing again",
                now: "2026-10-25T01:00:00Z",
                tz: berlin,
                hour: 2,
                created: old,
                last_sent: Some("2026-10-25"),
                expected: None,
            },
            Case {
                what: "the chat was created today: yesterday is before it existed",
                now: "2026-06-10T07:00:00Z",
                tz: berlin,
                hour: 9,
                created: "2026-06-10T06:00:00Z",
                last_sent: None,
                expected: None,
            },
            Case {
                what: "created yesterday evening: the summary tells of that evening",
                now: "2026-06-10T07:00:00Z",
                tz: berlin,
                hour: 9,
                created: "2026-06-09T20:00:00Z",
                last_sent: None,
                expected: Some(("2026-06-10", "2026-06-10T07:00:00Z", false)),
            },
            Case {
                what: "created 23:30 local, which is the day before in UTC: local dates count",
                now: "2026-06-10T07:00:00Z",
                tz: ny,
                hour: 3,
                created: "2026-06-10T03:30:00Z",
                last_sent: None,
                expected: Some(("2026-06-10", "2026-06-10T07:00:00Z", false)),
            },
        ];
        for case in cases {
            let got = due(
                utc(case.now),
                case.tz,
                case.hour,
                utc(case.created),
                case.last_sent.map(date),
            );
            let expected = case.expected.map(|(d, at, late)| Due {
                local_date: date(d),
                covers: date(d).pred_opt().unwrap(),
                due_at: utc(at),
                late,
            });
            assert_eq!(got, expected, "{}", case.what);
        }
    }

    #[test]
    fn days_of_stories_round_down() {
        assert_eq!(days_of_stories(20, 3), 6);
        assert_eq!(days_of_stories(2, 3), 0);
        assert_eq!(days_of_stories(0, 0), 0);
    }
}
