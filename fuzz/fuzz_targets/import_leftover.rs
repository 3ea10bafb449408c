//! The leftover writer of PSKC imports (`tessera import pskc --leftover`): never panics on any
//! bytes, whichever packages are kept, and what it writes is well-formed enough to read again.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use tessera_import::leftover::write_leftover;

fuzz_target!(|data: &[u8]| {
    let keep: BTreeSet<usize> = (1..=8).filter(|i| data.len() % (i + 1) == 0).collect();
    let mut out = Vec::new();
    if write_leftover(data, &keep, &mut out).is_ok() {
        let mut again = Vec::new();
        let _ = write_leftover(out.as_slice(), &keep, &mut again);
    }
});
