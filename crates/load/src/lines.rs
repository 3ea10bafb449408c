//! Request bodies for wrk (`tessera-load lines`), so that the same server can be measured with
//! the tool that measured privacyIDEA, under the same rules as `hotp_valid`: valid HOTP codes,
//! each counter once, one token's codes in counter order.
//!
//! Line `i` of `n` tokens is token `i mod n` with its counter `next_counter + i div n`: a
//! round-robin over the tokens, like the privacyIDEA anchor's `bench.py`. wrk with one thread
//! sends the lines in file order, so one token's next code leaves `n` requests after its
//! previous one (never two in flight with `n` above the connections). After the run, the number
//! of lines wrk sent says how far each token's counter moved ([`counters_used`]); the request
//! still in flight when wrk stopped counts as used (the server may have taken it), which leaves
//! the seed file at most one counter ahead of the server, well inside its look-ahead window.
//!
//! No I/O: the caller writes the lines and the seed file.

use crate::schedule::HotpSlot;

/// The token (position among the slots) and round of line `line` for `tokens` tokens.
pub fn line_pick(tokens: usize, line: u64) -> (usize, u64) {
    let n = tokens.max(1) as u64;
    ((line % n) as usize, line / n)
}

/// One line: the JSON body with the user name and the code of the slot's counter
/// `next_counter + round`.
pub fn hotp_line(username: &str, slot: &HotpSlot, round: u64) -> String {
    // A JSON string serialises always; the code is digits only.
    let name = serde_json::to_string(username).unwrap_or_default();
    let code = slot.code(slot.next_counter.saturating_add(round));
    format!("{{\"username\":{name},\"otp\":\"{code}\"}}")
}

/// How many counters each of `tokens` tokens used when the first `sent` lines were sent.
pub fn counters_used(tokens: usize, sent: u64) -> Vec<u64> {
    let n = tokens.max(1) as u64;
    (0..n).map(|p| sent / n + u64::from(p < sent % n)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tessera_otp::{Hotp, Secret};

    use super::*;

    fn slot(i: usize, next: u64) -> HotpSlot {
        let secret = Secret::from_bytes(format!("lines-test-seed-{i:05}").into_bytes()).unwrap();
        HotpSlot::new(i, secret, Hotp::default(), next)
    }

    #[test]
    fn lines_go_round_robin_each_counter_once_and_in_order() {
        let slots: Vec<HotpSlot> = (0..7).map(|i| slot(i, 10 * i as u64)).collect();
        let mut seen: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for line in 0..50 {
            let (p, round) = line_pick(slots.len(), line);
            let counter = slots[p].next_counter + round;
            let body = hotp_line(&format!("u{p}"), &slots[p], round);
            let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed["username"], format!("u{p}"));
            assert_eq!(parsed["otp"], slots[p].code(counter));
            seen.entry(p).or_default().push(counter);
        }
        for (p, counters) in &seen {
            let first = slots[*p].next_counter;
            let expected: Vec<u64> = (first..first + counters.len() as u64).collect();
            assert_eq!(counters, &expected, "token {p}");
        }
        // What was sent is what settling moves the counters by.
        let used = counters_used(slots.len(), 50);
        for (p, counters) in &seen {
            assert_eq!(used[*p], counters.len() as u64);
        }
        assert_eq!(used.iter().sum::<u64>(), 50);
    }

    #[test]
    fn counters_used_for_partial_rounds() {
        assert_eq!(counters_used(4, 0), [0, 0, 0, 0]);
        assert_eq!(counters_used(4, 6), [2, 2, 1, 1]);
        assert_eq!(counters_used(4, 8), [2, 2, 2, 2]);
        assert_eq!(counters_used(1, 5), [5]);
    }

    #[test]
    fn user_names_are_escaped() {
        let body = hotp_line("a\"b", &slot(0, 0), 0);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["username"], "a\"b");
    }
}
