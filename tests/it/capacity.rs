//! The capacity benchmark's driver and measures (`support::load`), on a small load:
//! what `cargo bench --bench capacity` reports must be what happened.

use crate::support::load::{self, most_in_window, paced_lateness, quantile, Load};

#[test]
fn a_small_load_is_delivered_and_measured() {
    let hours = 3.0;
    let load = Load {
        chats: 10,
        posts_per_day: 40,
        speed: 1440.0,
        hours,
        window: (0, 0),
        status_every_nth_chat: 2,
        statuses_a_day: 8,
        press_share: 0.5,
        seed: 7,
    };
    let report = load::run(&load);
    // 10 chats × 40 a day over 3 of 24 hours: about 50 slots, every one sent.
    assert!(
        (35..=65).contains(&report.slots),
        "{} slots: {:?}",
        report.slots,
        report.statuses
    );
    assert_eq!(
        report.delivered(),
        report.slots,
        "every slot's story reached Telegram: {:?}",
        report.statuses
    );
    // The daemon sends a due slot within seconds of daemon time, never before it
    // (the two clocks' anchors differ by a few wall milliseconds at most).
    let p50 = quantile(&report.late_daemon, 0.5);
    let first = report.late_daemon[0];
    assert!(
        first > -10.0 && p50 < 600.0,
        "lateness p50 {p50} s, least {first} s"
    );
    for (daemon, wall) in report.late_daemon.iter().zip(&report.late_wall) {
        assert!((daemon / 1440.0 - wall).abs() < 1e-9);
    }
    assert_eq!(report.late_estimate.len(), report.slots);
    assert!(quantile(&report.late_estimate, 0.99) >= quantile(&report.late_wall, 0.99));
    // Half the stories pressed (at random), /status from five chats.
    assert!(report.presses > 5, "{} presses", report.presses);
    assert_eq!(report.commands, 5 * 8);
    // Stories, /status replies and the presses' edits are messages; all answered 200.
    assert!(report.rates.messages >= report.slots + report.presses);
    assert!(report.rates.overall_per_second >= 1);
    assert!(report.rates.group_per_minute >= report.rates.chat_per_second.min(1));
    // Telegram's per-chat rule as its fake counts it: bursts of 5 in 5 s at most.
    assert!(report.rates.chat_per_burst >= report.rates.chat_per_second);
    assert!(
        report.rates.chat_per_burst <= crate::support::flood::CHAT_BURST,
        "{} messages to one chat in 5 s",
        report.rates.chat_per_burst
    );
    assert_eq!(report.cpu_by_hour.len(), 3);
    assert!(report.cpu > std::time::Duration::ZERO);
    assert!(report.rss_peak_kb >= report.rss_end_kb && report.rss_end_kb > 1000);
    assert_eq!(report.outbox_left, 0);
}

#[test]
fn quantiles_and_windows_count_as_telegram_would() {
    let sorted = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    assert_eq!(quantile(&sorted, 0.5), 5.0);
    assert_eq!(quantile(&sorted, 0.99), 10.0);
    assert_eq!(quantile(&sorted, 0.0), 1.0);
    assert_eq!(quantile(&[], 0.5), 0.0);
    // Three within one second (0.2, 0.9, 1.1), not four: the window is half-open.
    assert_eq!(most_in_window(&[1.1, 0.2, 5.0, 0.9, 2.2], 1.0), 3);
    assert_eq!(most_in_window(&[0.0, 1.0, 2.0], 1.0), 1);
    assert_eq!(most_in_window(&[], 60.0), 0);
    // Three due together at 2 a second: 0, 0.5 and 1 s late; one due later waits
    // only for the sender to be free.
    assert_eq!(
        paced_lateness(&[0.0, 0.0, 0.0, 1.25, 10.0], 2.0),
        vec![0.0, 0.5, 1.0, 0.25, 0.0]
    );
}
