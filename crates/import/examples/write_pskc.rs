//! Writes a password-encrypted PSKC file of N TOTP/HOTP keys with random secrets, for benchmarks
//! and trying imports out: `cargo run --release -p tessera-import --example write_pskc -- N
//! FILE ITERATIONS` with the password on standard input. Serials are `BENCH00000001`, ...

use std::io::BufRead as _;

use tessera_import::pskc::{ExportProtection, PskcWriter};
use tessera_import::{Kind, uri};
use tessera_otp::{KeyUri, Secret};
use zeroize::Zeroizing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(path)) = (args.get(1), args.get(2)) else {
        return Err("usage: write_pskc N FILE [ITERATIONS] (password on stdin)".into());
    };
    let n: usize = n.parse()?;
    let iterations: u32 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let mut password = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut password)?;
    let password = Zeroizing::new(password.trim_end().to_owned());
    let out = std::io::BufWriter::new(std::fs::File::create(path)?);
    // The OS generator, as the server's own export uses it.
    #[allow(clippy::disallowed_methods)] // an example binary outside the server: no crypto.rs here
    let random: tessera_import::pskc::Random =
        Box::new(|buf: &mut [u8]| getrandom::fill(buf).map_err(std::io::Error::other));
    let mut w = PskcWriter::new(
        out,
        ExportProtection::Password {
            password,
            iterations,
        },
        random,
    )?;
    let template = uri::record_from_uri(
        KeyUri::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")?,
        String::new(),
    );
    for i in 0..n {
        let mut r = template.clone();
        r.serial = Some(format!("BENCH{:08}", i + 1));
        r.secret = Secret::generate()?;
        r.kind = if i % 4 == 0 {
            Kind::Hotp { counter: 0 }
        } else {
            Kind::Totp {
                period: 30,
                drift: 0,
            }
        };
        r.manufacturer = Some("Bench".into());
        r.model = Some("c200".into());
        w.write(&r)?;
    }
    w.finish()?;
    Ok(())
}
