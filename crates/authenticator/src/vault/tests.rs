use proptest::prelude::*;
use tessera_otp::{HashAlgorithm, Secret};

use super::file::{Attempts, SaveStep, VaultFile};
use super::*;
use crate::entry::{Entry, EntryKind};
use crate::kdf::TEST_COST;

const SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn entry(n: u64) -> Entry {
    let mut e = Entry::new(
        EntryKind::Totp { period: 30 },
        Secret::from_base32(SEED).unwrap(),
        HashAlgorithm::Sha1,
        6,
        n,
    )
    .unwrap();
    e.issuer = format!("Acme{n}");
    e
}

fn vault_with(n: usize) -> Vault {
    let mut v = Vault::create(SlotKind::Pin, b"123456", TEST_COST, 1).unwrap();
    for i in 0..n {
        v.content.entries.push(entry(i as u64));
    }
    v
}

fn bytes(v: &Vault) -> Vec<u8> {
    v.encode_next().unwrap().1.to_vec()
}

#[test]
fn opens_with_the_pin_and_only_with_it() {
    let b = bytes(&vault_with(2));
    let v = Vault::open(&b, Credential::Secret(b"123456")).unwrap();
    assert_eq!(v.content.entries.len(), 2);
    assert!(matches!(
        Vault::open(&b, Credential::Secret(b"123457")),
        Err(VaultError::Unlock)
    ));
    let auk = Key::generate().unwrap();
    assert!(matches!(
        Vault::open(&b, Credential::Auk(&auk)),
        Err(VaultError::Unlock)
    ));
}

#[test]
fn auk_slot_opens_when_the_pin_is_forgotten() {
    let mut v = vault_with(1);
    let auk = Key::generate().unwrap();
    v.set_auk_slot(&auk).unwrap();
    let b = bytes(&v);
    assert_eq!(
        Vault::open(&b, Credential::Auk(&auk))
            .unwrap()
            .content
            .entries
            .len(),
        1
    );
    assert!(Vault::open(&b, Credential::Secret(b"123456")).is_ok());
    let other = Key::generate().unwrap();
    assert!(matches!(
        Vault::open(&b, Credential::Auk(&other)),
        Err(VaultError::Unlock)
    ));
}

#[test]
fn pin_change_replaces_the_old_pin() {
    let mut v = vault_with(1);
    v.replace_secret_slots(SlotKind::Passphrase, b"correct horse battery", TEST_COST)
        .unwrap();
    let b = bytes(&v);
    assert!(matches!(
        Vault::open(&b, Credential::Secret(b"123456")),
        Err(VaultError::Unlock)
    ));
    assert!(Vault::open(&b, Credential::Secret(b"correct horse battery")).is_ok());
}

/// Flipping any bit of any byte (magic, header, slot, ciphertext, newlines) is refused.
#[test]
fn tampering_with_any_byte_is_refused() {
    let b = bytes(&vault_with(1));
    for i in 0..b.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut t = b.clone();
            t[i] ^= bit;
            let r = Vault::open(&t, Credential::Secret(b"123456"));
            assert!(r.is_err(), "byte {i} ^ {bit:#x} was accepted");
        }
    }
    // Truncation and appended bytes too.
    for cut in [1, 2, b.len() / 2, b.len() - 1] {
        assert!(Vault::open(&b[..cut], Credential::Secret(b"123456")).is_err());
    }
    let mut longer = b.clone();
    longer.extend_from_slice(b"x\n");
    assert!(Vault::open(&longer, Credential::Secret(b"123456")).is_err());
}

#[test]
fn a_slot_moved_from_another_vault_opens_nothing() {
    let a = vault_with(1);
    let b = vault_with(1);
    let mut mixed = a.header.clone();
    mixed.slots = b.header.slots.clone();
    let forged = Vault {
        header: mixed,
        key: a.key.clone(),
        content: a.content.clone(),
    };
    let file = bytes(&forged);
    assert!(matches!(
        Vault::open(&file, Credential::Secret(b"123456")),
        Err(VaultError::Unlock)
    ));
}

#[test]
fn hostile_kdf_parameters_are_refused_before_running() {
    let mut v = vault_with(0);
    // 64 GiB: running it would abort the test process.
    v.header.slots[0].kdf.as_mut().unwrap().m = 64 * 1024 * 1024;
    let b = bytes(&v);
    assert!(matches!(
        Vault::open(&b, Credential::Secret(b"123456")),
        Err(VaultError::Kdf(crate::kdf::KdfError::AboveCeiling))
    ));
    let mut v = vault_with(0);
    v.header.slots[0].kdf.as_mut().unwrap().t = 1_000_000;
    assert!(matches!(
        Vault::open(&bytes(&v), Credential::Secret(b"123456")),
        Err(VaultError::Kdf(_))
    ));
}

