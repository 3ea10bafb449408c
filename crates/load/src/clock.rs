//! The real clock and CPU accounting: the only place the tool reads time.
//!
//! The workspace bans `SystemTime::now` and `Instant::now` outside a clock module (clippy.toml)
//! so servers and tests can drive time. The load tool has to use the real clock: the server under
//! test runs on it, and TOTP codes and latencies are only meaningful against it.

#![allow(clippy::disallowed_methods)] // this module is the tool's clock: reading time is its job

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A monotonic instant for latencies and deadlines.
pub fn now() -> Instant {
    Instant::now()
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix time in whole seconds.
pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}

/// Sleeps until the Unix time `unix_ms` or the monotonic `deadline`, whichever comes first.
pub async fn sleep_until_unix_ms(unix_ms_target: u64, deadline: Instant) {
    let wait = Duration::from_millis(unix_ms_target.saturating_sub(unix_ms()));
    let wake = now()
        .checked_add(wait)
        .map_or(deadline, |t| t.min(deadline));
    tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
}

/// Sleeps until `instant`.
pub async fn sleep_until(instant: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(instant)).await;
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/PID/stat`;
/// `None` where that file is missing (not Linux, process gone). `pid` `None` is this process.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // /proc reports in USER_HZ ticks: 100 on x86 and ARM Linux (sysconf(_SC_CLK_TCK) would
    // need libc and unsafe code for the same number).
    Some((utime + stime) as f64 / 100.0)
}
