//! What reading story insights costs on the release binary, against the fake
//! Telegram and Instagram servers of the integration tests: the publisher
//! thread's CPU at idle with no story tracked and with `STORIES` tracked but not
//! due (the once-a-minute look), the CPU of one story's read (its two insights
//! calls and one commit), memory before and after, and the core thread's CPU for
//! one /insights over those stories (the report and the chart). Run with
//! `cargo bench --bench insights` (`-- --quick`: 20 s idle windows instead of 60 s).

#[path = "proc_stats.rs"]
mod proc_stats;
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use proc_stats::{cpu_by_thread, proc_field};
use support::{describe_output, wait_until, Env, FakeInstagram, ADMIN, CHAT};

const STORIES: usize = 300;
const IG_TOKEN: &str = "IGAA-bench-long-lived-SECRET-token";
const IG_USER: &str = "17841400000000009";

/// CPU of the threads named `name`.
fn thread_cpu(pid: u32, name: &str) -> Duration {
    cpu_by_thread(pid).get(name).copied().unwrap_or_default()
}

fn memory(pid: u32) -> String {
    format!(
        "PSS {:.1} MB, RSS {:.1} MB",
        proc_field(pid, "smaps_rollup", "Pss:").unwrap_or(0) as f64 / 1000.0,
        proc_field(pid, "status", "VmRSS:").unwrap_or(0) as f64 / 1000.0
    )
}

fn count(env: &Env, sql: &str) -> i64 {
    env.db().query_row(sql, [], |r| r.get(0)).unwrap_or(-1)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let idle = Duration::from_secs(if quick { 20 } else { 60 });

    let env = Env::new();
    let ig = FakeInstagram::start();
    ig.set_token(IG_TOKEN, IG_USER, "brand");
    let config = env
        .base_config()
        .replace("poll_timeout_secs = 2", "poll_timeout_secs = 50")
        .replace("level = \"debug\"", "level = \"info\"");
    env.write_config_raw(&format!(
        "{config}\n[instagram]\napi_url = \"{url}\"\ngraph_url = \"{url}\"\n",
        url = ig.url()
    ));
    for category in ["quotes", "tips", "memes"] {
        let dir = env.media_dir().join(category);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.jpg"), support::media::jpeg(category.as_bytes())).unwrap();
    }
    for args in [
        &["scan"][..],
        &[
            "accounts",
            "add",
            "--name",
            "Brand",
            "--instagram-id",
            IG_USER,
            "--username",
            "brand",
            "--token",
            IG_TOKEN,
        ],
        &["queue"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{}", describe_output(&out));
    }

    let daemon = env.start_polling();
    let pid = daemon.pid();
    std::thread::sleep(Duration::from_secs(10));
    println!("memory 10 s after start, no story tracked: {}", memory(pid));
    let before = thread_cpu(pid, "publisher");
    std::thread::sleep(idle);
    let spent = thread_cpu(pid, "publisher").saturating_sub(before);
    println!(
        "publisher CPU idle, no story tracked: {:.2} ms over {} s",
        spent.as_secs_f64() * 1000.0,
        idle.as_secs()
    );

    // STORIES stories that went live 5 hours ago, their first read due now.
    let now = Utc::now();
    let live = now - chrono::Duration::hours(5);
    let conn = env.db();
    let items: Vec<(i64, String)> = {
        let mut statement = conn
            .prepare("SELECT id, category FROM media_items ORDER BY id")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let account: i64 = conn
        .query_row("SELECT id FROM instagram_accounts", [], |r| r.get(0))
        .unwrap();
    let stamp = |at: chrono::DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..STORIES {
        let (item, category) = &items[i % items.len()];
        let media_id = ig.post_story_by_hand(IG_USER, live, "IMAGE");
        conn.execute(
            "INSERT INTO posting_queue (chat_id, scheduled_for, window_date, sha256, media_item_id,
                 status, created_at)
             VALUES (?1, ?2, ?3, (SELECT sha256 FROM media_items WHERE id = ?4), ?4, 'posted', ?2)",
            rusqlite::params![CHAT, stamp(live), live.date_naive().to_string(), item],
        )
        .unwrap();
        let queue_id = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO story_insights (queue_id, chat_id, account_id, category, media_id,
                 posted_at, state, next_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'reading', ?7)",
            rusqlite::params![
                queue_id,
                CHAT,
                account,
                category,
                media_id,
                stamp(live),
                stamp(now)
            ],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);

    let before = thread_cpu(pid, "publisher");
    let started = Instant::now();
    wait_until("every first read", Duration::from_secs(300), || {
        (count(&env, "SELECT count(*) FROM story_insights WHERE reads = 1") == STORIES as i64)
            .then_some(())
    });
    let spent = thread_cpu(pid, "publisher").saturating_sub(before);
    let calls = ig.calls_to("/insights").len();
    println!(
        "{STORIES} first reads: {:.1} ms publisher CPU, {:.3} ms per story ({calls} insights calls, {:.1} s wall)",
        spent.as_secs_f64() * 1000.0,
        spent.as_secs_f64() * 1000.0 / STORIES as f64,
        started.elapsed().as_secs_f64()
    );
    println!("memory after the reads: {}", memory(pid));

    // Idle again, every story waiting for its final read in 18 hours.
    std::thread::sleep(Duration::from_secs(5));
    let before = thread_cpu(pid, "publisher");
    std::thread::sleep(idle);
    let spent = thread_cpu(pid, "publisher").saturating_sub(before);
    println!(
        "publisher CPU idle, {STORIES} stories waiting for their final read: {:.2} ms over {} s",
        spent.as_secs_f64() * 1000.0,
        idle.as_secs()
    );

    // /insights over those stories: the report and the chart, on the core thread.
    let before = thread_cpu(pid, "storyline");
    env.tg.push_message(CHAT, ADMIN, "ada", "/insights");
    let photo = wait_until("the /insights chart", Duration::from_secs(30), || {
        env.tg
            .calls()
            .into_iter()
            .find(|call| call.method == "sendPhoto")
    });
    let spent = thread_cpu(pid, "storyline").saturating_sub(before);
    println!(
        "/insights over {STORIES} stories (report and chart): {:.1} ms core CPU; photo sent: {}",
        spent.as_secs_f64() * 1000.0,
        photo.method
    );
    println!("memory at the end: {}", memory(pid));
    daemon.terminate();
}
