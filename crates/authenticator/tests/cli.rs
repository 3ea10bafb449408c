//! The `tessera-auth` binary as a user runs it: a vault in a temporary directory, the PIN from a
//! file, codes checked against oathtool (an independent implementation).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use support::{Env, oathtool};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
fn init_add_codes_and_list_as_a_user_does() {
    let env = Env::new();
    env.ok(&["init"]);
    assert!(env.vault().exists());
    // A second init refuses to overwrite.
    assert!(!env.run(&["init"]).status.success());

    let uri = format!("otpauth://totp/Acme:alice@example.com?secret={SECRET}&issuer=Acme");
    let report = env.json(&["add", &uri, "--name", "Work", "--json"]);
    assert_eq!(report["added"].as_array().unwrap().len(), 1);
    assert!(!report.to_string().contains(SECRET));
    // The same token again is a duplicate, not a second entry.
    let again = env.json(&["add", &uri, "--json"]);
    assert_eq!(again["duplicate"].as_array().unwrap().len(), 1);

    let codes = env.json(&["codes", "--json"]);
    let row = &codes[0];
    assert_eq!(row["label"], "Work");
    let code = row["code"].as_str().unwrap().to_owned();
    let left = row["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left));
    if let Some(expected) = oathtool(&["--totp", "-b", SECRET]) {
        // The step may have turned between the two calls: accept the neighbour then.
        let prev = oathtool(&["--totp", "-b", SECRET, "-N", "now - 30 seconds"]).unwrap();
        assert!(
            code == expected || code == prev,
            "{code} vs oathtool {expected}"
        );
    }

    let listed = env.json(&["list", "--json"]);
    assert_eq!(listed[0]["issuer"], "Acme");
    assert_eq!(listed[0]["type"], "totp");
    assert!(!listed.to_string().contains(SECRET));

    // The vault file holds no seed in the clear.
    let raw = std::fs::read_to_string(env.vault()).unwrap();
    assert!(!raw.contains(SECRET) && !raw.contains("Acme"));

    env.ok(&["rename", "Work", "Acme login"]);
    assert_eq!(
        env.json(&["codes", "acme", "--json"])[0]["label"],
        "Acme login"
    );
    env.ok(&["rm", "Acme login"]);
    assert!(env.json(&["list", "--json"]).as_array().unwrap().is_empty());
}

#[test]
fn hotp_code_advances_the_counter() {
    let env = Env::new();
    env.ok(&["init"]);
    env.ok(&[
        "add",
        &format!("otpauth://hotp/Bank:bob?secret={SECRET}&counter=5"),
    ]);
    let a = env.ok(&["code", "bank"]).trim().to_owned();
    let b = env.ok(&["code", "bank"]).trim().to_owned();
    if let Some(c5) = oathtool(&["--hotp", "-b", SECRET, "-c", "5"]) {
        assert_eq!(a, c5);
        assert_eq!(b, oathtool(&["--hotp", "-b", SECRET, "-c", "6"]).unwrap());
    }
    assert_ne!(a, b);
}

#[test]
fn a_wrong_pin_is_refused_and_the_right_one_still_works() {
    let env = Env::new();
    env.ok(&["init"]);
    std::fs::write(env.pin_file(), "111111\n").unwrap();
    let out = env.run(&["list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong PIN or passphrase"), "{err}");
    std::fs::write(env.pin_file(), "246810\n").unwrap();
    env.ok(&["list"]);
}

#[test]
fn a_short_pin_is_refused_at_init() {
    let env = Env::new();
    std::fs::write(env.pin_file(), "1234\n").unwrap();
    assert!(!env.run(&["init"]).status.success());
    assert!(!env.vault().exists());
    std::fs::write(env.pin_file(), "a long enough passphrase\n").unwrap();
    env.ok(&["init", "--passphrase"]);
}

#[test]
fn a_text_list_reports_each_line() {
    let env = Env::new();
    env.ok(&["init"]);
    let list = env.dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!("# mine\notpauth://totp/A:a?secret={SECRET}\nnot a uri\notpauth://totp/B:b?secret=JBSWY3DPEHPK3PXP&digits=8\n"),
    )
    .unwrap();
    let r = env.json(&["add", list.to_str().unwrap(), "--json"]);
    assert_eq!(r["added"].as_array().unwrap().len(), 2);
    assert_eq!(r["skipped"][0]["locator"], "line 3");
    assert_eq!(r["skipped"][0]["code"], "uri_invalid");
}
