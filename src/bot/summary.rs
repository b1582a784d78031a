//! The daily summary on the scheduler tick: for each chat at its local hour, the
//! day before and what is ahead, sent once per local date. Which date is due is
//! `domain::summary::due` (pure); the figures come from `db::summary`, the words
//! from `ui::daily_summary_text`. The date is recorded in the transaction that
//! enqueues the message, so a restart neither loses nor repeats a summary.

use anyhow::Result;
use chrono::{DateTime, Utc};
use log::info;
use rusqlite::Connection;

use crate::bot::accounts;
use crate::db;
use crate::domain::rows::ChatAccount;
use crate::domain::settings::ChatSettings;
use crate::domain::summary::{self, Summary};
use crate::domain::ui;
use crate::telegram::{self, Outgoing};

/// How many of the next slots a summary names.
const NEXT_SLOTS: usize = 3;

/// Sends the chat's summary if one is due at `now` (and records it).
pub fn send_if_due(
    conn: &Connection,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let Some(hour) = s.daily_summary_hour else {
        return Ok(());
    };
    let Some(created) = db::summary::chat_created_at(conn, chat_id)? else {
        return Ok(());
    };
    let last_sent = db::summary::last_sent_date(conn, chat_id)?;
    let Some(due) = summary::due(now, s.timezone, hour, created, last_sent) else {
        return Ok(());
    };
    if !db::summary::record_sent(conn, chat_id, due.local_date, due.covers, due.late, now)? {
        return Ok(());
    }
    // Recorded in the tick's transaction with the summary itself: both or neither.
    let mut run = db::runs::begin(crate::domain::status::RunKind::Summary, Some(chat_id), now);
    run.count("late", u8::from(due.late));
    let data = gather(
        conn,
        key,
        chat_id,
        s,
        due.covers,
        due.late.then_some(hour),
        now,
    )?;
    info!(
        "chat {chat_id}: daily summary for {}{}",
        due.local_date,
        if due.late { " (late)" } else { "" }
    );
    out.push(telegram::send_message(
        chat_id,
        &ui::daily_summary_text(&data, s.timezone),
        None,
    ));
    run.finish(conn, Ok(()), now);
    Ok(())
}

/// The figures of the chat's summary of `covers` (a local date).
pub fn gather(
    conn: &Connection,
    key: Option<&[u8; 32]>,
    chat_id: i64,
    s: &ChatSettings,
    covers: chrono::NaiveDate,
    late_hour: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let token = match accounts::chat_account(conn, key, chat_id, now)? {
        ChatAccount::Account { account, token } => {
            let handle = match &account.username {
                Some(username) => format!("@{username}"),
                None => account.display_name.clone(),
            };
            Some((handle, token))
        }
        ChatAccount::NeedsChoice | ChatAccount::None => None,
    };
    Ok(Summary {
        covers,
        late_hour,
        categories: db::summary::day_by_category(conn, chat_id, covers)?,
        publishing: db::summary::day_publishing(conn, chat_id, covers)?,
        eligible: db::queue::count_eligible(conn, chat_id, now, usize::MAX >> 1)?,
        posts_per_day: s.posts_per_day,
        token,
        paused: s.is_paused,
        next_slots: db::summary::next_slots(conn, chat_id, NEXT_SLOTS)?,
        waiting_for_decision: db::summary::waiting_for_decision(conn, chat_id)?,
        unknown_outcomes: db::summary::unknown_outcomes(conn, chat_id)?,
        results: day_results(conn, chat_id, covers, now)?,
    })
}

