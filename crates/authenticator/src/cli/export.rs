//! `export`: the vault's tokens in another app's format, written to a new 0600 file (or
//! standard output with `-o -`). Every export holds live secrets; the command says so.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use tessera_otp::{KeyUri, UriKind};
use zeroize::Zeroizing;

use super::{Secrets, Session};
use crate::entry::{Entry, EntryKind};

/// The `otpauth://` URI of an entry (`None` for Steam, which has no standard URI).
pub fn entry_uri(e: &Entry) -> Option<Zeroizing<String>> {
    let secret = e.secret.clone()?;
    let kind = match e.kind {
        EntryKind::Totp { period } => UriKind::Totp { period },
        EntryKind::Hotp { counter } => UriKind::Hotp { counter },
        EntryKind::Steam => return None,
    };
    let account = if e.account.is_empty() {
        e.label()
    } else {
        e.account.clone()
    };
    let uri = KeyUri {
        kind,
        issuer: (!e.issuer.is_empty()).then(|| e.issuer.clone()),
        account,
        secret,
        algorithm: e.algorithm,
        digits: e.digits,
    };
    Some(Zeroizing::new(uri.to_uri()))
}

/// Google Authenticator export QR codes (`otpauth-migration://`, 10 accounts a code, one
/// batch) as PNG files `ga-1.png`, `ga-2.png`, … in a new directory. Tokens an export cannot
/// carry (7 digits, periods other than 30 s, Steam) are left out and counted.
fn ga_qr(entries: &[&Entry], dir: &str) -> Result<()> {
    let records: Vec<_> = entries
        .iter()
        .filter_map(|e| {
            let uri = entry_uri(e)?;
            let parsed = KeyUri::parse(&uri).ok()?;
            Some(tessera_import::uri::record_from_uri(parsed, e.id.clone()))
        })
        .collect();
    let mut id = [0u8; 4];
    crate::crypto::fill_random(&mut id)?;
    let (links, written) =
        tessera_import::migration::export_uris(&records, 10, i32::from_be_bytes(id));
    std::fs::create_dir(dir).with_context(|| format!("creating {dir} (it must not exist yet)"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    for (i, link) in links.iter().enumerate() {
        let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
            .context("an export part is too long for a QR code")?;
        let img = code
            .render::<image::Luma<u8>>()
            .min_dimensions(600, 600)
            .build();
        let file = Path::new(dir).join(format!("ga-{}.png", i + 1));
        img.save(&file)
            .with_context(|| format!("writing {}", file.display()))?;
    }
    eprintln!(
        "wrote {} QR code(s) with {written} token(s) to {dir}; {} token(s) left out (Google Authenticator carries 6 or 8 digits and 30 s only); scan them all, in any order",
        links.len(),
        entries.len() - written
    );
    Ok(())
}

pub fn export(path: &Path, secrets: &mut Secrets, format: &str, output: &str) -> Result<()> {
    let s = Session::open(path, secrets)?;
    let entries: Vec<&Entry> = s.vault.content.live().collect();
    if format == "ga-qr" {
        return ga_qr(&entries, output);
    }
    let mut skipped = 0usize;
    let text: Zeroizing<String> = match format {
        "aegis" => crate::apps::aegis::write(&entries, None)?,
        "aegis-encrypted" => {
            let pw = secrets.password("password for the Aegis export: ")?;
            if pw.chars().count() < 8 {
                bail!("the export password needs 8 or more characters");
            }
            crate::apps::aegis::write(&entries, Some(&pw))?
        }
        "uris" => {
            let mut out = Zeroizing::new(String::new());
            for e in &entries {
                match entry_uri(e) {
                    Some(u) => {
                        out.push_str(&u);
                        out.push('\n');
                    }
                    None => skipped += 1,
                }
            }
            out
        }
        other => bail!("unknown export format {other:?} (aegis, aegis-encrypted, uris, ga-qr)"),
    };
    if output == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o
            .open(output)
            .with_context(|| format!("creating {output} (it must not exist yet)"))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        eprintln!(
            "wrote {} token(s) to {output}{}; it holds the secrets{}: delete it once imported",
            entries.len() - skipped,
            if skipped > 0 {
                format!(" ({skipped} Steam token(s) skipped: no URI format)")
            } else {
                String::new()
            },
            if format == "aegis-encrypted" {
                " encrypted under the password"
            } else {
                " in the clear"
            },
        );
    }
    Ok(())
}
