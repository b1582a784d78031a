//! Story insights: which stories are read (`track_published`,
//! `track_posted_by_hand`), and each step of a story's reads as the publisher
//! thread walks them (`run_due`): find a hand-posted story among the account's
//! live stories, a first read a few hours in, a final read an hour before
//! Instagram forgets the story. All HTTP here runs on the publisher thread (or in
//! `storyline insights fetch`), never on the core loop; insight calls do not
//! touch the publishing quota.
//!
//! Instagram's "not enough viewers" (#10) and an empty answer are stored as
//! such. A token without `instagram_business_manage_insights` stops the reads of
//! that account's stories and its chats are told once how to grant it;
//! publishing goes on unchanged.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use log::{info, warn};
use rusqlite::Connection;

use crate::bot::accounts::{self, AccountChoice, TokenState};
use crate::config::Secret;
use crate::crypto::KEY_LEN;
use crate::db;
use crate::db::insights::{NewStory, Tracked};
use crate::domain::insights::{self, StoryMetrics};
use crate::domain::status::{InsightResult, InsightState, MediaKind};
use crate::domain::ui;
use crate::instagram::{Graph, GraphError, LiveStory, MediaType, StoryInsights, StoryNumbers};
use crate::media::chart;
use crate::telegram::{self, Outgoing};

/// Instagram keeps a story's insights this long after it went live.
pub const WINDOW: Duration = Duration::hours(24);
/// The first read, once most of a story's viewers have seen it.
pub const FIRST_READ_AFTER: Duration = Duration::hours(4);
/// The final read, an hour before the window ends.
pub const FINAL_READ_AFTER: Duration = Duration::hours(23);
/// A story posted by hand is looked for this long after the press...
pub const MATCH_AFTER: Duration = Duration::minutes(2);
/// ...and given up as not matched after this many looks without a single fit.
const MATCH_LOOKS: u32 = 6;
const MATCH_EVERY: Duration = Duration::minutes(5);
/// A live story fits a press when it went live this long before the press, or
/// up to `FIT_AFTER` after it (people press first, then post, too).
const FIT_BEFORE: Duration = Duration::minutes(30);
const FIT_AFTER: Duration = Duration::minutes(10);
/// A failed read is tried again after 5, 10, 20, 40 minutes, then every hour.
const RETRY_FIRST: Duration = Duration::minutes(5);
const RETRY_MOST: Duration = Duration::hours(1);
/// At most this many stories per pass (the rest are due at the next).
const PASS_LIMIT: u32 = 50;

/// What a pass did, for the runs table and the log.
#[derive(Debug, Default)]
pub struct Pass {
    pub due: usize,
    pub read: usize,
    pub matched: usize,
    pub failed: usize,
    pub closed: usize,
    /// The pass took as many stories as it may: more may be due now.
    pub full: bool,
    /// Messages to chats (the permission notice), for the outbox.
    pub out: Vec<Outgoing>,
}

/// A story the API published: its reads start `FIRST_READ_AFTER` from now.
pub fn track_published(
    conn: &Connection,
    queue_id: i64,
    chat_id: i64,
    account_id: i64,
    category: &str,
    media_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    db::insights::track(
        conn,
        &NewStory {
            queue_id,
            chat_id,
            account_id,
            category: category.to_string(),
            media_id: Some(media_id.to_string()),
            posted_at: now,
            first_step_at: now + FIRST_READ_AFTER,
        },
    )?;
    Ok(())
}

/// A story a person marked ✅ Posted: when the chat has an account, it is looked
/// for among the account's live stories `MATCH_AFTER` from now.
pub fn track_posted_by_hand(
    conn: &Connection,
    queue_id: i64,
    chat_id: i64,
    category: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let AccountChoice::Account(account) = accounts::active_account_for_chat(conn, chat_id)? else {
        return Ok(());
    };
    db::insights::track(
        conn,
        &NewStory {
            queue_id,
            chat_id,
            account_id: account.id,
            category: category.to_string(),
            media_id: None,
            posted_at: now,
            first_step_at: now + MATCH_AFTER,
        },
    )?;
    Ok(())
}

