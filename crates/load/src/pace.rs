//! Open-loop pacing: when each request is meant to leave, and the latency counted from then.
//!
//! A closed loop (each connection sends its next request when the previous answer arrives)
//! measures the server's answer time only while the server keeps up: when the server stalls for
//! 40 ms, each connection has one request waiting through the stall and sends nothing else, so
//! the stall costs one slow sample per connection, while the hundreds of requests that users
//! would have sent in those 40 ms are never sent and never measured ("coordinated omission",
//! Gil Tene). An open loop fixes the schedule in advance: request *i* is meant to leave at
//! `i / rate` seconds after the start, whatever happened to the ones before it, and its latency
//! runs from that intended time to its answer. A request that could not leave on time (its
//! connection was still waiting for an earlier answer) is sent as soon as the connection is
//! free, and the wait counts: a stall shows in every request scheduled during it.
//!
//! No clock: times are offsets from the start of the run, passed in by the caller.

use std::time::Duration;

/// The intended send times of one worker's requests. The run's requests are numbered in time
/// order; worker `w` of `n` sends numbers `w`, `w + n`, `w + 2n`, ..., so that together the
/// workers send at `rate` per second, evenly spaced.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    workers: u64,
    next_index: u64,
}

impl Pacer {
    /// Worker `worker` of `workers` in a run of `rate` requests per second in all. `rate` must
    /// be positive and finite (checked by the caller).
    pub fn new(rate: f64, workers: usize, worker: usize) -> Pacer {
        let workers = workers.max(1) as u64;
        Pacer {
            rate,
            workers,
            next_index: (worker as u64) % workers,
        }
    }

    /// The intended send time of this worker's next request, as an offset from the start; each
    /// call moves on by one request. Computed from the request's number, not by adding
    /// intervals, so the schedule does not drift however long the run.
    pub fn next_intended(&mut self) -> Duration {
        let at = self.next_index as f64 / self.rate;
        self.next_index += self.workers;
        Duration::from_secs_f64(at)
    }
}

/// The latency of a request in an open loop: from its intended send time to its answer. If it
/// was sent later than intended (its connection was busy, or the tool fell behind), that wait is
/// part of it; an answer "before" the intended time (not possible in the loop, which never sends
/// early) counts as zero.
pub fn open_loop_latency(intended: Duration, answered: Duration) -> Duration {
    answered.saturating_sub(intended)
}

/// Whether a send at `sent` for a request intended at `intended` counts as late: more than
/// `slack` after its time.
pub fn is_late(intended: Duration, sent: Duration, slack: Duration) -> bool {
    sent.saturating_sub(intended) > slack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Latency;

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    #[test]
    fn workers_together_send_evenly_at_the_rate() {
        let mut pacers: Vec<Pacer> = (0..4).map(|w| Pacer::new(1000.0, 4, w)).collect();
        let mut all = Vec::new();
        for _ in 0..250 {
            for p in &mut pacers {
                all.push(p.next_intended());
            }
        }
        all.sort();
        assert_eq!(all.len(), 1000);
        for (i, at) in all.iter().enumerate() {
            // Request i at i ms: 1000 per second, none twice, none skipped.
            assert_eq!(at.as_micros(), i as u128 * 1000, "request {i}");
        }
        // One worker's requests are `workers` intervals apart.
        let mut p = Pacer::new(1000.0, 4, 1);
        assert_eq!(p.next_intended(), ms(1.0));
        assert_eq!(p.next_intended(), ms(5.0));
    }

    #[test]
    fn the_schedule_does_not_drift() {
        let mut p = Pacer::new(3.0, 1, 0);
        let mut last = Duration::ZERO;
        for _ in 0..3_000_001 {
            last = p.next_intended();
        }
        assert_eq!(last, Duration::from_secs(1_000_000));
    }

    /// One connection at 1,000 requests per second against a server that answers in 0.2 ms,
    /// except for one stall of 50 ms. Simulated with the loop's own rules: a request leaves at
    /// its intended time or, if the connection is still busy, when the answer before it arrives.
    #[test]
    fn a_stall_shows_in_every_request_scheduled_during_it() {
        let service = ms(0.2);
        let stall_at = 100; // the 101st request meets the stall
        let mut pacer = Pacer::new(1000.0, 1, 0);
        let mut free_at = Duration::ZERO;
        let mut open = Vec::new();
        let mut from_send = Vec::new();
        let mut late = 0;
        for i in 0..1000 {
            let intended = pacer.next_intended();
            let sent = intended.max(free_at);
            late += u32::from(is_late(intended, sent, ms(1.0)));
            let took = if i == stall_at { ms(50.0) } else { service };
            let answered = sent + took;
            free_at = answered;
            open.push(open_loop_latency(intended, answered).as_micros() as u32);
            from_send.push(took.as_micros() as u32);
        }
        let open = Latency::from_samples(open);
        let from_send = Latency::from_samples(from_send);
        // Counted from the send, the stall is one sample in a thousand: p99 sees nothing.
        assert_eq!(from_send.p99_us, 200);
        assert_eq!(from_send.max_us, 50_000);
        // Counted from the intended time, the requests scheduled during the stall waited for it
        // and for the catch-up after it (back to back until the schedule is met again): 6 % of
        // the requests were more than 1 ms late, the slowest 1.3 % took more than 40 ms.
        assert!(open.p99_us > 40_000, "{open:?}");
        assert!(open.p90_us < 1_000, "{open:?}");
        assert_eq!(open.max_us, 50_000);
        assert_eq!(late, 60, "sent more than 1 ms after their time");
    }

    #[test]
    fn latency_counts_from_the_intended_time() {
        assert_eq!(open_loop_latency(ms(10.0), ms(10.5)), ms(0.5));
        assert_eq!(open_loop_latency(ms(10.0), ms(9.0)), Duration::ZERO);
        assert!(is_late(ms(10.0), ms(11.5), ms(1.0)));
        assert!(!is_late(ms(10.0), ms(10.5), ms(1.0)));
    }
}
