//! The words of story insights: the caption of `/insights` (under the chart,
//! within Telegram's caption limit), the text of `storyline insights`, and the
//! lines the daily summary adds for yesterday's stories. Pure; every dynamic
//! string is escaped here (the plain text is not HTML and is not escaped).

use crate::zone::Tz;

use super::zoned_day;
use crate::domain::html_fit::{self, MAX_CAPTION_UNITS};
use crate::domain::insights::{
    format_average, format_count, format_percent, CategoryResults, InsightsReport, NotableStory,
};
use crate::domain::markup::{escape_html, plural};

/// Longer category names and story labels are cut to this many characters.
const NAME_CHARS: usize = 32;

/// The caption of the `/insights` chart, or the whole message when no story
/// has numbers: the period, then per category its stories and numbers, then
/// the best and worst story. Within Telegram's caption limit: categories that
/// do not fit are counted in a last line instead.
pub fn insights_caption(report: &InsightsReport, tz: Tz) -> String {
    let mut head = format!("📊 <b>Insights</b> · {}\n", period_words(report));
    if !report.has_numbers() {
        head.push_str(&no_numbers_words(report, "/connect"));
        return html_fit::truncate(&head, MAX_CAPTION_UNITS);
    }
    head.push_str(&format!(
        "{}, {} with numbers\n",
        plural(report.stories, "story", "stories"),
        report.with_numbers
    ));
    let mut tail = String::new();
    for (icon, title, story) in notable_stories(report) {
        tail.push_str(&format!(
            "\n{icon} <b>{title}</b>: {}",
            notable_words(story, tz, true)
        ));
    }
    let blocks: Vec<String> = report
        .categories
        .iter()
        .map(|results| {
            format!(
                "\n<b>{}</b> · {}\n",
                escape_html(&shorten(&results.category)),
                category_words(results)
            )
        })
        .collect();
    let mut body = String::new();
    let mut shown = 0;
    for block in &blocks {
        let more = more_categories(blocks.len() - shown - 1);
        let text = format!("{head}{body}{block}{more}{tail}");
        if html_fit::visible_units(&text) > MAX_CAPTION_UNITS {
            break;
        }
        body.push_str(block);
        shown += 1;
    }
    let more = more_categories(blocks.len() - shown);
    html_fit::truncate(&format!("{head}{body}{more}{tail}"), MAX_CAPTION_UNITS)
}

