//! Which token and which code each request carries, per case.
//!
//! Every worker gets its own disjoint stripe of tokens ([`stripes`]) and sends one request at a
//! time, so no two requests for one token are ever in flight and one token's codes go out in
//! order. The schedules here never send a valid HOTP counter or TOTP step twice (a server must
//! refuse the second one, which would turn a throughput figure into a replay test), and the
//! wrong codes are provably outside the server's look-ahead window.
//!
//! No clock: TOTP schedules take the Unix time from the caller.

use tessera_otp::{Hotp, Secret, Totp};

/// Counters the server checks beyond the expected one (the contract: look-ahead 10), so a wrong
/// code must differ from the codes of `next_counter ..= next_counter + HOTP_LOOK_AHEAD`.
pub const HOTP_LOOK_AHEAD: u64 = 10;

/// Splits token positions `0..n` into `workers` disjoint stripes: worker `w` gets `w`,
/// `w + workers`, ... Stripes are never empty when `workers <= n`; callers cap the number of
/// workers at the number of tokens.
pub fn stripes(n: usize, workers: usize) -> Vec<Vec<usize>> {
    let workers = workers.max(1);
    let mut out = vec![Vec::with_capacity(n / workers + 1); workers];
    for position in 0..n {
        out[position % workers].push(position);
    }
    out
}

/// One request's choice: which of the schedule's slots, which counter or step, and its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Index into the schedule's slots.
    pub slot: usize,
    /// The caller's token index the slot was built with.
    pub token: usize,
    /// The HOTP counter or TOTP step the code belongs to (for wrong codes: the next counter).
    pub moving_factor: u64,
    /// The code, zero-padded to the token's digits.
    pub code: String,
}

/// An HOTP token as a schedule sees it.
#[derive(Debug, Clone)]
pub struct HotpSlot {
    /// The caller's token index.
    pub token: usize,
    secret: Secret,
    hotp: Hotp,
    /// The lowest counter not sent yet.
    pub next_counter: u64,
}

impl HotpSlot {
    /// A token whose next unused counter is `next_counter`.
    pub fn new(token: usize, secret: Secret, hotp: Hotp, next_counter: u64) -> HotpSlot {
        HotpSlot {
            token,
            secret,
            hotp,
            next_counter,
        }
    }

    /// The code of `counter`.
    pub fn code(&self, counter: u64) -> String {
        self.hotp.generate(&self.secret, counter)
    }

    /// The codes of the counters the server would accept next, as numbers.
    fn window(&self) -> Vec<u32> {
        (0..=HOTP_LOOK_AHEAD)
            .map(|k| {
                self.code(self.next_counter.saturating_add(k))
                    .parse()
                    .unwrap_or(u32::MAX)
            })
            .collect()
    }
}

/// Valid HOTP codes, round-robin over the worker's tokens, each counter once.
#[derive(Debug)]
pub struct HotpValid {
    slots: Vec<HotpSlot>,
    position: usize,
}

impl HotpValid {
    /// A schedule over these tokens (one worker's stripe).
    pub fn new(slots: Vec<HotpSlot>) -> HotpValid {
        HotpValid { slots, position: 0 }
    }

    /// The next request: the next token in turn with its lowest unused counter. `None` without
    /// tokens.
    pub fn next_pick(&mut self) -> Option<Pick> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.position % self.slots.len();
        self.position = self.position.wrapping_add(1);
        let token = &self.slots[slot];
        Some(Pick {
            slot,
            token: token.token,
            moving_factor: token.next_counter,
            code: token.code(token.next_counter),
        })
    }

    /// Records the answer to `pick`. `consumed` is true when the server accepted the code or may
    /// have (no answer): that counter is never sent again. A rejection means the server did not
    /// use it (e.g. the token is throttled), so the same counter goes out next time; moving on
    /// would drift out of the server's look-ahead window after 10 rejections.
    pub fn settle(&mut self, pick: &Pick, consumed: bool) {
        if consumed && let Some(slot) = self.slots.get_mut(pick.slot) {
            slot.next_counter = slot.next_counter.max(pick.moving_factor.saturating_add(1));
        }
    }

    /// The tokens with their counters after the run.
    pub fn into_slots(self) -> Vec<HotpSlot> {
        self.slots
    }
}

