//! Story insights, pure: the numbers Instagram gives for one story
//! (`StoryMetrics`) and how many viewers saw it to the end (`completion`), and
//! a period's results per category with its best and worst story (`report`).
//! The numbers come from the insights the publisher stored; the words are
//! `ui::insights`'s, the chart `media::chart`'s, the tuner `tune`'s.
//!
//! Instagram may withhold any number (error #10, "not enough viewers", or an
//! empty answer), so each is an `Option`: a story stored without numbers is
//! counted as a story, never as a story with zero reach.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// What Instagram says of one story. `None`: not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoryMetrics {
    pub views: Option<u64>,
    pub reach: Option<u64>,
    pub replies: Option<u64>,
    pub shares: Option<u64>,
    pub total_interactions: Option<u64>,
    pub follows: Option<u64>,
    pub profile_visits: Option<u64>,
    /// The `navigation` breakdown by `story_navigation_action_type`.
    pub tap_forward: Option<u64>,
    pub tap_back: Option<u64>,
    pub tap_exit: Option<u64>,
    pub swipe_forward: Option<u64>,
}

impl StoryMetrics {
    /// Whether Instagram gave any number at all.
    pub fn has_numbers(&self) -> bool {
        [
            self.views,
            self.reach,
            self.replies,
            self.shares,
            self.total_interactions,
            self.follows,
            self.profile_visits,
            self.tap_forward,
            self.tap_back,
            self.tap_exit,
            self.swipe_forward,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// The share of views that did not leave the story early: 1 − (exits +
    /// forward swipes) / views, within 0..=1. `None` without views, or when
    /// the navigation breakdown is missing altogether (which would otherwise
    /// read as everyone watching to the end); one missing action counts as 0.
    pub fn completion(&self) -> Option<f64> {
        let views = self.views.filter(|views| *views > 0)?;
        if self.tap_exit.is_none() && self.swipe_forward.is_none() {
            return None;
        }
        let left = self
            .tap_exit
            .unwrap_or(0)
            .saturating_add(self.swipe_forward.unwrap_or(0));
        Some((1.0 - left as f64 / views as f64).clamp(0.0, 1.0))
    }
}

/// One story of the period as the report takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryResult {
    /// The caller's id of the story (a queue row), carried to `NotableStory`.
    pub id: i64,
    /// What the user knows the story by, such as its file name.
    pub label: String,
    pub category: String,
    pub posted_at: DateTime<Utc>,
    pub metrics: StoryMetrics,
}

/// A period's results of one category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryResults {
    pub category: String,
    pub stories: u32,
    /// Stories Instagram gave any number for.
    pub with_numbers: u32,
    /// Over the stories with a reach; `None` when none has one.
    pub average_reach: Option<f64>,
    /// Over the stories with a completion, 0..=1.
    pub average_completion: Option<f64>,
    pub replies: u64,
    pub shares: u64,
    pub follows: u64,
}

impl CategoryResults {
    fn new(category: &str) -> CategoryResults {
        CategoryResults {
            category: category.to_string(),
            stories: 0,
            with_numbers: 0,
            average_reach: None,
            average_completion: None,
            replies: 0,
            shares: 0,
            follows: 0,
        }
    }
}

/// The best or the worst story of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotableStory {
    pub id: i64,
    pub label: String,
    pub category: String,
    pub posted_at: DateTime<Utc>,
    pub reach: u64,
    pub completion: Option<f64>,
}

/// Results per category over `since..until`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InsightsReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub stories: u32,
    pub with_numbers: u32,
    /// By category name.
    pub categories: Vec<CategoryResults>,
    /// The story with the highest reach; `None` when no story has a reach.
    pub best: Option<NotableStory>,
    /// The story with the lowest reach, never the best one: `None` unless
    /// two stories have a reach.
    pub worst: Option<NotableStory>,
}

impl InsightsReport {
    /// Whether any story of the period has numbers (else there is nothing to
    /// chart).
    pub fn has_numbers(&self) -> bool {
        self.with_numbers > 0
    }