/// The text of `storyline insights`: the period, a table of the categories and
/// the best and worst story. Plain text for a terminal.
pub fn insights_plain(report: &InsightsReport, tz: Tz) -> String {
    let mut text = format!(
        "Insights, {} ({} to {})\n",
        period_words(report),
        zoned_day(report.since, tz),
        zoned_day(report.until, tz)
    );
    if !report.has_numbers() {
        text.push_str(&no_numbers_words(
            report,
            "connect one in the chat with /connect",
        ));
        text.push('\n');
        return text;
    }
    text.push_str(&format!(
        "{}, {} with numbers\n\n",
        plural(report.stories, "story", "stories"),
        report.with_numbers
    ));
    let header = [
        "category",
        "stories",
        "with numbers",
        "avg reach",
        "completion",
        "replies",
        "shares",
        "follows",
    ];
    let rows: Vec<[String; 8]> = report
        .categories
        .iter()
        .map(|c| {
            [
                shorten(&c.category),
                c.stories.to_string(),
                c.with_numbers.to_string(),
                c.average_reach.map_or("-".to_string(), format_average),
                c.average_completion.map_or("-".to_string(), format_percent),
                format_count(c.replies),
                format_count(c.shares),
                format_count(c.follows),
            ]
        })
        .collect();
    let mut widths = header.map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            if i == 0 {
                line.push_str(&format!("{cell}{pad}"));
            } else {
                line.push_str(&format!("  {pad}{cell}"));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if report.best.is_some() {
        text.push('\n');
    }
    for (_, title, story) in notable_stories(report) {
        text.push_str(&format!(
            "{:<6} {}\n",
            format!("{title}:"),
            notable_words(story, tz, false)
        ));
    }
    text
}

/// One line per category of yesterday's stories for the daily summary:
/// "• quotes: reach 1,234 · completion 71 % · 3 replies"; counts of 0 left
/// out. Empty when yesterday had no story.
pub fn daily_results_lines(report: &InsightsReport) -> Vec<String> {
    report
        .categories
        .iter()
        .map(|c| {
            let mut parts = numbers_words(c);
            parts.extend(
                [
                    (c.replies, "reply", "replies"),
                    (c.shares, "share", "shares"),
                    (c.follows, "follow", "follows"),
                ]
                .into_iter()
                .filter(|(count, _, _)| *count > 0)
                .map(|(count, one, many)| plural(format_count(count), one, many)),
            );
            let words = if c.with_numbers == 0 {
                "no numbers yet".to_string()
            } else if parts.is_empty() {
                "no reach or completion yet".to_string()
            } else {
                parts.join(" · ")
            };
            format!("• {}: {words}", escape_html(&shorten(&c.category)))
        })
        .collect()
}

/// The daily summary's block of yesterday's results: a title and
/// `daily_results_lines`. None when yesterday had no story. Yesterday's last
/// stories are still live, so the numbers are "so far".
pub fn daily_results_text(report: &InsightsReport) -> Option<String> {
    if report.stories == 0 {
        return None;
    }
    let mut text = "📈 <b>Results so far</b>".to_string();
    for line in daily_results_lines(report) {
        text.push('\n');
        text.push_str(&line);
    }
    Some(text)
}

/// The answer to `/insights` with something else than a number of days.
pub fn insights_usage_text(error: &str) -> String {
    format!(
        "{}\nWithout a number, /insights shows the last 7 days.",
        escape_html(error)
    )
}

fn period_words(report: &InsightsReport) -> String {
    match report.days() {
        1 => "the last day".to_string(),
        days => format!("the last {days} days"),
    }
}

/// Why there is nothing to show, in words for the user; `connect` says how to
/// connect an account.
fn no_numbers_words(report: &InsightsReport, connect: &str) -> String {
    let first = if report.stories == 0 {
        format!("No story went out in {}.", period_words(report))
    } else {
        format!(
            "{} of {}, none with numbers yet.",
            match report.stories {
                1 => "The one story".to_string(),
                n => format!("{n} stories"),
            },
            period_words(report)
        )
    };
    format!(
        "{first}\n\nInstagram gives a story's numbers a few hours after it goes up, and none \
         when too few people saw it. Storyline reads them for the stories of a connected \
         account ({connect}), also those posted by hand."
    )
}

/// "4 stories (3 with numbers)", then the numbers on a second line, or "no
/// numbers yet".
fn category_words(c: &CategoryResults) -> String {
    let stories = plural(c.stories, "story", "stories");
    if c.with_numbers == 0 {
        return format!("{stories}, no numbers yet");
    }
    let counted = if c.with_numbers < c.stories {
        format!("{stories} ({} with numbers)", c.with_numbers)
    } else {
        stories
    };
    let mut parts = numbers_words(c);
    parts.push(plural(format_count(c.replies), "reply", "replies"));
    parts.push(plural(format_count(c.shares), "share", "shares"));
    parts.push(plural(format_count(c.follows), "follow", "follows"));
    format!("{counted}\n{}", parts.join(" · "))
}

/// Average reach and completion, each when known.
fn numbers_words(c: &CategoryResults) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(reach) = c.average_reach {
        parts.push(format!("reach {}", format_average(reach)));
    }
    if let Some(completion) = c.average_completion {
        parts.push(format!("completion {}", format_percent(completion)));
    }
    parts
}

fn notable_stories(report: &InsightsReport) -> Vec<(&'static str, &'static str, &NotableStory)> {
    let mut stories = Vec::new();
    if let Some(best) = &report.best {
        stories.push(("🏆", "Best", best));
    }
    if let Some(worst) = &report.worst {
        stories.push(("🔻", "Worst", worst));
    }
    stories
}

/// "a.jpg (quotes) · reach 2,345 · completion 80 % · Mon 01 Jun 10:00 CEST",
/// escaped for HTML when `html`.
fn notable_words(story: &NotableStory, tz: Tz, html: bool) -> String {
    let name = story.label.rsplit('/').next().unwrap_or(&story.label);
    let (name, category) = (shorten(name), shorten(&story.category));
    let (name, category) = if html {
        (escape_html(&name), escape_html(&category))
    } else {
        (name, category)
    };
    let mut words = format!("{name} ({category}) · reach {}", format_count(story.reach));
    if let Some(completion) = story.completion {
        words.push_str(&format!(" · completion {}", format_percent(completion)));
    }
    words.push_str(&format!(" · {}", zoned_day(story.posted_at, tz)));
    words
}