/// The insights of the stories of `covers` read so far; None when none was tracked.
fn day_results(
    conn: &Connection,
    chat_id: i64,
    covers: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> Result<Option<crate::domain::insights::InsightsReport>> {
    let stories = db::insights::results_of_day(conn, chat_id, covers)?;
    if stories.is_empty() {
        return Ok(None);
    }
    let since = stories.iter().map(|s| s.posted_at).min().unwrap_or(now);
    Ok(Some(crate::domain::insights::report(&stories, since, now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings;

    const CHAT: i64 = -1_009;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn texts(out: &[Outgoing]) -> Vec<String> {
        out.iter()
            .filter_map(|o| o.params["text"].as_str().map(str::to_string))
            .collect()
    }

    /// What happened on 2030-01-04 (slots of every outcome, two categories, a
    /// publish of each result) is what the summary of 2030-01-05 09:00 counts.
    #[test]
    fn the_summary_counts_what_happened_and_goes_once() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        db::migrate(&mut conn).unwrap();
        let tx = conn.transaction().unwrap();
        db::insert_chat(&tx, CHAT, None, None, at("2030-01-01T10:00:00Z")).unwrap();
        tx.commit().unwrap();
        conn.execute_batch(
            "INSERT INTO media_items (id, path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
             VALUES (1, 'quotes/a.jpg', 'quotes', 'image', 1, 1, 'a', '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z'),
                    (2, 'tips/b.jpg', 'tips', 'image', 1, 1, 'b', '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z'),
                    (3, 'tips/c.jpg', 'tips', 'image', 1, 1, 'c', '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z');
             INSERT INTO instagram_accounts (id, display_name, instagram_user_id, created_at, updated_at)
             VALUES (1, 'Brand', '1784', '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z');
             INSERT INTO chat_media (chat_id, sha256, category, shuffle)
             SELECT -1009, sha256, category, id FROM media_items;",
        )
        .unwrap();
        // (window date, item, status, publish job: (state, dry run))
        type Slot = (
            &'static str,
            Option<i64>,
            &'static str,
            Option<(&'static str, bool)>,
        );
        let slots: [Slot; 11] = [
            ("2030-01-04", Some(1), "posted", Some(("published", false))),
            ("2030-01-04", Some(1), "posted", None),
            ("2030-01-04", Some(1), "skipped", None),
            ("2030-01-04", Some(2), "rejected", None),
            ("2030-01-04", Some(2), "missed", None),
            ("2030-01-04", Some(2), "sent", Some(("failed", false))),
            ("2030-01-04", Some(3), "failed", Some(("failed", false))),
            ("2030-01-04", None, "failed", None),
            ("2030-01-03", Some(1), "posted", None),
            ("2030-01-03", Some(2), "sent", Some(("unknown", false))),
            ("2030-01-05", Some(3), "pending", None),
        ];
        for (i, (date, item, status, job)) in slots.iter().enumerate() {
            let id = i as i64 + 1;
            conn.execute(
                "INSERT INTO posting_queue (id, chat_id, scheduled_for, window_date, sha256, media_item_id, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, (SELECT sha256 FROM media_items WHERE id = ?5), ?5, ?6, '2030-01-01T00:00:00Z')",
                rusqlite::params![id, CHAT, format!("{date}T1{}:00:00Z", i % 10), date, item, status],
            )
            .unwrap();
            if let Some((state, dry_run)) = job {
                conn.execute(
                    "INSERT INTO publish_jobs (queue_id, chat_id, account_id, dry_run, state, created_at, updated_at)
                     VALUES (?1, ?2, 1, ?3, ?4, '2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z')",
                    rusqlite::params![id, CHAT, dry_run, state],
                )
                .unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse(
            "[telegram]\nbot_token = \"1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n",
            std::path::Path::new("storyline.toml"),
            dir.path(),
            &|_| None,
        )
        .unwrap();
        let s = settings::resolve(&db::chat(&conn, CHAT).unwrap().unwrap(), &config.defaults);
        assert_eq!(s.daily_summary_hour, Some(9));

        // Yesterday's went out at its hour.
        let (jan4, jan3) = ("2030-01-04".parse().unwrap(), "2030-01-03".parse().unwrap());
        db::summary::record_sent(&conn, CHAT, jan4, jan3, false, at("2030-01-04T09:00:00Z"))
            .unwrap();
        let mut out = Vec::new();
        send_if_due(&conn, None, CHAT, &s, at("2030-01-05T08:59:00Z"), &mut out).unwrap();
        assert!(out.is_empty(), "before the hour: {out:?}");
        send_if_due(&conn, None, CHAT, &s, at("2030-01-05T09:00:30Z"), &mut out).unwrap();
        let sent = texts(&out);
        assert_eq!(sent.len(), 1, "{sent:?}");
        let text = &sent[0];
        for line in [
            "🗞 <b>Daily summary</b> · Fri 04 Jan\n\n",
            "<b>Yesterday</b>: 8 stories",
            "• quotes: 2 posted · 1 skipped\n",
            "• tips: 1 rejected · 1 failed · 1 missed · 1 open\n",
            "• nothing left to pick: 1 failed\n",
            "Total: 2 posted · 1 skipped · 1 rejected · 2 failed · 1 missed · 1 open\n",
            "<b>Publishing</b>: 1 published by the API · 1 fell back to people · 1 failed\n",
            // a, b and c are eligible (nothing locks them here): 3 items at 3 a day.
            "⚠️ 1 day of stories left (3 items at 3 a day)",
            "⏭ Next: Sat 05 Jan 10:00 UTC",
            "• 2 stories waiting for a decision in this chat",
            "• 1 publish with an unknown outcome",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains("late"), "{text}");
        let runs = db::runs::runs_since(&conn, None, 10).unwrap();
        assert_eq!(
            runs.iter()
                .map(|r| (r.kind, r.chat_id, r.outcome))
                .collect::<Vec<_>>(),
            [(
                crate::domain::status::RunKind::Summary,
                Some(CHAT),
                Some(crate::domain::status::RunOutcome::Ok)
            )],
            "the summary is a run"
        );

        out.clear();
        send_if_due(&conn, None, CHAT, &s, at("2030-01-05T23:59:00Z"), &mut out).unwrap();
        assert!(out.is_empty(), "one a day: {out:?}");
        send_if_due(&conn, None, CHAT, &s, at("2030-01-06T12:00:00Z"), &mut out).unwrap();
        assert_eq!(texts(&out).len(), 1);
        assert!(texts(&out)[0].contains("(late: Storyline was not running at 09:00)"));
        assert_eq!(
            db::summary::sent(&conn, CHAT).unwrap(),
            vec![
                ("2030-01-04".to_string(), false),
                ("2030-01-05".to_string(), false),
                ("2030-01-06".to_string(), true)
            ]
        );

        let mut off = s.clone();
        off.daily_summary_hour = None;
        out.clear();
        send_if_due(
            &conn,
            None,
            CHAT,
            &off,
            at("2030-01-07T09:00:00Z"),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty(), "off: {out:?}");
    }
}
