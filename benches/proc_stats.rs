//! What the benches read of a running daemon in /proc (shared by `#[path]`).

use std::collections::BTreeMap;
use std::time::Duration;

/// A number field of /proc/PID/FILE (`VmRSS:` of status, `Pss:` of smaps_rollup), in kB.
pub fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// CPU time of the process's threads by thread name, from
/// /proc/PID/task/*/schedstat (exact, unlike the 10 ms ticks of /proc/PID/stat).
pub fn cpu_by_thread(pid: u32) -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let nanos = stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            *by_name.entry(name.trim().to_string()).or_default() += Duration::from_nanos(nanos);
        }
    }
    by_name
}
