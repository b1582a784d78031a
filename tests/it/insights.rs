//! Story insights (issue 13), end to end: the real daemon publishes stories to
//! the fake Graph server, or a person marks one ✅ Posted, and the publisher
//! thread reads each story's numbers before Instagram forgets them (a first read
//! 4 hours in, a final one at 23 hours). The daemon runs on the test clock
//! (`STORYLINE_TEST_CLOCK`), shared with the fake so that its stories expire in
//! daemon hours; a day passes in seconds. The virtual days lie two days back, so
//! `storyline insights` (wall clock) sees their stories in its last 7 days.
//!
//! What each test proves is what the store holds (`story_insights`), what the
//! fake was asked (every insights and stories call counted), and what the chat
//! was told.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveTime, Utc};
use serde_json::Value;
use storyline::clock::TestClock;

use crate::helpers::*;
use crate::publishing::{setup, Setup};
use crate::support::{
    describe_output, wait_until, Daemon, FakeStoryNumbers, IgCall, IgInsights, SentMessage, ADMIN,
    CHAT,
};

/// The account `publishing::setup` adds for every chat.
const IG_USER: &str = "17841400000000001";
/// One virtual hour a real second.
const FAST: f64 = 3600.0;
/// How late a step may come on a loaded machine: half a real second at `FAST`.
/// The publisher looks once a minute of daemon time, so a step is seldom more
/// than a minute late.
const LATE: Span = Span::minutes(30);
/// Waits in real time for what comes hours later in daemon time.
const LONG_WAIT: Duration = Duration::from_secs(45);
const PUBLISHED: &str = "Published to Instagram as @";
const PERMISSION_NOTICE: &str = "cannot read the insights of @brand";

/// The daemon's clock as a test sees it: the value of `STORYLINE_TEST_CLOCK`.
struct Clock {
    value: String,
    clock: TestClock,
}

impl Clock {
    /// A clock showing `start` now and running `speed` times the wall clock.
    fn starting(start: DateTime<Utc>, speed: f64) -> Clock {
        let value = format!(
            "{},{},{speed}",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            Utc::now().timestamp_millis()
        );
        let clock = storyline::clock::parse(&value).unwrap();
        Clock { value, clock }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.at(Utc::now())
    }

    /// Waits until the daemon's clock shows `at`.
    fn wait_for(&self, at: DateTime<Utc>) {
        let real_ms = ((at - self.now()).num_milliseconds() as f64 / self.clock.speed).max(0.0);
        let timeout = Duration::from_millis(real_ms as u64) + Duration::from_secs(5);
        wait_until(&format!("the daemon's clock to show {at}"), timeout, || {
            (self.now() >= at).then_some(())
        });
    }
}

/// Two days ago at 02:00 UTC, where the tests' virtual day starts: in the past
/// of the wall clock, and with its hours known (the default posting hours are
/// 14–02, so no slot of the plan comes before the afternoon).
fn two_days_ago_at_2() -> DateTime<Utc> {
    let day = (Utc::now() - Span::days(2)).date_naive();
    day.and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap())
        .and_utc()
}

/// A JPEG Instagram takes; `shade` makes each file's content its own.
fn jpeg(shade: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    let img = image::RgbImage::from_fn(72, 128, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, shade])
    });
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

/// `publishing::setup` with these files (categories are their folders) and the
/// chat's zone UTC: in auto mode (published through the API) when `auto`, else
/// manual (stories come with buttons).
fn chat_with(files: &[&str], auto: bool) -> Setup {
    let files: Vec<(&str, Vec<u8>)> = files
        .iter()
        .enumerate()
        .map(|(i, path)| (*path, jpeg(40 * i as u8)))
        .collect();
    let s = setup(&files, auto, false);
    s.env
        .db()
        .execute(
            "UPDATE chats SET timezone = 'UTC' WHERE chat_id = ?1",
            [CHAT],
        )
        .unwrap();
    s
}

/// Starts the daemon on `clock` (and the fake with it); waits until it polls.
fn start(s: &Setup, clock: &Clock) -> Daemon {
    s.ig.use_test_clock(&clock.value);
    let from = s.env.tg.calls().len();
    let daemon = s
        .env
        .start_with_env(&[("STORYLINE_TEST_CLOCK", clock.value.as_str())]);
    s.env
        .tg
        .wait_for_method(from, "getUpdates", Duration::from_secs(20));
    daemon
}

