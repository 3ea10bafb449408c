//! The pure parts of `tessera-load`, Tessera's load generator: the seed file, which code each
//! request carries in each case, the open loop's send times, latency percentiles and the
//! report, the request bodies for wrk, the quiet-machine guard, and the loopback check.
//!
//! No I/O, no clock, no sockets: callers pass the time and the answers. The binary (`main.rs` and
//! its modules) owns HTTP, files and time; keeping the scheduling here lets the tests prove the
//! properties a benchmark of an OTP server depends on (no counter or time step is sent twice, a
//! wrong code is really wrong) without a server.

pub mod guard;
pub mod lines;
pub mod pace;
pub mod report;
pub mod schedule;
pub mod seeds;
pub mod target;