/// Wrong HOTP codes, round-robin over the worker's tokens: a different well-formed code each
/// time, never one the server could accept.
#[derive(Debug)]
pub struct HotpWrong {
    slots: Vec<WrongSlot>,
    position: usize,
    random: SplitMix64,
}

#[derive(Debug)]
struct WrongSlot {
    token: usize,
    digits: u32,
    next_counter: u64,
    /// The codes of the look-ahead window. Wrong codes do not advance the server's counter, so
    /// the window stays put for the whole run.
    valid: Vec<u32>,
}

impl HotpWrong {
    /// A schedule over these tokens; `seed` makes the sequence of codes reproducible.
    pub fn new(slots: &[HotpSlot], seed: u64) -> HotpWrong {
        let slots = slots
            .iter()
            .map(|slot| WrongSlot {
                token: slot.token,
                digits: slot.hotp.digits(),
                next_counter: slot.next_counter,
                valid: slot.window(),
            })
            .collect();
        HotpWrong {
            slots,
            position: 0,
            random: SplitMix64(seed),
        }
    }

    /// The next request; `None` without tokens.
    pub fn next_pick(&mut self) -> Option<Pick> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.position % self.slots.len();
        self.position = self.position.wrapping_add(1);
        let token = &self.slots[slot];
        let code = wrong_code(&token.valid, token.digits, self.random.next_u64());
        Some(Pick {
            slot,
            token: token.token,
            moving_factor: token.next_counter,
            code: format!("{code:0width$}", width = token.digits as usize),
        })
    }
}

/// A code of `digits` digits derived from `candidate` that is none of `valid`: the first value
/// from `candidate mod 10^digits` upwards (wrapping) not in the list.
pub fn wrong_code(valid: &[u32], digits: u32, candidate: u64) -> u32 {
    let modulus = 10u64.pow(digits.clamp(1, 9));
    let mut code = candidate % modulus;
    // At most `valid.len()` steps: the list is far shorter than the code space.
    while valid.iter().any(|&v| u64::from(v) == code) {
        code = (code + 1) % modulus;
    }
    u32::try_from(code).unwrap_or(0)
}

/// The TOTP step to send next for a token whose last used step is `last`, when the current step
/// is `current`: the current step if unused, else the one after it (the server's window reaches
/// one step forward), else nothing until time moves on. Never a step already used or older
/// (RFC 6238 §5.2: the server refuses it), never more than one step ahead.
pub fn totp_step_to_send(last: Option<u64>, current: u64) -> Option<u64> {
    let step = match last {
        None => current,
        Some(last) => current.max(last.saturating_add(1)),
    };
    (step <= current.saturating_add(1)).then_some(step)
}

/// A TOTP token as a schedule sees it.
#[derive(Debug, Clone)]
pub struct TotpSlot {
    /// The caller's token index.
    pub token: usize,
    secret: Secret,
    totp: Totp,
    /// The last step sent (accepted, or perhaps accepted).
    pub last_step: Option<u64>,
}

impl TotpSlot {
    /// A token whose last used step is `last_step`.
    pub fn new(token: usize, secret: Secret, totp: Totp, last_step: Option<u64>) -> TotpSlot {
        TotpSlot {
            token,
            secret,
            totp,
            last_step,
        }
    }

    /// Earliest Unix time at which this token has a step to send again.
    fn available_at(&self) -> u64 {
        // Sendable iff last <= current step, i.e. from the start of step `last`.
        self.last_step
            .map_or(0, |last| last.saturating_mul(self.totp.period()))
    }
}

/// What a TOTP worker does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpNext {
    /// Send this code.
    Send(Pick),
    /// Every token has used the steps the window allows: nothing to send before this Unix time.
    WaitUntil(u64),
}

/// Valid TOTP codes, round-robin over the worker's tokens, at most the steps the server's window
/// still allows, each once.
#[derive(Debug)]
pub struct TotpValid {
    slots: Vec<TotpSlot>,
    position: usize,
}