#[test]
fn debug_of_vault_and_slots_prints_no_seed() {
    let mut v = vault_with(2);
    v.set_auk_slot(&Key::generate().unwrap()).unwrap();
    let hex = Secret::from_base32(SEED).unwrap().to_hex();
    for text in [
        format!("{v:?}"),
        format!("{:?}", v.content),
        format!("{:?}", v.header),
        format!("{:?}", Credential::Secret(b"123456")),
    ] {
        assert!(
            !text.contains(SEED) && !text.contains(&hex) && !text.contains("123456"),
            "{text}"
        );
    }
}

fn saved(dir: &std::path::Path, entries: usize) -> (VaultFile, Vault) {
    let path = dir.join("vault.tsv1");
    let file = VaultFile::lock(&path, || {}).unwrap();
    let mut v = vault_with(entries);
    file.save(&mut v).unwrap();
    (file, v)
}

#[test]
fn a_failure_at_each_save_step_leaves_a_readable_vault() {
    for step in SaveStep::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (file, mut v) = saved(dir.path(), 1);
        file.save(&mut v).unwrap(); // a second generation, so .prev exists
        let before = v.header.generation;
        v.content.entries.push(entry(9));
        assert!(file.save_failing(&mut v, Some(step)).is_err(), "{step:?}");
        let opened = file.open(Credential::Secret(b"123456")).unwrap();
        let n = opened.vault.content.entries.len();
        let g = opened.vault.header.generation;
        assert!(
            (n == 1 && g == before) || (n == 2 && g == before + 1),
            "{step:?}: {n} entries, generation {g}"
        );
        assert!(!opened.from_previous, "{step:?}");
        assert!(file.previous_path().exists(), "{step:?}");
        // The next save after the failure works and wins.
        file.save(&mut v).unwrap();
        assert_eq!(
            file.open(Credential::Secret(b"123456"))
                .unwrap()
                .vault
                .content
                .entries
                .len(),
            2
        );
    }
}

#[test]
fn a_damaged_current_file_opens_the_previous_generation() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut v) = saved(dir.path(), 1);
    v.content.entries.push(entry(2));
    file.save(&mut v).unwrap();
    let mut b = std::fs::read(file.path()).unwrap();
    let last = b.len() - 5;
    b[last] ^= 1;
    std::fs::write(file.path(), &b).unwrap();
    let opened = file.open(Credential::Secret(b"123456")).unwrap();
    assert!(opened.from_previous);
    assert_eq!(opened.vault.content.entries.len(), 1);
    // A wrong PIN stays a wrong PIN, not a fallback.
    assert!(matches!(
        file.open(Credential::Secret(b"000000")),
        Err(VaultError::Unlock)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random sequences of saves, some killed at a random step: the vault always opens, with
    /// the content of the last completed save or of the killed one (never anything else).
    #[test]
    fn random_save_and_kill_sequences_never_lose_the_vault(
        ops in proptest::collection::vec(proptest::option::of(0usize..6), 1..8)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (file, mut v) = saved(dir.path(), 0);
        let mut committed = 0usize;
        for (i, op) in ops.iter().enumerate() {
            v.content.entries.push(entry(i as u64));
            let attempted = v.content.entries.len();
            match op {
                None => {
                    file.save(&mut v).unwrap();
                    committed = attempted;
                }
                Some(step) => {
                    let step = SaveStep::ALL[*step];
                    prop_assert!(file.save_failing(&mut v, Some(step)).is_err());
                    let n = file.open(Credential::Secret(b"123456")).unwrap().vault.content.entries.len();
                    prop_assert!(n == committed || n == attempted, "{:?}: {} not {} or {}", step, n, committed, attempted);
                    committed = n;
                    // The process died: the next one starts from what is on disk.
                    v = file.open(Credential::Secret(b"123456")).unwrap().vault;
                }
            }
        }
        let n = file.open(Credential::Secret(b"123456")).unwrap().vault.content.entries.len();
        prop_assert_eq!(n, committed);
    }
}

#[test]
fn two_writers_are_serialized_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.tsv1");
    drop(saved(dir.path(), 0));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                for j in 0..3 {
                    let file = VaultFile::lock(&path, || {}).unwrap();
                    let mut v = file.open(Credential::Secret(b"123456")).unwrap().vault;
                    v.content.entries.push(entry(i * 10 + j));
                    file.save(&mut v).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let file = VaultFile::lock(&path, || {}).unwrap();
    // No lost update: every one of the 12 read-modify-write cycles is in the file.
    assert_eq!(
        file.open(Credential::Secret(b"123456"))
            .unwrap()
            .vault
            .content
            .entries
            .len(),
        12
    );
}

#[test]
fn failed_unlocks_make_the_next_try_wait_longer() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = saved(dir.path(), 0);
    assert_eq!(file.attempts(), Attempts::default());
    let a1 = file.record_failure(1000);
    let a2 = file.record_failure(1000);
    let a3 = file.record_failure(1000);
    assert_eq!(
        (a1.not_before, a2.not_before, a3.not_before),
        (1001, 1002, 1004)
    );
    assert_eq!(Attempts::delay(30), 300);
    file.clear_failures();
    assert_eq!(file.attempts().failures, 0);
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (file, mut v) = saved(dir.path(), 0);
    file.save(&mut v).unwrap();
    for p in [file.path().to_owned(), file.previous_path()] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}