/// /next in an auto chat: the story is published; returns its media id.
fn publish_next(s: &Setup) -> String {
    let before = s.ig.published().len();
    let reports = count_messages(s, PUBLISHED);
    s.env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    wait_until("the story's report", WAIT, || {
        (count_messages(s, PUBLISHED) > reports).then_some(())
    });
    let published = s.ig.published();
    assert_eq!(published.len(), before + 1, "one story published");
    published.last().unwrap().clone()
}

fn count_messages(s: &Setup, text: &str) -> usize {
    s.env
        .tg
        .messages(CHAT)
        .iter()
        .filter(|m| m.text.contains(text))
        .count()
}

/// A story of a manual chat, sent with /next; waits until its message id is
/// stored, so that a press on it is the chat's.
fn story_with_buttons(s: &Setup) -> SentMessage {
    let before = s.env.tg.messages(CHAT).len();
    s.env.tg.push_message(CHAT, ADMIN, "ada", "/next");
    let story = wait_until("the story", WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .skip(before)
            .find(|m| m.kind != "text" && !buttons(m).is_empty())
    });
    wait_for_empty_outbox(&s.env);
    story
}

/// Presses ✅ Posted on a story; returns the daemon's time of the press.
fn press_posted(s: &Setup, story: &SentMessage) -> DateTime<Utc> {
    let answer = press_data(
        &s.env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(story, "✅ Posted"),
    );
    assert!(!is_alert(&answer), "{answer:?}");
    let queue_id: i64 = s
        .env
        .db()
        .query_row(
            "SELECT id FROM posting_queue WHERE telegram_message_id = ?1",
            [story.message_id],
            |r| r.get(0),
        )
        .unwrap();
    let row = wait_until("the press to be tracked", WAIT, || {
        tracked(s).into_iter().find(|row| row.queue_id == queue_id)
    });
    row.posted_at
}

/// A `story_insights` row as the test reads it.
#[derive(Debug, Clone)]
struct Tracked {
    queue_id: i64,
    media_id: Option<String>,
    state: String,
    reads: i64,
    result: Option<String>,
    posted_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    next_at: Option<DateTime<Utc>>,
    attempts: i64,
    numbers: [Option<i64>; 11],
    error: Option<String>,
    category: String,
    /// The story's file, as in the media folder.
    path: String,
}

impl Tracked {
    /// The numbers stored, as the fake holds them; None unless all are there.
    fn numbers(&self) -> Option<FakeStoryNumbers> {
        let n: Vec<u64> = self
            .numbers
            .iter()
            .map(|value| value.and_then(|v| u64::try_from(v).ok()))
            .collect::<Option<_>>()?;
        Some(FakeStoryNumbers {
            views: n[0],
            reach: n[1],
            replies: n[2],
            shares: n[3],
            total_interactions: n[4],
            follows: n[5],
            profile_visits: n[6],
            tap_forward: n[7],
            tap_back: n[8],
            tap_exit: n[9],
            swipe_forward: n[10],
        })
    }

    fn has_no_numbers(&self) -> bool {
        self.numbers.iter().all(Option::is_none)
    }

    /// How long after the story went live its latest read came.
    fn read_after(&self) -> Span {
        self.read_at.expect("a read") - self.posted_at
    }
}

fn time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.map(|t| t.parse().unwrap())
}