    /// The length of the period in whole days, rounded.
    pub fn days(&self) -> i64 {
        ((self.until - self.since).num_hours() + 12).div_euclid(24)
    }
}

/// The days `/insights` shows when not told, and the most it shows.
pub const DEFAULT_DAYS: u32 = 7;
pub const MAX_DAYS: u32 = 365;

/// The period of the last `days` days up to `now`, as `report` takes it.
pub fn last_days(now: DateTime<Utc>, days: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let since = TimeDelta::try_days(i64::from(days))
        .and_then(|length| now.checked_sub_signed(length))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    (since, now)
}

/// The period of `/insights 30` or `storyline insights --days 30`: nothing is
/// `DEFAULT_DAYS`, else a whole number of days from 1 to `MAX_DAYS`. The error
/// is a sentence for the user.
pub fn parse_days(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(DEFAULT_DAYS);
    }
    text.parse::<u32>()
        .ok()
        .filter(|days| (1..=MAX_DAYS).contains(days) && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!(
                "The period is a number of days from 1 to {MAX_DAYS}, like /insights 7 or /insights 30."
            )
        })
}

/// The results of the stories posted in `since..until` (the end left out),
/// per category by name, with the best and worst story by reach. Ties in reach
/// go to the higher completion, then to the earlier story, then to the lower id,
/// so the same stories always give the same report.
pub fn report(
    stories: &[StoryResult],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> InsightsReport {
    #[derive(Default)]
    struct Sums {
        reach: u128,
        reach_count: u32,
        completion: f64,
        completion_count: u32,
    }
    let in_period: Vec<&StoryResult> = stories
        .iter()
        .filter(|story| since <= story.posted_at && story.posted_at < until)
        .collect();
    let mut categories: BTreeMap<&str, (CategoryResults, Sums)> = BTreeMap::new();
    for story in &in_period {
        let (results, sums) = categories
            .entry(story.category.as_str())
            .or_insert_with(|| (CategoryResults::new(&story.category), Sums::default()));
        let metrics = &story.metrics;
        results.stories += 1;
        if metrics.has_numbers() {
            results.with_numbers += 1;
        }
        if let Some(reach) = metrics.reach {
            sums.reach += u128::from(reach);
            sums.reach_count += 1;
        }
        if let Some(completion) = metrics.completion() {
            sums.completion += completion;
            sums.completion_count += 1;
        }
        results.replies = results.replies.saturating_add(metrics.replies.unwrap_or(0));
        results.shares = results.shares.saturating_add(metrics.shares.unwrap_or(0));
        results.follows = results.follows.saturating_add(metrics.follows.unwrap_or(0));
    }
    let categories: Vec<CategoryResults> = categories
        .into_values()
        .map(|(mut results, sums)| {
            results.average_reach =
                (sums.reach_count > 0).then(|| sums.reach as f64 / f64::from(sums.reach_count));
            results.average_completion = (sums.completion_count > 0)
                .then(|| sums.completion / f64::from(sums.completion_count));
            results
        })
        .collect();

    let mut ranked: Vec<(&StoryResult, u64)> = in_period
        .iter()
        .filter_map(|story| Some((*story, story.metrics.reach?)))
        .collect();
    // Best first: higher reach, higher completion, earlier, lower id.
    ranked.sort_by(|(a, a_reach), (b, b_reach)| {
        b_reach
            .cmp(a_reach)
            .then_with(|| compare_completion(b, a))
            .then_with(|| a.posted_at.cmp(&b.posted_at))
            .then_with(|| a.id.cmp(&b.id))
    });
    let best = ranked.first().map(|(story, reach)| notable(story, *reach));
    // Worst: lower reach, lower completion, earlier, lower id; never the best.
    let worst = ranked
        .iter()
        .skip(1)
        .min_by(|(a, a_reach), (b, b_reach)| {
            a_reach
                .cmp(b_reach)
                .then_with(|| compare_completion(a, b))
                .then_with(|| a.posted_at.cmp(&b.posted_at))
                .then_with(|| a.id.cmp(&b.id))
        })
        .map(|(story, reach)| notable(story, *reach));

    InsightsReport {
        since,
        until,
        stories: categories.iter().map(|c| c.stories).sum(),
        with_numbers: categories.iter().map(|c| c.with_numbers).sum(),
        categories,
        best,
        worst,
    }
}

/// Completion order; a story without one ranks below any story with one.
fn compare_completion(a: &StoryResult, b: &StoryResult) -> Ordering {
    match (a.metrics.completion(), b.metrics.completion()) {
        (Some(a), Some(b)) => a.total_cmp(&b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

fn notable(story: &StoryResult, reach: u64) -> NotableStory {
    NotableStory {
        id: story.id,
        label: story.label.clone(),
        category: story.category.clone(),
        posted_at: story.posted_at,
        reach,
        completion: story.metrics.completion(),
    }
}

/// A count as people read it: "1,234,567".
pub fn format_count(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// An average count, rounded to a whole one: "1,235".
pub fn format_average(value: f64) -> String {
    // `as` saturates: a NaN is 0 and an absurd value the largest count.
    format_count(value.round().max(0.0) as u64)
}

/// A share of 0..=1 as a whole percentage: "71 %".
pub fn format_percent(share: f64) -> String {
    format!("{} %", (share.clamp(0.0, 1.0) * 100.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Numbers as a test writes them: views, reach, exits, forward swipes.
    fn metrics(views: u64, reach: u64, exits: u64, swipes: u64) -> StoryMetrics {
        StoryMetrics {
            views: Some(views),
            reach: Some(reach),
            tap_exit: Some(exits),
            swipe_forward: Some(swipes),
            ..StoryMetrics::default()
        }
    }

    fn story(id: i64, category: &str, posted_at: &str, metrics: StoryMetrics) -> StoryResult {
        StoryResult {
            id,
            label: format!("{category}/{id}.jpg"),
            category: category.to_string(),
            posted_at: at(posted_at),
            metrics,
        }
    }

    #[test]
    fn completion_is_the_share_that_stayed() {
        let none = StoryMetrics::default();
        let cases: &[(&str, StoryMetrics, Option<f64>)] = &[
            ("a quarter left", metrics(100, 90, 15, 10), Some(0.75)),
            ("nobody left", metrics(100, 90, 0, 0), Some(1.0)),
            ("everyone left", metrics(100, 90, 60, 40), Some(0.0)),
            (
                "more left than viewed: clamped",
                metrics(10, 9, 30, 5),
                Some(0.0),
            ),
            ("no views", metrics(0, 0, 0, 0), None),
            (
                "views withheld",
                StoryMetrics {
                    views: None,
                    ..metrics(0, 5, 1, 1)
                },
                None,
            ),
            ("error #10: no numbers", none, None),
            (
                "no navigation breakdown: unknown, not 100 %",
                StoryMetrics {
                    tap_exit: None,
                    swipe_forward: None,
                    ..metrics(50, 40, 0, 0)
                },
                None,
            ),
            (
                "only exits given",
                StoryMetrics {
                    swipe_forward: None,
                    ..metrics(50, 40, 10, 0)
                },
                Some(0.8),
            ),
            (
                "huge counts do not overflow",
                metrics(u64::MAX, u64::MAX, u64::MAX, u64::MAX),
                Some(0.0),
            ),
        ];
        for (what, metrics, expected) in cases {
            assert_eq!(metrics.completion(), *expected, "{what}");
        }
        assert!(!none.has_numbers());
        assert!(StoryMetrics {
            tap_back: Some(0),
            ..none
        }
        .has_numbers());
    }

    /// The report as lines, so a case reads as its expected text.
    fn render(report: &InsightsReport) -> String {
        let mut text = format!(
            "{} days, {} stories, {} with numbers\n",
            report.days(),
            report.stories,
            report.with_numbers
        );
        for c in &report.categories {
            text.push_str(&format!(
                "{}: {} stories, {} with numbers, reach {:?}, completion {:?}, replies {}, shares {}, follows {}\n",
                c.category,
                c.stories,
                c.with_numbers,
                c.average_reach,
                c.average_completion,
                c.replies,
                c.shares,
                c.follows
            ));
        }
        let name = |s: &Option<NotableStory>| {
            s.as_ref().map_or("-".to_string(), |s| {
                format!("{} (reach {})", s.label, s.reach)
            })
        };
        text.push_str(&format!(
            "best {}, worst {}\n",
            name(&report.best),
            name(&report.worst)
        ));
        text
    }

    fn week() -> (DateTime<Utc>, DateTime<Utc>) {
        last_days(at("2026-06-08T12:00:00Z"), 7)
    }

    #[test]
    fn a_week_per_category() {
        let mut with_replies = metrics(200, 150, 20, 30);
        with_replies.replies = Some(3);
        with_replies.shares = Some(1);
        with_replies.follows = Some(2);
        let stories = vec![
            story(1, "quotes", "2026-06-02T09:00:00Z", with_replies),
            story(2, "quotes", "2026-06-03T09:00:00Z", metrics(100, 90, 10, 0)),
            story(3, "quotes", "2026-06-04T09:00:00Z", StoryMetrics::default()),
            story(
                4,
                "products",
                "2026-06-05T09:00:00Z",
                metrics(40, 30, 20, 10),
            ),
            // Reach but no navigation: counts for reach, not completion.
            story(
                5,
                "products",
                "2026-06-06T09:00:00Z",
                StoryMetrics {
                    reach: Some(50),
                    ..StoryMetrics::default()
                },
            ),
            story(6, "memes", "2026-06-07T09:00:00Z", StoryMetrics::default()),
            // Outside the week, on both ends.
            story(
                7,
                "quotes",
                "2026-06-01T11:59:59Z",
                metrics(9999, 9999, 0, 0),
            ),
            story(
                8,
                "quotes",
                "2026-06-08T12:00:00Z",
                metrics(9999, 9999, 0, 0),
            ),
        ];
        let (since, until) = week();
        let report = report(&stories, since, until);
        expect![[r#"
            7 days, 6 stories, 4 with numbers
            memes: 1 stories, 0 with numbers, reach None, completion None, replies 0, shares 0, follows 0
            products: 2 stories, 2 with numbers, reach Some(40.0), completion Some(0.25), replies 0, shares 0, follows 0
            quotes: 3 stories, 2 with numbers, reach Some(120.0), completion Some(0.825), replies 3, shares 1, follows 2
            best quotes/1.jpg (reach 150), worst products/4.jpg (reach 30)
        "#]]
        .assert_eq(&render(&report));
        assert!(report.has_numbers());
    }

    #[test]
    fn ties_are_broken_the_same_way_whatever_the_order() {
        let (since, until) = week();
        let mut stories = vec![
            // Same reach: the higher completion is better.
            story(10, "a", "2026-06-03T09:00:00Z", metrics(100, 80, 50, 0)),
            story(11, "a", "2026-06-03T09:00:00Z", metrics(100, 80, 10, 0)),
            // Same reach and completion: the earlier one, then the lower id.
            story(12, "b", "2026-06-04T09:00:00Z", metrics(100, 20, 10, 0)),
            story(14, "b", "2026-06-02T09:00:00Z", metrics(100, 20, 10, 0)),
            story(13, "b", "2026-06-02T09:00:00Z", metrics(100, 20, 10, 0)),
        ];
        let expected = "best a/11.jpg (reach 80), worst b/13.jpg (reach 20)\n";
        for _ in 0..stories.len() {
            stories.rotate_left(1);
            let text = render(&report(&stories, since, until));
            assert!(text.ends_with(expected), "{text}");
            stories.reverse();
            let text = render(&report(&stories, since, until));
            assert!(text.ends_with(expected), "{text}");
        }
    }

    #[test]
    fn best_and_worst_need_stories_with_a_reach() {
        let (since, until) = week();
        let cases: &[(&str, Vec<StoryResult>, &str)] = &[
            ("nothing posted", vec![], "best -, worst -\n"),
            (
                "no numbers",
                vec![story(
                    1,
                    "a",
                    "2026-06-03T09:00:00Z",
                    StoryMetrics::default(),
                )],
                "best -, worst -\n",
            ),
            (
                "one story: best only",
                vec![story(1, "a", "2026-06-03T09:00:00Z", metrics(5, 5, 0, 0))],
                "best a/1.jpg (reach 5), worst -\n",
            ),
            (
                "two equal stories: both, never the same one",
                vec![
                    story(1, "a", "2026-06-03T09:00:00Z", metrics(5, 5, 0, 0)),
                    story(2, "a", "2026-06-03T09:00:00Z", metrics(5, 5, 0, 0)),
                ],
                "best a/1.jpg (reach 5), worst a/2.jpg (reach 5)\n",
            ),
        ];
        for (what, stories, expected) in cases {
            let text = render(&report(stories, since, until));
            assert!(text.ends_with(expected), "{what}: {text}");
        }
        let empty = report(&[], since, until);
        assert!(!empty.has_numbers());
        assert!(empty.categories.is_empty());
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let (since, until) = week();
        let mut huge = metrics(u64::MAX, u64::MAX, 0, 0);
        huge.replies = Some(u64::MAX);
        let stories = vec![
            story(1, "a", "2026-06-03T09:00:00Z", huge),
            story(2, "a", "2026-06-04T09:00:00Z", huge),
        ];
        let report = report(&stories, since, until);
        let a = &report.categories[0];
        assert_eq!(a.replies, u64::MAX);
        assert_eq!(a.average_reach, Some(u64::MAX as f64));
    }

    #[test]
    fn the_report_serialises_for_the_command_line() {
        let (since, until) = week();
        let mut one = metrics(100, 80, 10, 10);
        one.shares = Some(2);
        let report = report(
            &[story(1, "quotes", "2026-06-03T09:00:00Z", one)],
            since,
            until,
        );
        expect![[r#"
            {
              "since": "2026-06-01T12:00:00Z",
              "until": "2026-06-08T12:00:00Z",
              "stories": 1,
              "with_numbers": 1,
              "categories": [
                {
                  "category": "quotes",
                  "stories": 1,
                  "with_numbers": 1,
                  "average_reach": 80.0,
                  "average_completion": 0.8,
                  "replies": 0,
                  "shares": 2,
                  "follows": 0
                }
              ],
              "best": {
                "id": 1,
                "label": "quotes/1.jpg",
                "category": "quotes",
                "posted_at": "2026-06-03T09:00:00Z",
                "reach": 80,
                "completion": 0.8
              },
              "worst": null
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&report).unwrap());
    }

    #[test]
    fn periods() {
        let now = at("2026-06-08T12:00:00Z");
        assert_eq!(last_days(now, 7), (at("2026-06-01T12:00:00Z"), now));
        assert_eq!(last_days(now, u32::MAX).0, DateTime::<Utc>::MIN_UTC);
        let cases: &[(&str, Result<u32, ()>)] = &[
            ("", Ok(7)),
            (" 30 ", Ok(30)),
            ("1", Ok(1)),
            ("365", Ok(365)),
            ("0", Err(())),
            ("366", Err(())),
            ("+7", Err(())),
            ("-7", Err(())),
            ("7d", Err(())),
            ("99999999999999999999", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_days(text).map_err(|_| ()), *expected, "{text:?}");
        }
        expect!["The period is a number of days from 1 to 365, like /insights 7 or /insights 30."]
            .assert_eq(&parse_days("x").unwrap_err());
    }

    #[test]
    fn numbers_in_words() {
        let counts: Vec<String> = [0, 7, 999, 1000, 12_345, 1_234_567, u64::MAX]
            .into_iter()
            .map(format_count)
            .collect();
        expect![[
            r#"["0", "7", "999", "1,000", "12,345", "1,234,567", "18,446,744,073,709,551,615"]"#
        ]]
        .assert_eq(&format!("{counts:?}"));
        assert_eq!(format_average(1234.5), "1,235");
        assert_eq!(format_average(f64::NAN), "0");
        assert_eq!(format_average(-3.0), "0");
        assert_eq!(format_percent(0.714), "71 %");
        assert_eq!(format_percent(1.5), "100 %");
        assert_eq!(format_percent(f64::NAN), "0 %");
    }
}
