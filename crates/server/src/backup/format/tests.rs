use super::*;

fn manifest(payload: &[u8]) -> Manifest {
    let (payload_len, payload_sha256) = digest(&mut &payload[..]).expect("digest");
    Manifest {
        format: 1,
        created_at: 1_800_000_000,
        tessera_version: "test".into(),
        payload: PayloadKind::SqliteFile,
        payload_len,
        payload_sha256,
        migrations: 13,
        key_ids: vec![1],
        tokens: 3,
        audit_seq: 7,
        audit_hash: "h".into(),
        encryption: None,
    }
}

/// A payload of two and a half chunks with no repeating pattern.
fn payload() -> Vec<u8> {
    (0..(CHUNK * 5 / 2) as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn backup(payload: &[u8], pass: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, manifest(payload), &mut &payload[..], pass).expect("write");
    out
}

fn restore(file: &[u8], pass: Option<&[u8]>) -> Result<Vec<u8>, BackupError> {
    let mut r = file;
    let (m, h) = read_manifest(&mut r)?;
    let mut out = Vec::new();
    read_payload(&mut r, &mut out, &m, &h, pass)?;
    Ok(out)
}

#[test]
fn plain_and_encrypted_round_trip() {
    let data = payload();
    assert_eq!(restore(&backup(&data, None), None).expect("plain"), data);
    let file = backup(&data, Some(b"correct horse"));
    assert_eq!(restore(&file, Some(b"correct horse")).expect("enc"), data);
    // The plaintext does not appear in the encrypted file.
    assert!(!file.windows(64).any(|w| w == &data[1000..1064]));
    // An empty payload is one (empty) chunk.
    assert_eq!(
        restore(&backup(b"", Some(b"pw")), Some(b"pw")).expect("empty"),
        b""
    );
}

#[test]
fn wrong_or_missing_passphrase_is_refused() {
    let data = payload();
    let file = backup(&data, Some(b"right"));
    assert!(matches!(
        restore(&file, Some(b"wrong")),
        Err(BackupError::WrongPassphraseOrDamaged)
    ));
    assert!(matches!(
        restore(&file, None),
        Err(BackupError::PassphraseRequired)
    ));
    let plain = backup(&data, None);
    assert!(matches!(
        restore(&plain, Some(b"x")),
        Err(BackupError::NotEncrypted)
    ));
    let mut out = Vec::new();
    assert!(matches!(
        write(&mut out, manifest(&data), &mut &data[..], Some(b"")),
        Err(BackupError::EmptyPassphrase)
    ));
}

#[test]
fn cut_changed_or_reordered_files_are_refused() {
    let data = payload();
    let file = backup(&data, Some(b"pw"));
    let header_len = 12 + u32::from_be_bytes(file[8..12].try_into().expect("4")) as usize;
    let chunk = CHUNK + TAG;
    // Cut after the second chunk (a chunk boundary), and in the middle of one.
    for cut in [header_len + 2 * chunk, file.len() - 7, header_len + 3] {
        assert!(
            matches!(
                restore(&file[..cut], Some(b"pw")),
                Err(BackupError::Truncated)
            ),
            "cut at {cut}"
        );
    }
    // A flipped bit in a chunk.
    let mut flipped = file.clone();
    flipped[header_len + chunk + 5] ^= 1;
    assert!(matches!(
        restore(&flipped, Some(b"pw")),
        Err(BackupError::WrongPassphraseOrDamaged)
    ));
    // Two chunks swapped.
    let mut swapped = file[..header_len].to_vec();
    swapped.extend_from_slice(&file[header_len + chunk..header_len + 2 * chunk]);
    swapped.extend_from_slice(&file[header_len..header_len + chunk]);
    swapped.extend_from_slice(&file[header_len + 2 * chunk..]);
    assert!(matches!(
        restore(&swapped, Some(b"pw")),
        Err(BackupError::WrongPassphraseOrDamaged)
    ));
    // Bytes after the last chunk.
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(
        restore(&longer, Some(b"pw")),
        Err(BackupError::Damaged)
    ));
    // A changed header (the creation time), the same length: the chunks no longer open.
    let text = String::from_utf8_lossy(&file[12..header_len]).replace("1800000000", "1800000001");
    let mut changed = file[..12].to_vec();
    changed.extend_from_slice(text.as_bytes());
    changed.extend_from_slice(&file[header_len..]);
    assert!(matches!(
        restore(&changed, Some(b"pw")),
        Err(BackupError::WrongPassphraseOrDamaged)
    ));
}

#[test]
fn a_changed_plain_payload_is_refused() {
    let data = payload();
    let mut file = backup(&data, None);
    let n = file.len();
    file[n - 100] ^= 0x80;
    assert!(matches!(restore(&file, None), Err(BackupError::Damaged)));
    let short = &backup(&data, None)[..n - 1];
    assert!(matches!(restore(short, None), Err(BackupError::Truncated)));
}

#[test]
fn headers_that_are_not_backups_or_out_of_bounds_are_refused() {
    assert!(matches!(restore(b"", None), Err(BackupError::NotABackup)));
    assert!(matches!(
        restore(b"SQLite format 3\0", None),
        Err(BackupError::NotABackup)
    ));
    assert!(matches!(
        restore(b"TSRBACK1\0\0", None),
        Err(BackupError::Truncated)
    ));
    let mut huge = MAGIC.to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        restore(&huge, None),
        Err(BackupError::BadManifest(_))
    ));
    // Argon2id parameters beyond the ceiling are refused before any key is derived.
    let data = b"x".to_vec();
    let mut m = manifest(&data);
    m.encryption = Some(Encryption {
        cipher: CIPHER.into(),
        kdf: KDF.into(),
        m_kib: 4 * 1024 * 1024,
        t: 3,
        p: 1,
        salt: BASE64.encode(&[0u8; 16]),
        nonce_prefix: BASE64.encode(&[0u8; 16]),
        chunk: CHUNK,
    });
    let header = header_bytes(&m).expect("header");
    assert!(matches!(
        read_manifest(&mut &header[..]),
        Err(BackupError::BadManifest(_))
    ));
    // Every error has a code.
    assert_eq!(BackupError::Truncated.code(), "truncated");
}