fn more_categories(count: usize) -> String {
    if count == 0 {
        String::new()
    } else {
        format!(
            "\n…and {}\n",
            plural(count, "more category", "more categories")
        )
    }
}

/// A name cut to `NAME_CHARS` characters, "…" included.
fn shorten(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        return name.to_string();
    }
    let mut short: String = name.chars().take(NAME_CHARS - 1).collect();
    short.truncate(short.trim_end().len());
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::insights::{last_days, report, StoryMetrics, StoryResult};
    use chrono::{DateTime, Duration, Utc};
    use expect_test::expect;

    fn berlin() -> Tz {
        "Europe/Berlin".parse::<Tz>().unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-06-08T12:00:00Z".parse().unwrap()
    }

    fn numbers(views: u64, reach: u64, left: u64) -> StoryMetrics {
        StoryMetrics {
            views: Some(views),
            reach: Some(reach),
            tap_exit: Some(left),
            swipe_forward: Some(0),
            replies: Some(1),
            ..StoryMetrics::default()
        }
    }

    fn story(id: i64, category: &str, days_ago: i64, metrics: StoryMetrics) -> StoryResult {
        StoryResult {
            id,
            label: format!("{category}/story-{id}.jpg"),
            category: category.to_string(),
            posted_at: now() - Duration::days(days_ago),
            metrics,
        }
    }

    fn week_of(stories: &[StoryResult]) -> InsightsReport {
        let (since, until) = last_days(now(), 7);
        report(stories, since, until)
    }

    fn a_week() -> InsightsReport {
        let mut shared = numbers(300, 2345, 30);
        shared.shares = Some(1);
        shared.follows = Some(2);
        week_of(&[
            story(1, "quotes <&>", 6, shared),
            story(2, "quotes <&>", 5, numbers(100, 1000, 20)),
            story(3, "quotes <&>", 4, StoryMetrics::default()),
            story(4, "products", 3, numbers(50, 12, 25)),
            story(5, "memes", 2, StoryMetrics::default()),
        ])
    }

    #[test]
    fn the_caption_of_a_week() {
        expect![[r#"
            📊 <b>Insights</b> · the last 7 days
            5 stories, 3 with numbers

            <b>memes</b> · 1 story, no numbers yet

            <b>products</b> · 1 story
            reach 12 · completion 50 % · 1 reply · 0 shares · 0 follows

            <b>quotes &lt;&amp;&gt;</b> · 3 stories (2 with numbers)
            reach 1,673 · completion 85 % · 2 replies · 1 share · 2 follows

            🏆 <b>Best</b>: story-1.jpg (quotes &lt;&amp;&gt;) · reach 2,345 · completion 90 % · Tue 02 Jun 14:00 CEST
            🔻 <b>Worst</b>: story-4.jpg (products) · reach 12 · completion 50 % · Fri 05 Jun 14:00 CEST"#]]
        .assert_eq(&insights_caption(&a_week(), berlin()));
    }

    #[test]
    fn nothing_to_show_is_said_in_words() {
        let empty = week_of(&[]);
        let unnumbered = week_of(&[story(1, "memes", 1, StoryMetrics::default())]);
        let shown = format!(
            "{}\n--\n{}\n--\n{}",
            insights_caption(&empty, berlin()),
            insights_caption(&unnumbered, berlin()),
            insights_plain(&unnumbered, berlin()),
        );
        expect![[r#"
            📊 <b>Insights</b> · the last 7 days
            No story went out in the last 7 days.

            Instagram gives a story's numbers a few hours after it goes up, and none when too few people saw it. Storyline reads them for the stories of a connected account (/connect), also those posted by hand.
            --
            📊 <b>Insights</b> · the last 7 days
            The one story of the last 7 days, none with numbers yet.

            Instagram gives a story's numbers a few hours after it goes up, and none when too few people saw it. Storyline reads them for the stories of a connected account (/connect), also those posted by hand.
            --
            Insights, the last 7 days (Mon 01 Jun 14:00 CEST to Mon 08 Jun 14:00 CEST)
            The one story of the last 7 days, none with numbers yet.

            Instagram gives a story's numbers a few hours after it goes up, and none when too few people saw it. Storyline reads them for the stories of a connected account (connect one in the chat with /connect), also those posted by hand.
        "#]]
        .assert_eq(&shown);
        assert_eq!(daily_results_text(&empty), None);
    }

    #[test]
    fn the_command_line_text_is_a_table() {
        expect![[r#"
            Insights, the last 7 days (Mon 01 Jun 14:00 CEST to Mon 08 Jun 14:00 CEST)
            5 stories, 3 with numbers

            category    stories  with numbers  avg reach  completion  replies  shares  follows
            memes             1             0          -           -        0       0        0
            products          1             1         12        50 %        1       0        0
            quotes <&>        3             2      1,673        85 %        2       1        2

            Best:  story-1.jpg (quotes <&>) · reach 2,345 · completion 90 % · Tue 02 Jun 14:00 CEST
            Worst: story-4.jpg (products) · reach 12 · completion 50 % · Fri 05 Jun 14:00 CEST
        "#]]
        .assert_eq(&insights_plain(&a_week(), berlin()));
    }

    #[test]
    fn the_daily_summary_lines() {
        let (since, until) = last_days(now(), 1);
        let yesterday = report(
            &[
                story(1, "quotes", 0, numbers(100, 80, 10)),
                story(2, "memes", 0, StoryMetrics::default()),
                story(
                    3,
                    "products",
                    0,
                    StoryMetrics {
                        follows: Some(0),
                        ..StoryMetrics::default()
                    },
                ),
            ]
            .map(|mut s| {
                s.posted_at -= Duration::hours(2);
                s
            }),
            since,
            until,
        );
        expect![[r#"
            📈 <b>Results so far</b>
            • memes: no numbers yet
            • products: no reach or completion yet
            • quotes: reach 80 · completion 90 % · 1 reply"#]]
        .assert_eq(&daily_results_text(&yesterday).unwrap());
    }

    #[test]
    fn many_and_long_categories_stay_within_the_caption_limit() {
        let long = "a very long category name that goes on and on <and on>";
        let mut stories: Vec<StoryResult> = (0..50)
            .map(|i| {
                story(
                    i,
                    &format!("category {i:02}"),
                    1,
                    numbers(100, 100 + i as u64, 10),
                )
            })
            .collect();
        stories.push(story(99, long, 2, numbers(100, 1, 10)));
        stories[0].label = format!("{long}/{}.jpg", "x".repeat(300));
        stories[0].metrics.reach = Some(5000);
        let report = week_of(&stories);
        let caption = insights_caption(&report, berlin());
        assert!(
            html_fit::visible_units(&caption) <= MAX_CAPTION_UNITS,
            "{}",
            html_fit::visible_units(&caption)
        );
        // The best and the worst story are always there, names cut short; the
        // categories that did not fit are counted.
        let best = "🏆 <b>Best</b>: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… (category 00) · reach 5,000";
        assert!(caption.contains(best), "{caption}");
        let worst = "🔻 <b>Worst</b>: story-99.jpg (a very long category name that…)";
        assert!(caption.contains(worst), "{caption}");
        assert!(caption.contains("\n<b>a very long category name that…</b> · 1 story\n"));
        let shown = caption.matches("\n<b>").count();
        let more = caption.lines().find(|line| line.starts_with("…and "));
        assert_eq!(
            more,
            Some(format!("…and {} more categories", 51 - shown)).as_deref()
        );
        // Whatever the report, the caption fits.
        let mut huge = numbers(u64::MAX, u64::MAX, 0);
        huge.replies = Some(u64::MAX);
        let stories: Vec<StoryResult> = (0..40)
            .map(|i| story(i, &"&".repeat(200 + i as usize), 1, huge))
            .collect();
        let caption = insights_caption(&week_of(&stories), berlin());
        assert!(html_fit::visible_units(&caption) <= MAX_CAPTION_UNITS);
    }

    #[test]
    fn usage() {
        expect![[r#"
            The period is a number of days from 1 to 365, like /insights 7 or /insights 30.
            Without a number, /insights shows the last 7 days."#]]
        .assert_eq(&insights_usage_text(
            &crate::domain::insights::parse_days("x").unwrap_err(),
        ));
    }
}
