//! `tessera-load lines`: request bodies for wrk and, after wrk ran, the seed file moved past
//! the codes it sent (see the library's `lines` module for the order).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use tessera_load::lines::{counters_used, hotp_line, line_pick};
use tessera_load::schedule::HotpSlot;
use tessera_load::seeds::{Generator, SeedFile, TokenKind};

use crate::files::{load_seeds, save_seeds};

/// The HOTP tokens the lines use: the first `tokens` of the seed file (all by default).
fn hotp_indexes(seeds: &SeedFile, tokens: Option<usize>) -> anyhow::Result<Vec<usize>> {
    let mut indexes = seeds.indexes_of(TokenKind::Hotp);
    if indexes.is_empty() {
        bail!("the seed file has no hotp tokens");
    }
    if let Some(n) = tokens {
        indexes.truncate(n.max(1));
    }
    Ok(indexes)
}

/// Writes `count` bodies to `out` (mode 0600: each line holds a valid code). The seed file is
/// left as it is until [`settle`].
pub fn write(
    seeds: PathBuf,
    out: PathBuf,
    count: u64,
    tokens: Option<usize>,
) -> anyhow::Result<()> {
    let seeds = load_seeds(&seeds)?;
    let indexes = hotp_indexes(&seeds, tokens)?;
    let mut slots = Vec::with_capacity(indexes.len());
    for &i in &indexes {
        let token = &seeds.tokens[i];
        let (secret, Generator::Hotp(hotp)) = token.generator()? else {
            bail!("token {} is not HOTP", token.serial);
        };
        slots.push(HotpSlot::new(
            i,
            secret,
            hotp,
            token.next_counter.unwrap_or(0),
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&out)
        .with_context(|| format!("creating {}", out.display()))?;
    let mut file = BufWriter::new(file);
    for line in 0..count {
        let (p, round) = line_pick(slots.len(), line);
        let username = &seeds.tokens[slots[p].token].username;
        writeln!(file, "{}", hotp_line(username, &slots[p], round))?;
    }
    file.flush()?;
    Ok(())
}

/// Moves the HOTP counters of the seed file past the first `sent` lines.
pub fn settle(path: PathBuf, sent: u64, tokens: Option<usize>) -> anyhow::Result<()> {
    let mut seeds = load_seeds(&path)?;
    let indexes = hotp_indexes(&seeds, tokens)?;
    for (&i, used) in indexes.iter().zip(counters_used(indexes.len(), sent)) {
        let token = &mut seeds.tokens[i];
        token.next_counter = Some(token.next_counter.unwrap_or(0).saturating_add(used));
    }
    save_seeds(&path, &seeds)
}