/// The next step of every story due at `now` (`all`: of every story still
/// inside its window, due or not — `storyline insights fetch`, which also reads
/// a story posted by hand in the step that matches it).
pub fn run_due(
    conn: &Connection,
    graph: &Graph,
    key: Option<&[u8; KEY_LEN]>,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Pass> {
    let stories = if all {
        db::insights::pending(conn)?
    } else {
        db::insights::due(conn, now, PASS_LIMIT)?
    };
    let mut pass = Pass {
        due: stories.len(),
        full: !all && stories.len() >= PASS_LIMIT as usize,
        ..Pass::default()
    };
    for story in stories {
        step(conn, graph, key, &story, all, now, &mut pass)?;
    }
    Ok(pass)
}

fn step(
    conn: &Connection,
    graph: &Graph,
    key: Option<&[u8; KEY_LEN]>,
    story: &Tracked,
    read_now: bool,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<()> {
    let window_ends = story.posted_at + WINDOW;
    if now >= window_ends {
        // The Pi was off, or every try failed: Instagram has forgotten the story.
        // A story read once keeps that read's numbers.
        let (state, why) = if story.reads > 0 {
            (
                InsightState::Done,
                "its 24 hours ended before the final read",
            )
        } else {
            (InsightState::Expired, "its 24 hours ended before a read")
        };
        db::insights::close(conn, story.id, state, Some(why))?;
        pass.closed += 1;
        return Ok(());
    }
    if db::insights::permission(conn, story.account_id)? == Some(false) {
        return no_permission(conn, story, now, pass);
    }
    let token = match accounts::usable_token(conn, key, story.account_id, now)? {
        TokenState::Valid { token, .. } => token,
        // Told elsewhere (refresh reports, /status); the window decides the rest.
        TokenState::Expired | TokenState::ReconnectNeeded => {
            return retry(conn, story, "the account's token cannot be used", now, pass);
        }
    };
    let Some(account) = db::accounts::account(conn, story.account_id)? else {
        db::insights::close(
            conn,
            story.id,
            InsightState::Expired,
            Some("the account is gone"),
        )?;
        pass.closed += 1;
        return Ok(());
    };
    let matched: Tracked;
    let (story, media_id) = match story.media_id.clone() {
        Some(media_id) => (story, media_id),
        None => {
            let live = match graph.live_stories(&account.instagram_user_id, &token) {
                Ok(live) => live,
                Err(e) => return failed(conn, story, &e, now, pass),
            };
            let claimed = db::insights::claimed_media_ids(conn, story.account_id, now - WINDOW)?;
            let kind = story_kind(conn, story.queue_id)?;
            match fitting(&live, &claimed, kind, story.posted_at) {
                Fit::One(media_id) => {
                    info!(
                        "chat {}: the story of queue item {} is Instagram media {media_id}",
                        story.chat_id, story.queue_id
                    );
                    let read_at = next_read(story, now);
                    db::insights::set_matched(conn, story.id, &media_id, read_at)?;
                    pass.matched += 1;
                    // `storyline insights fetch` reads it at once, as it reads every
                    // story; so does a match made after the first read's time.
                    if !read_now && read_at > now {
                        return Ok(());
                    }
                    matched = Tracked {
                        media_id: Some(media_id.clone()),
                        state: InsightState::Reading,
                        attempts: 0,
                        next_at: Some(read_at),
                        ..story.clone()
                    };
                    (&matched, media_id)
                }
                Fit::None if story.attempts + 1 < MATCH_LOOKS => {
                    db::insights::retry_at(
                        conn,
                        story.id,
                        "no live story fits yet",
                        now + MATCH_EVERY,
                    )?;
                    return Ok(());
                }
                Fit::None => {
                    db::insights::close(
                        conn,
                        story.id,
                        InsightState::NotMatched,
                        Some("no live story of the account fits the press"),
                    )?;
                    pass.closed += 1;
                    return Ok(());
                }
                Fit::Several(count) => {
                    // Two stories went live around the press: guessing would give one
                    // story's numbers to the other.
                    db::insights::close(
                        conn,
                        story.id,
                        InsightState::NotMatched,
                        Some(&format!("{count} live stories fit the press; not guessed")),
                    )?;
                    pass.closed += 1;
                    return Ok(());
                }
            }
        }
    };
    read(conn, graph, story, &media_id, &token, now, pass)
}

/// One read of a story's numbers: the first, or the final one once its time came.
fn read(
    conn: &Connection,
    graph: &Graph,
    story: &Tracked,
    media_id: &str,
    token: &Secret,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<()> {
    let (result, metrics) = match graph.story_insights(media_id, token) {
        Ok(StoryInsights::Numbers(numbers)) => (InsightResult::Numbers, metrics_of(&numbers)),
        Ok(StoryInsights::NotEnoughViewers) => {
            (InsightResult::NotEnoughViewers, StoryMetrics::default())
        }
        Ok(StoryInsights::NoData) => (InsightResult::Empty, StoryMetrics::default()),
        Err(e) => return failed(conn, story, &e, now, pass),
    };
    let final_at = story.posted_at + FINAL_READ_AFTER;
    let (reads, next_at) = if now >= final_at {
        (2, None)
    } else {
        (1, Some(final_at))
    };
    db::insights::store_read(conn, story.id, reads, result, &metrics, next_at, now)?;
    if db::insights::permission(conn, story.account_id)?.is_none() {
        db::insights::set_permission(conn, story.account_id, Some(true))?;
    }
    pass.read += 1;
    Ok(())
}

// ---- /insights ------------------------------------------------------------------------

/// `/insights [N]`: the chat's results per category over the last N days (7 by
/// default), as a chart with the numbers in its caption; the text alone when no
/// story has numbers yet (or the chart cannot be drawn).
pub fn show(
    tx: &rusqlite::Transaction<'_>,
    ctx: &super::Context<'_>,
    chat_id: i64,
    args: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let days = match insights::parse_days(args) {
        Ok(days) => days,
        Err(error) => {
            out.push(telegram::send_message(
                chat_id,
                &ui::insights::insights_usage_text(&error),
                None,
            ));
            return Ok(());
        }
    };
    let (_, resolved) = super::current_settings(tx, ctx, chat_id)?;
    let (since, until) = insights::last_days(ctx.now, days);
    let stories = db::insights::results(tx, chat_id, since, until)?;
    let report = insights::report(&stories, since, until);
    let caption = ui::insights::insights_caption(&report, resolved.timezone);
    if report.has_numbers() {
        if let Some(png) = chart_png(chat_id, &report) {
            out.push(telegram::send_drawn_photo(
                chat_id,
                &png,
                "insights.png",
                &caption,
            ));
            return Ok(());
        }
    }
    out.push(telegram::send_message(chat_id, &caption, None));
    Ok(())
}

/// The chart of `report` as a PNG, or None when it cannot be drawn. It travels
/// in the outbox row with its caption (a few KB): a file of the chat's, drawn
/// again by its next /insights while this one still waited to be sent, would
/// have gone out under this caption.
fn chart_png(chat_id: i64, report: &insights::InsightsReport) -> Option<Vec<u8>> {
    let rows: Vec<chart::ChartRow> = report
        .categories
        .iter()
        .map(chart::ChartRow::from)
        .collect();
    match chart::insights_chart(&rows) {
        Ok(png) => Some(png),
        Err(e) => {
            warn!("chat {chat_id}: drawing the insights chart: {e:#}");
            None
        }
    }
}

/// After a match: read now when the first read's time has passed, else then.
fn next_read(story: &Tracked, now: DateTime<Utc>) -> DateTime<Utc> {
    (story.posted_at + FIRST_READ_AFTER).max(now)
}

fn failed(
    conn: &Connection,
    story: &Tracked,
    error: &GraphError,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<()> {
    if error.is_missing_permission() {
        db::insights::set_permission(conn, story.account_id, Some(false))?;
        return no_permission(conn, story, now, pass);
    }
    warn!(
        "chat {}: reading the insights of queue item {}: {error}",
        story.chat_id, story.queue_id
    );
    retry(conn, story, &error.to_string(), now, pass)
}

fn retry(
    conn: &Connection,
    story: &Tracked,
    error: &str,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<()> {
    pass.failed += 1;
    let wait = RETRY_FIRST * 2i32.saturating_pow(story.attempts.min(8));
    let last_chance = story.posted_at + WINDOW - Duration::minutes(5);
    let at = (now + wait.min(RETRY_MOST)).min(last_chance.max(now + Duration::minutes(1)));
    db::insights::retry_at(conn, story.id, error, at)
}

/// The account cannot read insights: its stories are not read, and its chats are
/// told how to grant the permission, once.
fn no_permission(
    conn: &Connection,
    story: &Tracked,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<()> {
    db::insights::close(
        conn,
        story.id,
        InsightState::NoPermission,
        Some("the account was connected without instagram_business_manage_insights"),
    )?;
    pass.closed += 1;
    if db::insights::mark_permission_told(conn, story.account_id, now)? {
        let name = crate::bot::publish::account_name(conn, story.account_id)?;
        for chat_id in accounts::chats_using_account(conn, story.account_id)? {
            pass.out.push(telegram::send_message(
                chat_id,
                &ui::insights_permission_text(&name),
                None,
            ));
        }
    }
    Ok(())
}

/// The kind of the story's file, to tell a photo from a video among live stories.
fn story_kind(conn: &Connection, queue_id: i64) -> Result<Option<MediaKind>> {
    let Some(slot) = db::queue::queue_item(conn, queue_id)? else {
        return Ok(None);
    };
    let Some(item_id) = slot.media_item_id else {
        return Ok(None);
    };
    Ok(db::media::item_by_id(conn, item_id)?.map(|item| item.kind))
}

#[derive(Debug, PartialEq, Eq)]
enum Fit {
    One(String),
    None,
    Several(usize),
}

/// The live story a press at `pressed` is about: unclaimed, of the file's kind,
/// gone live between `FIT_BEFORE` before the press and `FIT_AFTER` after it.
fn fitting(
    live: &[LiveStory],
    claimed: &[String],
    kind: Option<MediaKind>,
    pressed: DateTime<Utc>,
) -> Fit {
    let fits: Vec<&LiveStory> = live
        .iter()
        .filter(|story| !claimed.contains(&story.id))
        .filter(|story| {
            story.timestamp >= pressed - FIT_BEFORE && story.timestamp <= pressed + FIT_AFTER
        })
        .filter(|story| {
            !matches!(
                (kind, &story.media_type),
                (Some(MediaKind::Image), MediaType::Video)
                    | (Some(MediaKind::Video), MediaType::Image)
            )
        })
        .collect();
    match fits.as_slice() {
        [] => Fit::None,
        [one] => Fit::One(one.id.clone()),
        several => Fit::Several(several.len()),
    }
}

fn metrics_of(numbers: &StoryNumbers) -> StoryMetrics {
    StoryMetrics {
        views: numbers.views,
        reach: numbers.reach,
        replies: numbers.replies,
        shares: numbers.shares,
        total_interactions: numbers.total_interactions,
        follows: numbers.follows,
        profile_visits: numbers.profile_visits,
        tap_forward: numbers.navigation.tap_forward,
        tap_back: numbers.navigation.tap_back,
        tap_exit: numbers.navigation.tap_exit,
        swipe_forward: numbers.navigation.swipe_forward,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn live(id: &str, minute: i64, media_type: MediaType) -> LiveStory {
        LiveStory {
            id: id.into(),
            timestamp: at(minute),
            media_type,
        }
    }

    #[test]
    fn a_press_is_matched_only_to_one_unclaimed_story_of_its_kind_and_time() {
        let stories = [
            live("old", -120, MediaType::Image),
            live("photo", -3, MediaType::Image),
            live("video", -2, MediaType::Video),
        ];
        let none: Vec<String> = Vec::new();
        assert_eq!(
            fitting(&stories, &none, Some(MediaKind::Image), at(0)),
            Fit::One("photo".into())
        );
        assert_eq!(
            fitting(&stories, &none, Some(MediaKind::Video), at(0)),
            Fit::One("video".into())
        );
        // Unsure: two fit.
        assert_eq!(fitting(&stories, &none, None, at(0)), Fit::Several(2));
        // A claimed story is another press's.
        assert_eq!(
            fitting(
                &stories,
                &["photo".to_string()],
                Some(MediaKind::Image),
                at(0)
            ),
            Fit::None
        );
        // Posted after the press, within ten minutes, fits; an hour later does not.
        assert_eq!(
            fitting(
                &[live("late", 8, MediaType::Image)],
                &none,
                Some(MediaKind::Image),
                at(0)
            ),
            Fit::One("late".into())
        );
        assert_eq!(
            fitting(
                &[live("later", 60, MediaType::Image)],
                &none,
                Some(MediaKind::Image),
                at(0)
            ),
            Fit::None
        );
    }
}
