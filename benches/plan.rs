//! Planning a day for a chat whose library holds 100,000 items: the time to
//! plan one window (3 and 50 posts a day), and a 7-day /schedule preview.
//! Run with `cargo bench --bench plan`.

use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::params;
use storyline::bot::posting;
use storyline::db;
use storyline::domain::settings;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = db::open(&dir.path().join("plan.db")).expect("database");
    let chat_id = 4242;
    let now = Utc::now();
    let now_text = db::timestamp(now);
    let items = 100_000;
    let started = Instant::now();
    {
        let tx = conn.transaction().expect("transaction");
        db::insert_chat(&tx, chat_id, None, None, now).expect("chat");
        let mut item = tx
            .prepare(
                "INSERT INTO media_items (path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
                 VALUES (?1, ?2, 'image', 1000, 0, ?3, ?4, ?4)",
            )
            .expect("statement");
        let mut view = tx
            .prepare(
                "INSERT INTO chat_media (chat_id, sha256, category, times_posted, last_posted_at, locked_until, shuffle)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("statement");
        for i in 0..items {
            let category = format!("category{}", i % 8);
            let sha = format!("{i:064x}");
            item.execute(params![
                format!("{category}/{i}.jpg"),
                category,
                sha,
                now_text
            ])
            .expect("item");
            // A library in use: a third posted once or twice, some locked.
            let times = (i % 3) as i64;
            let last =
                (times > 0).then(|| db::timestamp(now - chrono::Duration::days((i % 90) as i64)));
            let locked = (i % 10 == 0).then(|| db::timestamp(now + chrono::Duration::days(5)));
            view.execute(params![
                chat_id,
                sha,
                category,
                times,
                last,
                locked,
                (i * 7919) % 100_003
            ])
            .expect("view");
        }
        drop(item);
        drop(view);
        tx.commit().expect("commit");
    }
    println!(
        "library of {items} items built in {} ms",
        started.elapsed().as_millis()
    );

    for posts in [3u32, 50] {
        let mut row = settings::ChatRow::new(chat_id);
        row.posts_per_day = Some(posts);
        row.posting_hours_start = Some(0);
        row.posting_hours_end = Some(0);
        let defaults = storyline::config::Defaults {
            dry_run_mode: true,
            enable_instagram_api: false,
            posts_per_day: 3,
            posting_hours_start: 14,
            posting_hours_end: 2,
            timezone: "Europe/Berlin".parse::<storyline::zone::Tz>().unwrap(),
        };
        let s = settings::resolve(&row, &defaults);
        let mut samples = Vec::new();
        for _ in 0..21 {
            conn.execute("DELETE FROM posting_queue", [])
                .expect("reset");
            conn.execute("DELETE FROM planned_windows", [])
                .expect("reset");
            let tx = conn.transaction().expect("transaction");
            let t = Instant::now();
            let added = posting::plan_chat(&tx, chat_id, &s, now).expect("plan");
            samples.push(t.elapsed());
            assert!(added > 0);
            tx.commit().expect("commit");
        }
        println!(
            "plan a day, {posts} posts/day, 100k items: {:.2} ms median",
            median(samples).as_secs_f64() * 1000.0
        );
    }
    let s = settings::resolve(
        &settings::ChatRow::new(chat_id),
        &storyline::config::Defaults {
            dry_run_mode: true,
            enable_instagram_api: false,
            posts_per_day: 10,
            posting_hours_start: 14,
            posting_hours_end: 2,
            timezone: storyline::zone::Tz::UTC,
        },
    );
    let weights = Default::default();
    let mut samples = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        posting::preview(&conn, Some(chat_id), &s, &weights, now, 7).expect("preview");
        samples.push(t.elapsed());
    }
    println!(
        "/schedule 7 preview, 10 posts/day: {:.2} ms median",
        median(samples).as_secs_f64() * 1000.0
    );
}
