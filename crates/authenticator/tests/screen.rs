//! What tessera-auth draws: the terminal QR of `show-qr`, rasterized and decoded by zbarimg to
//! the same URI another app would read; Google Authenticator export QR codes decoded by
//! zbarimg and imported again in any order; the clock check against a real server.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use std::path::Path;
use std::process::Command;

use support::Env;
use support::server::Server;

/// zbarimg's texts of an image, or `None` when zbarimg is not installed.
fn zbarimg(file: &Path) -> Option<Vec<String>> {
    let out = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(file)
        .output()
        .ok()?;
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// Turns the terminal's half-block characters back into pixels as the screen shows them: a
/// filled half is light, an empty one dark (the code is drawn for dark terminals).
fn rasterize(text: &str, file: &Path) {
    let lines: Vec<Vec<char>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().collect())
        .collect();
    let w = lines.iter().map(Vec::len).max().unwrap();
    let scale = 8u32;
    let mut img = image::GrayImage::new(w as u32 * scale, lines.len() as u32 * 2 * scale);
    for (y, line) in lines.iter().enumerate() {
        for (x, c) in line.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (255, 255),
                '▀' => (255, 0),
                '▄' => (0, 255),
                _ => (0, 0),
            };
            for dy in 0..scale * 2 {
                for dx in 0..scale {
                    let v = if dy < scale { top } else { bottom };
                    img.put_pixel(
                        x as u32 * scale + dx,
                        (y as u32 * 2) * scale + dy,
                        image::Luma([v]),
                    );
                }
            }
        }
    }
    img.save(file).unwrap();
}

#[test]
fn show_qr_renders_a_code_zbarimg_reads_as_the_same_uri() {
    let env = Env::new();
    env.ok(&["init"]);
    let uri =
        "otpauth://totp/Acme:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme";
    env.ok(&["add", uri]);
    // Not a terminal and no --print: refused (a seed is never drawn by accident into a pipe).
    assert!(!env.run(&["show-qr", "Acme"]).status.success());
    let text = env.ok(&["show-qr", "Acme", "--print"]);
    let png = env.dir.path().join("screen.png");
    rasterize(&text, &png);
    let Some(decoded) = zbarimg(&png) else {
        eprintln!("skipped: zbarimg is not installed");
        return;
    };
    // The same URI as `export --format uris` writes, with the original's key and names.
    let exported = env.ok(&["export", "--format", "uris", "-o", "-"]);
    assert_eq!(decoded, vec![exported.trim().to_owned()]);
    assert!(
        decoded[0].starts_with(&uri[..uri.find('&').unwrap()]),
        "{decoded:?}"
    );
}

#[test]
fn google_authenticator_export_qr_codes_import_again_in_any_order() {
    let env = Env::new();
    env.ok(&["init"]);
    let mut list = String::new();
    for i in 0..25 {
        let secret =
            data_encoding::BASE32_NOPAD.encode(format!("ga-export-seed-{i:04}").as_bytes());
        list.push_str(&format!(
            "otpauth://totp/Svc{i}:user{i}?secret={secret}&issuer=Svc{i}\n"
        ));
    }
    // 7 digits cannot be carried by an export: left out and counted.
    list.push_str("otpauth://totp/Odd:o?secret=JBSWY3DPEHPK3PXP&digits=7\n");
    let file = env.dir.path().join("list.txt");
    std::fs::write(&file, list).unwrap();
    env.ok(&["add", file.to_str().unwrap()]);
    let dir = env.dir.path().join("ga");
    let out = env.run(&["export", "--format", "ga-qr", "-o", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 token(s) left out"));
    let mut pngs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), 3);
    if let Some(texts) = zbarimg(&pngs[0]) {
        assert!(
            texts[0].starts_with("otpauth-migration://offline?data="),
            "{texts:?}"
        );
    }
    let fresh = Env::new();
    fresh.ok(&["init"]);
    let args: Vec<String> = ["add", "--json"]
        .iter()
        .map(|s| s.to_string())
        .chain(pngs.iter().rev().map(|p| p.to_str().unwrap().to_owned()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = fresh.json(&args);
    assert_eq!(r["added"].as_array().unwrap().len(), 25, "{r}");
    let codes = |e: &Env| {
        let mut v: Vec<String> = e
            .json(&["codes", "Svc", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c["label"], c["code"]))
            .collect();
        v.sort();
        v
    };
    assert_eq!(codes(&env), codes(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_check_reads_the_servers_date_header() {
    let server = Server::spawn().await;
    let env = Env::new();
    env.ok(&["init"]);
    let out = env.ok(&["clock", "--server", &server.base]);
    assert!(out.contains("clock within"), "{out}");
}
