//! The authenticator's one home of the wall clock: everything else takes the time as a
//! parameter, so codes and delays can be tested at fixed times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the system clock is before 1970).
#[allow(clippy::disallowed_methods)] // this is the client's single clock
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Milliseconds since the Unix epoch (for the seconds-left display).
#[allow(clippy::disallowed_methods)] // this is the client's single clock
pub fn now_unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
}