impl TotpValid {
    /// A schedule over these tokens (one worker's stripe).
    pub fn new(slots: Vec<TotpSlot>) -> TotpValid {
        TotpValid { slots, position: 0 }
    }

    /// The next request at Unix time `now`. The step is marked used as it is handed out: an
    /// answer that never arrives may still have consumed it, and a rejected one is not retried
    /// (a later step will come).
    pub fn next_pick(&mut self, now: u64) -> TotpNext {
        let n = self.slots.len();
        for offset in 0..n {
            let slot = (self.position + offset) % n;
            let token = &mut self.slots[slot];
            let current = token.totp.step(now);
            if let Some(step) = totp_step_to_send(token.last_step, current) {
                token.last_step = Some(step);
                self.position = slot + 1;
                return TotpNext::Send(Pick {
                    slot,
                    token: token.token,
                    moving_factor: step,
                    code: token.totp.generate_step(&token.secret, step),
                });
            }
        }
        let next = self.slots.iter().map(TotpSlot::available_at).min();
        TotpNext::WaitUntil(next.unwrap_or(u64::MAX).max(now.saturating_add(1)))
    }

    /// The tokens with their last steps after the run.
    pub fn into_slots(self) -> Vec<TotpSlot> {
        self.slots
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator for picking wrong codes.
/// Not for secrets; reproducible by design.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use tessera_otp::HashAlgorithm;

    use super::*;

    fn secret(i: usize) -> Secret {
        Secret::from_bytes(format!("load-test-seed-{i:05}").into_bytes()).unwrap()
    }

    fn hotp_slots(n: usize) -> Vec<HotpSlot> {
        (0..n)
            .map(|i| HotpSlot::new(i, secret(i), Hotp::default(), (i as u64) * 3))
            .collect()
    }

    #[test]
    fn stripes_are_disjoint_and_cover_everything() {
        let s = stripes(10, 3);
        assert_eq!(s, vec![vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]);
        let all: BTreeSet<usize> = s.iter().flatten().copied().collect();
        assert_eq!(all.len(), 10);
        assert_eq!(stripes(2, 0), vec![vec![0, 1]]);
    }

    #[test]
    fn hotp_schedule_never_repeats_a_counter_and_keeps_token_order() {
        let n = 7;
        let all = hotp_slots(n);
        let first: Vec<u64> = all.iter().map(|s| s.next_counter).collect();
        let mut workers: Vec<HotpValid> = stripes(n, 3)
            .into_iter()
            .map(|stripe| HotpValid::new(stripe.iter().map(|&i| all[i].clone()).collect()))
            .collect();
        // Interleave the workers as a closed loop would: one pick, its answer, the next worker.
        let mut sent: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
        for round in 0..200 {
            let w = round % workers.len();
            let pick = workers[w].next_pick().unwrap();
            assert_eq!(pick.code, all[pick.token].code(pick.moving_factor));
            assert_eq!(*owner.entry(pick.token).or_insert(w), w, "token shared");
            sent.entry(pick.token).or_default().push(pick.moving_factor);
            workers[w].settle(&pick, true);
        }
        assert_eq!(sent.len(), n, "every token used");
        for (token, counters) in &sent {
            let expected: Vec<u64> = (0..counters.len() as u64)
                .map(|k| first[*token] + k)
                .collect();
            assert_eq!(counters, &expected, "token {token}: in order, each once");
        }
        let after: Vec<u64> = workers
            .into_iter()
            .flat_map(HotpValid::into_slots)
            .map(|s| s.next_counter)
            .collect();
        let total: u64 = after.iter().sum::<u64>() - first.iter().sum::<u64>();
        assert_eq!(total, 200, "every accepted request consumed one counter");
    }

    #[test]
    fn hotp_rejection_resends_the_unused_counter() {
        let mut schedule = HotpValid::new(hotp_slots(1));
        let a = schedule.next_pick().unwrap();
        schedule.settle(&a, false);
        let b = schedule.next_pick().unwrap();
        assert_eq!(a, b);
        schedule.settle(&b, true);
        assert_eq!(
            schedule.next_pick().unwrap().moving_factor,
            b.moving_factor + 1
        );
    }

    #[test]
    fn wrong_code_is_never_one_of_the_next_eleven() {
        let hotp8 = Hotp::new(HashAlgorithm::Sha256, 8).unwrap();
        let slots: Vec<HotpSlot> = (0..300)
            .map(|i| {
                let hotp = if i % 5 == 0 { hotp8 } else { Hotp::default() };
                HotpSlot::new(i, secret(i), hotp, (i as u64 * 7919) % 1000)
            })
            .collect();
        let mut schedule = HotpWrong::new(&slots, 42);
        let mut distinct = BTreeSet::new();
        for _ in 0..3000 {
            let pick = schedule.next_pick().unwrap();
            let slot = &slots[pick.token];
            assert_eq!(pick.code.len(), slot.hotp.digits() as usize);
            assert_eq!(
                slot.hotp
                    .verify(&slot.secret, &pick.code, slot.next_counter, HOTP_LOOK_AHEAD),
                None,
                "token {} got a valid code",
                pick.token
            );
            distinct.insert(pick.code);
        }
        assert!(distinct.len() > 2900, "codes vary: {}", distinct.len());
    }

    #[test]
    fn wrong_code_steps_over_a_colliding_candidate() {
        assert_eq!(wrong_code(&[123_456, 123_457], 6, 123_456), 123_458);
        assert_eq!(wrong_code(&[999_999, 0], 6, 999_999), 1);
        assert_eq!(wrong_code(&[5], 6, 1_000_005), 6);
    }

    #[test]
    fn totp_step_rules() {
        assert_eq!(totp_step_to_send(None, 100), Some(100));
        assert_eq!(totp_step_to_send(Some(50), 100), Some(100));
        assert_eq!(totp_step_to_send(Some(99), 100), Some(100));
        assert_eq!(totp_step_to_send(Some(100), 100), Some(101));
        assert_eq!(totp_step_to_send(Some(101), 100), None);
        assert_eq!(totp_step_to_send(Some(101), 101), Some(102));
    }

    #[test]
    fn totp_schedule_never_reuses_a_step_nor_runs_ahead() {
        let totp = Totp::default();
        let t0 = 1_700_000_017;
        let slots: Vec<TotpSlot> = (0..5)
            .map(|i| {
                // Some tokens fresh, some activated in the current step, one a step ahead.
                let last = match i {
                    0 => None,
                    1 | 2 => Some(totp.step(t0)),
                    3 => Some(totp.step(t0) + 1),
                    _ => Some(totp.step(t0) - 4),
                };
                TotpSlot::new(i, secret(i), totp, last)
            })
            .collect();
        let initial: Vec<Option<u64>> = slots.iter().map(|s| s.last_step).collect();
        let mut schedule = TotpValid::new(slots.clone());
        let mut used: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        let mut now = t0;
        let mut waits = 0;
        while now < t0 + 150 {
            match schedule.next_pick(now) {
                TotpNext::Send(pick) => {
                    let current = totp.step(now);
                    assert!(
                        pick.moving_factor <= current + 1,
                        "more than one step ahead"
                    );
                    assert!(pick.moving_factor >= current, "an old step");
                    let slot = &slots[pick.token];
                    assert_eq!(
                        pick.code,
                        totp.generate_step(&slot.secret, pick.moving_factor)
                    );
                    let steps = used.entry(pick.token).or_default();
                    if let Some(&prev) = steps.last() {
                        assert!(pick.moving_factor > prev, "step reused or went back");
                    } else if let Some(last) = initial[pick.token] {
                        assert!(pick.moving_factor > last, "step used before the run");
                    }
                    steps.push(pick.moving_factor);
                }
                TotpNext::WaitUntil(t) => {
                    assert!(t > now);
                    assert_eq!(t % 30, 0, "waits for a step boundary");
                    waits += 1;
                    now = t;
                }
            }
        }
        assert!(waits >= 4);
        // Five steps pass: each token gets about one code per step, never more than two ahead.
        for (token, steps) in &used {
            assert!(steps.len() <= 7, "token {token}: {steps:?}");
        }
        assert_eq!(used.len(), 5);
        let after = schedule.into_slots();
        for slot in after {
            assert_eq!(slot.last_step, used[&slot.token].last().copied());
        }
    }
}