/// Every tracked story, in the order tracked.
fn tracked(s: &Setup) -> Vec<Tracked> {
    let db = s.env.db();
    let mut statement = db
        .prepare(
            "SELECT queue_id, media_id, state, reads, result, posted_at, read_at, next_at,
                    attempts, views, reach, replies, shares, total_interactions, follows,
                    profile_visits, tap_forward, tap_back, tap_exit, swipe_forward, error,
                    category,
                    (SELECT path FROM media_items WHERE id =
                        (SELECT media_item_id FROM posting_queue q WHERE q.id = si.queue_id))
             FROM story_insights si ORDER BY id",
        )
        .unwrap();
    statement
        .query_map([], |r| {
            let mut numbers = [None; 11];
            for (i, number) in numbers.iter_mut().enumerate() {
                *number = r.get(9 + i)?;
            }
            Ok(Tracked {
                queue_id: r.get(0)?,
                media_id: r.get(1)?,
                state: r.get(2)?,
                reads: r.get(3)?,
                result: r.get(4)?,
                posted_at: r.get::<_, String>(5)?.parse().unwrap(),
                read_at: time(r.get(6)?),
                next_at: time(r.get(7)?),
                attempts: r.get(8)?,
                numbers,
                error: r.get(20)?,
                category: r.get(21)?,
                path: r.get(22)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The story of `media_id`, once `ready` holds for it.
fn wait_for_story(
    s: &Setup,
    media_id: &str,
    what: &str,
    ready: impl Fn(&Tracked) -> bool,
) -> Tracked {
    wait_until(what, LONG_WAIT, || {
        tracked(s)
            .into_iter()
            .find(|row| row.media_id.as_deref() == Some(media_id) && ready(row))
    })
}

fn insights_calls(s: &Setup) -> Vec<IgCall> {
    s.ig.calls_to("/insights")
}

fn insights_calls_of(s: &Setup, media_id: &str) -> usize {
    s.ig.calls_to(&format!("/{media_id}/insights")).len()
}

fn runs_of_insights(s: &Setup) -> Vec<(String, Option<String>)> {
    let db = s.env.db();
    let mut statement = db
        .prepare("SELECT outcome, counts FROM runs WHERE kind = 'insights' ORDER BY id")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn assert_between(what: &str, value: Span, low: Span, high: Span) {
    assert!(
        value >= low && value <= high,
        "{what}: {value} is not within {low}..={high}"
    );
}

/// A read of a story is two calls: the plain metrics, then `navigation` with its
/// breakdown; never `impressions`, never the quota.
fn assert_is_a_read(calls: &[IgCall], media_id: &str) {
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in calls {
        assert_eq!(call.method, "GET");
        assert!(
            call.path.ends_with(&format!("/{media_id}/insights")),
            "{}",
            call.path
        );
        assert_eq!(call.status, Some(200), "{call:?}");
    }
    assert_eq!(
        calls[0].params["metric"],
        "views,reach,replies,shares,total_interactions,follows,profile_visits"
    );
    assert_eq!(calls[1].params["metric"], "navigation");
    assert_eq!(calls[1].params["breakdown"], "story_navigation_action_type");
}

// ---- a story published through the API ------------------------------------------------

#[test]
fn a_published_story_is_read_at_4_hours_and_at_23_hours_and_then_left_alone() {
    let s = chat_with(&["quotes/a.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let media_id = publish_next(&s);
    assert!(
        insights_calls(&s).is_empty(),
        "nothing is read when a story goes up"
    );

    let first = wait_for_story(&s, &media_id, "the first read", |row| row.reads == 1);
    assert_between(
        "the first read after going live",
        first.read_after(),
        Span::hours(4),
        Span::hours(4) + LATE,
    );
    assert_eq!(first.state, "reading");
    assert_eq!(first.result.as_deref(), Some("numbers"));
    assert_eq!(
        first.numbers(),
        Some(FakeStoryNumbers::for_media(&media_id)),
        "the fake's numbers, stored"
    );
    assert_eq!(first.next_at, Some(first.posted_at + Span::hours(23)));
    assert_is_a_read(&insights_calls(&s), &media_id);

    // Later in the day more people saw it: the final read stores the new numbers.
    let later = FakeStoryNumbers {
        views: 900,
        reach: 700,
        replies: 4,
        shares: 3,
        total_interactions: 7,
        follows: 2,
        profile_visits: 11,
        tap_forward: 300,
        tap_back: 20,
        tap_exit: 90,
        swipe_forward: 45,
    };
    s.ig.set_insights(&media_id, IgInsights::Numbers(later));
    let last = wait_for_story(&s, &media_id, "the final read", |row| row.reads == 2);
    assert_between(
        "the final read after going live",
        last.read_after(),
        Span::hours(23),
        Span::hours(23) + LATE,
    );
    assert_eq!(last.state, "done");
    assert_eq!(last.next_at, None);
    assert_eq!(last.numbers(), Some(later));
    assert_eq!(last.error, None);

    // Past the story's 24 hours nothing more is asked.
    clock.wait_for(last.posted_at + Span::hours(25));
    let calls = insights_calls(&s);
    assert_eq!(calls.len(), 4, "two reads of two calls: {calls:?}");
    assert_is_a_read(&calls[2..], &media_id);
    // Since the publish, Instagram was asked for nothing else: not the stories
    // list (a published story's id is known), not the quota.
    let all = s.ig.calls();
    let publish = all
        .iter()
        .position(|call| call.path.ends_with("/media_publish"))
        .unwrap();
    let since: Vec<&str> = all[publish + 1..].iter().map(|c| c.path.as_str()).collect();
    assert!(
        since.len() == 4 && since.iter().all(|path| path.ends_with("/insights")),
        "{since:?}"
    );
    assert_eq!(
        s.ig.calls_to("/content_publishing_limit").len(),
        1,
        "the quota is read for the publish, never for insights"
    );
    let runs = runs_of_insights(&s);
    assert_eq!(runs.len(), 2, "a run for each read, none at idle: {runs:?}");
    assert!(runs.iter().all(|(outcome, _)| outcome == "ok"), "{runs:?}");
}

// ---- a story posted by hand --------------------------------------------------------------

#[test]
fn a_story_posted_by_hand_is_matched_by_its_time_or_not_at_all() {
    // Slower: the fake's story must go up within half an hour (daemon time) of
    // the press, and a press takes a moment to arrive.
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg", "quotes/c.jpg"], false);
    let clock = Clock::starting(two_days_ago_at_2(), 900.0);
    let _daemon = start(&s, &clock);

    // One live story fits the press (another one went up hours before).
    let stories: Vec<SentMessage> = (0..3).map(|_| story_with_buttons(&s)).collect();
    s.ig.post_story_by_hand(IG_USER, clock.now() - Span::hours(3), "IMAGE");
    let by_hand =
        s.ig.post_story_by_hand(IG_USER, clock.now() - Span::minutes(1), "IMAGE");
    let pressed = press_posted(&s, &stories[0]);
    let matched = wait_for_story(&s, &by_hand, "the match", |_| true);
    assert_eq!(matched.posted_at, pressed);
    assert_eq!(matched.state, "reading");
    assert_eq!(matched.next_at, Some(pressed + Span::hours(4)));
    let looks = s.ig.calls_to("/stories").len();
    assert_eq!(looks, 1, "one look found it");

    // Two live stories fit the next press: not matched, not guessed.
    let two_went_up = clock.now();
    let first_of_two =
        s.ig.post_story_by_hand(IG_USER, two_went_up - Span::minutes(2), "IMAGE");
    let second_of_two = s.ig.post_story_by_hand(IG_USER, two_went_up, "IMAGE");
    press_posted(&s, &stories[1]);
    let two = wait_until("the story with two fits", WAIT, || {
        tracked(&s)
            .into_iter()
            .nth(1)
            .filter(|row| row.state == "not_matched")
    });
    assert_eq!(two.media_id, None);
    assert!(
        two.error
            .as_deref()
            .is_some_and(|e| e.contains("2 live stories fit the press")),
        "{two:?}"
    );
    assert_eq!(
        s.ig.calls_to("/stories").len(),
        looks + 1,
        "decided at the first look"
    );

    // No live story near the third press (the last went up over half an hour
    // before it): looked for six times, then not matched.
    clock.wait_for(two_went_up + Span::minutes(45));
    let looks = s.ig.calls_to("/stories").len();
    press_posted(&s, &stories[2]);
    let none = wait_until("the story without a fit", WAIT, || {
        tracked(&s)
            .into_iter()
            .nth(2)
            .filter(|row| row.state == "not_matched")
    });
    assert_eq!(none.media_id, None);
    assert_eq!(none.attempts, 5, "five looks without a fit before the last");
    assert_eq!(s.ig.calls_to("/stories").len(), looks + 6);

    // The matched story is read like a published one.
    let read = wait_for_story(
        &s,
        &by_hand,
        "the read of the story posted by hand",
        |row| row.reads == 1,
    );
    assert_between(
        "the first read after the press",
        read.read_after(),
        Span::hours(4),
        Span::hours(4) + LATE,
    );
    assert_eq!(read.numbers(), Some(FakeStoryNumbers::for_media(&by_hand)));
    assert_is_a_read(&insights_calls(&s), &by_hand);
    for unread in [&first_of_two, &second_of_two] {
        assert_eq!(insights_calls_of(&s, unread), 0, "{unread} was not guessed");
    }
}

// ---- restarts ------------------------------------------------------------------------------

#[test]
fn a_final_read_due_while_the_pi_was_off_comes_at_start_inside_the_24_hours() {
    let s = chat_with(&["quotes/a.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let daemon = start(&s, &clock);
    let media_id = publish_next(&s);
    let first = wait_for_story(&s, &media_id, "the first read", |row| row.reads == 1);
    let (status, _) = daemon.terminate();
    assert!(status.success());

    // Off until 20 minutes after the final read was due; a slower clock, so that
    // the 40 minutes left of the story's day are four real seconds.
    let back = first.posted_at + Span::hours(23) + Span::minutes(20);
    let clock = Clock::starting(back, 600.0);
    let _daemon = start(&s, &clock);
    let last = wait_for_story(&s, &media_id, "the final read at start", |row| {
        row.reads == 2
    });
    let read_at = last.read_at.unwrap();
    assert_between(
        "the final read after the start",
        read_at - back,
        Span::zero(),
        Span::minutes(20),
    );
    assert!(
        read_at < last.posted_at + Span::hours(24),
        "inside the 24 hours"
    );
    assert_eq!(last.state, "done");
    assert_eq!(last.next_at, None);
    assert_eq!(last.numbers(), Some(FakeStoryNumbers::for_media(&media_id)));
    let calls = insights_calls(&s);
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_is_a_read(&calls[2..], &media_id);
}

#[test]
fn a_story_whose_24_hours_ended_while_the_pi_was_off_is_closed_without_a_call() {
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let daemon = start(&s, &clock);
    let read_once = publish_next(&s);
    wait_for_story(&s, &read_once, "the first read", |row| row.reads == 1);
    let never_read = publish_next(&s);
    let (status, _) = daemon.terminate();
    assert!(status.success());
    let unread = wait_for_story(&s, &never_read, "the second story", |_| true);
    assert_eq!(unread.reads, 0, "stopped before its first read");
    assert_eq!(insights_calls(&s).len(), 2);

    // Back a day after the second story went up: both stories' days are over.
    let clock = Clock::starting(unread.posted_at + Span::hours(25), FAST);
    let _daemon = start(&s, &clock);
    let expired = wait_for_story(&s, &never_read, "the unread story closed", |row| {
        row.state != "reading"
    });
    assert_eq!(expired.state, "expired");
    assert_eq!((expired.reads, expired.next_at), (0, None));
    assert!(expired.has_no_numbers());
    assert_eq!(
        expired.error.as_deref(),
        Some("its 24 hours ended before a read")
    );
    let done = wait_for_story(&s, &read_once, "the story read once closed", |row| {
        row.state != "reading"
    });
    assert_eq!(done.state, "done", "its first read stands");
    assert_eq!((done.reads, done.next_at), (1, None));
    assert_eq!(
        done.numbers(),
        Some(FakeStoryNumbers::for_media(&read_once))
    );
    assert_eq!(
        done.error.as_deref(),
        Some("its 24 hours ended before the final read")
    );
    assert_eq!(
        insights_calls(&s).len(),
        2,
        "no call for a story Instagram has forgotten"
    );
}

// ---- answers without numbers -----------------------------------------------------------

#[test]
fn not_enough_viewers_and_empty_data_are_stored_as_such_and_shown_without_numbers() {
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let few = publish_next(&s);
    s.ig.set_insights(&few, IgInsights::NotEnoughViewers);
    let empty = publish_next(&s);
    s.ig.set_insights(&empty, IgInsights::Empty);

    for (media_id, result) in [(&few, "not_enough_viewers"), (&empty, "empty")] {
        let row = wait_for_story(&s, media_id, "the first read", |row| row.reads == 1);
        assert_eq!(row.result.as_deref(), Some(result), "{row:?}");
        assert!(row.has_no_numbers(), "{row:?}");
        assert_eq!((row.state.as_str(), row.attempts), ("reading", 0));
        assert_eq!(row.error, None, "a normal answer, not a failure");
        assert_eq!(row.next_at, Some(row.posted_at + Span::hours(23)));
        assert_eq!(
            insights_calls_of(&s, media_id),
            1,
            "no navigation call after an answer without numbers"
        );
    }

    // The chat and the command line count the stories, without numbers.
    let no_numbers = "2 stories of the last 7 days, none with numbers yet.";
    let reply = say(&s.env, CHAT, ADMIN, "/insights");
    assert!(reply.text.contains(no_numbers), "{}", reply.text);
    let chat = CHAT.to_string();
    let out = s.env.run(&["insights", "--chat", &chat]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(no_numbers), "{text}");
    let report = json_report(&s);
    assert_eq!(report["stories"], 2);
    assert_eq!(report["with_numbers"], 0);
    assert_eq!(report["categories"][0]["average_reach"], Value::Null);
    assert_eq!(report["best"], Value::Null);

    // Nothing breaks: the final reads come and say the same.
    for (media_id, result) in [(&few, "not_enough_viewers"), (&empty, "empty")] {
        let row = wait_for_story(&s, media_id, "the final read", |row| row.reads == 2);
        assert_eq!(row.result.as_deref(), Some(result));
        assert_eq!((row.state.as_str(), row.next_at), ("done", None));
        assert_eq!(insights_calls_of(&s, media_id), 2);
    }
    let runs = runs_of_insights(&s);
    assert!(runs.iter().all(|(outcome, _)| outcome == "ok"), "{runs:?}");
}

/// `storyline insights --json`: the chat's report.
fn json_report(s: &Setup) -> Value {
    let out = s.env.run(&["insights", "--json"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["chat_id"], CHAT);
    reports[0]["report"].clone()
}

// ---- the insights permission -------------------------------------------------------------

#[test]
fn without_the_insights_permission_the_chat_is_told_once_and_publishing_goes_on() {
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg", "quotes/c.jpg"], true);
    s.ig.deny_insights_permission(IG_USER);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let first = publish_next(&s);
    let second = publish_next(&s);

    let notice = wait_until("the notice", LONG_WAIT, || {
        s.env
            .tg
            .messages(CHAT)
            .into_iter()
            .find(|m| m.text.contains(PERMISSION_NOTICE))
    });
    assert!(notice.text.contains("/connect"), "{}", notice.text);
    for media_id in [&first, &second] {
        let row = wait_for_story(&s, media_id, "the story closed", |row| {
            row.state != "reading"
        });
        assert_eq!(row.state, "no_permission", "{row:?}");
        assert_eq!((row.reads, row.next_at), (0, None));
    }
    assert_eq!(
        insights_calls(&s).len(),
        1,
        "the first read found out; the second story asked nothing"
    );
    let (granted, told): (Option<i64>, Option<String>) = s
        .env
        .db()
        .query_row(
            "SELECT insights_granted, insights_told_at FROM instagram_accounts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(granted, Some(0));
    assert!(told.is_some());

    // Publishing goes on; the next story is not read, and not told about again.
    let third = publish_next(&s);
    let row = wait_for_story(&s, &third, "the third story closed", |row| {
        row.state != "reading"
    });
    assert_eq!(row.state, "no_permission");
    assert_eq!(insights_calls(&s).len(), 1, "no more insights calls");
    assert_eq!(s.ig.published().len(), 3);
    assert_eq!(count_messages(&s, PERMISSION_NOTICE), 1, "told once");
}

// ---- /insights and the command line -----------------------------------------------------

/// What `/insights` says of a category: its stories, then average reach,
/// completion, replies, shares and follows, from the stored numbers.
fn category_line(rows: &[&Tracked]) -> String {
    let numbers: Vec<FakeStoryNumbers> = rows.iter().map(|row| row.numbers().unwrap()).collect();
    let count = numbers.len() as f64;
    let reach = numbers.iter().map(|n| n.reach as f64).sum::<f64>() / count;
    let completion = numbers
        .iter()
        .map(|n| 1.0 - (n.tap_exit + n.swipe_forward) as f64 / n.views as f64)
        .sum::<f64>()
        / count;
    let sum = |f: fn(&FakeStoryNumbers) -> u64| numbers.iter().map(f).sum::<u64>();
    let words = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let stories = words(rows.len() as u64, "story", "stories");
    format!(
        "{stories}\nreach {} · completion {} % · {} · {} · {}",
        reach.round(),
        (completion * 100.0).round(),
        words(sum(|n| n.replies), "reply", "replies"),
        words(sum(|n| n.shares), "share", "shares"),
        words(sum(|n| n.follows), "follow", "follows"),
    )
}

#[test]
fn insights_in_the_chat_and_on_the_command_line_show_the_stored_numbers_per_category() {
    let s = chat_with(&["quotes/a.jpg", "tips/b.jpg", "tips/c.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let ids: Vec<String> = (0..3).map(|_| publish_next(&s)).collect();
    for media_id in &ids {
        wait_for_story(&s, media_id, "the first read", |row| row.reads == 1);
    }
    let rows = tracked(&s);
    let of = |category: &str| -> Vec<&Tracked> {
        rows.iter().filter(|row| row.category == category).collect()
    };
    let (quotes, tips) = (of("quotes"), of("tips"));
    assert_eq!((quotes.len(), tips.len()), (1, 2));

    let reply = say(&s.env, CHAT, ADMIN, "/insights");
    let text = &reply.text;
    assert!(
        text.starts_with("📊 <b>Insights</b> · the last 7 days"),
        "{text}"
    );
    assert!(text.contains("3 stories, 3 with numbers"), "{text}");
    for (category, rows) in [("quotes", &quotes), ("tips", &tips)] {
        let expected = format!("<b>{category}</b> · {}", category_line(rows));
        assert!(text.contains(&expected), "{expected:?} in\n{text}");
    }
    let best = rows
        .iter()
        .max_by_key(|row| row.numbers().unwrap().reach)
        .unwrap();
    let best_reach = best.numbers().unwrap().reach;
    let best_line = format!(
        "🏆 <b>Best</b>: {} ({}) · reach {best_reach} · completion ",
        best.path.rsplit('/').next().unwrap(),
        best.category
    );
    assert!(text.contains(&best_line), "{best_line:?} in\n{text}");

    let usage = say(&s.env, CHAT, ADMIN, "/insights 0");
    assert_eq!(
        usage.text,
        "The period is a number of days from 1 to 365, like /insights 7 or /insights 30.\n\
         Without a number, /insights shows the last 7 days."
    );
    let month = say(&s.env, CHAT, ADMIN, "/insights 30");
    assert!(month.text.contains("the last 30 days"), "{}", month.text);

    let report = json_report(&s);
    assert_eq!(
        (report["stories"].clone(), report["with_numbers"].clone()),
        (3.into(), 3.into())
    );
    let categories = report["categories"].as_array().unwrap();
    let names: Vec<&str> = categories
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quotes", "tips"]);
    for (category, rows) in categories.iter().zip([&quotes, &tips]) {
        let reach: f64 = rows
            .iter()
            .map(|row| row.numbers().unwrap().reach as f64)
            .sum::<f64>()
            / rows.len() as f64;
        assert_eq!(
            category["average_reach"].as_f64(),
            Some(reach),
            "{category}"
        );
        let replies: u64 = rows.iter().map(|row| row.numbers().unwrap().replies).sum();
        assert_eq!(category["replies"], replies, "{category}");
        assert_eq!(category["stories"], rows.len(), "{category}");
    }
    assert_eq!(report["best"]["reach"], best_reach);

    let out = s.env.run(&["insights"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("Chat {CHAT} (UTC):\n")), "{text}");
    assert!(text.contains("3 stories, 3 with numbers"), "{text}");
}

#[test]
fn storyline_insights_fetch_reads_every_story_inside_its_window_at_once() {
    // On the wall clock: `storyline insights fetch` keeps the wall clock's time.
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg"], false);
    let daemon = s.env.start_polling();
    // One story published through the API (🤖 Auto post), one posted by hand.
    let story = story_with_buttons(&s);
    press_data(
        &s.env,
        CHAT,
        ADMIN,
        story.message_id,
        &button_data(&story, "🤖 Auto post"),
    );
    let published = wait_until("the publish", WAIT, || s.ig.published().pop());
    wait_until("the published story tracked", WAIT, || {
        tracked(&s)
            .into_iter()
            .find(|row| row.media_id.as_deref() == Some(published.as_str()))
    });
    let by_hand =
        s.ig.post_story_by_hand(IG_USER, Utc::now() - Span::minutes(1), "IMAGE");
    let story = story_with_buttons(&s);
    press_posted(&s, &story);
    let (status, _) = daemon.terminate();
    assert!(status.success());
    assert!(insights_calls(&s).is_empty(), "nothing read yet");
    assert!(s.ig.calls_to("/stories").is_empty(), "nothing matched yet");

    let out = s.env.run(&["insights", "fetch"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 stories inside their 24 hours: 2 read, 1 matched, 0 failed (tried again later), 0 closed.\n"
    );
    for media_id in [&published, &by_hand] {
        let row = wait_for_story(&s, media_id, "the read", |row| row.reads == 1);
        assert_eq!(row.state, "reading");
        assert_eq!(row.numbers(), Some(FakeStoryNumbers::for_media(media_id)));
        assert_eq!(
            row.next_at,
            Some(row.posted_at + Span::hours(23)),
            "the final read stays where it was"
        );
        assert_is_a_read(&s.ig.calls_to(&format!("/{media_id}/insights")), media_id);
    }
    assert_eq!(s.ig.calls_to("/stories").len(), 1);
}

#[test]
fn an_account_connected_without_the_permission_is_never_read_and_its_chat_told_once() {
    const SHOP: &str = "17841400000000099";
    const CODE: &str = "AQD-insights-declined";
    let s = chat_with(&["quotes/a.jpg", "quotes/b.jpg"], true);
    let config = std::fs::read_to_string(s.env.config_path()).unwrap();
    s.env.write_config_raw(&config.replace(
        "[instagram]\n",
        "[instagram]\napp_id = \"123456789\"\napp_secret = \"app-SECRET-value\"\n",
    ));
    // The person logs in as @shop and declines the insights.
    s.ig.set_token("IGAA-shop-SECRET-token", SHOP, "shop");
    s.ig.deny_insights_permission(SHOP);
    s.ig.expect_code(CODE);

    // Connected on the wall clock (a login link lasts minutes of daemon time).
    let daemon = s.env.start_polling();
    let reply = say(&s.env, CHAT, ADMIN, "/connect");
    let link = reply.reply_markup.expect("a button")["inline_keyboard"][0][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let state = link.split("state=").nth(1).unwrap();
    let public = link.split("/oauth/").next().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let callback = format!("{public}/oauth/callback?code={CODE}&state={state}");
    let status = wait_until("the callback page", WAIT, || {
        agent.get(&callback).call().ok()
    })
    .status()
    .as_u16();
    assert_eq!(status, 200);
    wait_until("the chat told it is connected", WAIT, || {
        (count_messages(&s, "@shop is connected") == 1).then_some(())
    });
    let granted: Option<i64> = s
        .env
        .db()
        .query_row(
            "SELECT insights_granted FROM instagram_accounts WHERE instagram_user_id = ?1",
            [SHOP],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(granted, Some(0), "what the login granted is stored");
    let (status, _) = daemon.terminate();
    assert!(status.success());

    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let first = publish_next(&s);
    let second = publish_next(&s);
    for media_id in [&first, &second] {
        let row = wait_for_story(&s, media_id, "the story closed", |row| {
            row.state != "reading"
        });
        assert_eq!(row.state, "no_permission", "{row:?}");
    }
    wait_until("the notice", WAIT, || {
        (count_messages(&s, "cannot read the insights of @shop") == 1).then_some(())
    });
    assert!(
        insights_calls(&s).is_empty(),
        "a permission known to be missing is not tried"
    );
    assert_eq!(
        count_messages(&s, "cannot read the insights of"),
        1,
        "told once"
    );
}

#[test]
fn a_failed_read_is_tried_again_after_a_pause_and_then_stored() {
    let s = chat_with(&["quotes/a.jpg"], true);
    let clock = Clock::starting(two_days_ago_at_2(), FAST);
    let _daemon = start(&s, &clock);
    let media_id = publish_next(&s);
    // Instagram is down for the first two tries of the first read.
    s.ig.fail_next("/insights", 2, crate::support::IgFault::Status(503));
    let row = wait_for_story(&s, &media_id, "the first read", |row| row.reads == 1);
    // Tried at 4 h, again 5 minutes later, then 10 minutes after that.
    assert_between(
        "the read after going live",
        row.read_after(),
        Span::hours(4) + Span::minutes(15),
        Span::hours(4) + Span::minutes(15) + LATE,
    );
    assert_eq!(row.numbers(), Some(FakeStoryNumbers::for_media(&media_id)));
    assert_eq!((row.attempts, row.error.as_deref()), (0, None));
    let statuses: Vec<Option<u16>> = insights_calls(&s).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(200), Some(200)]);
    let outcomes: Vec<String> = runs_of_insights(&s).into_iter().map(|(o, _)| o).collect();
    assert_eq!(outcomes, ["failed", "failed", "ok"]);
}
