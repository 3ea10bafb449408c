//! `tessera-auth`, Tessera's own authenticator for the terminal: tokens (HOTP/TOTP) in an
//! encrypted local vault opened by a PIN or passphrase, imports from other apps, codes with the
//! seconds left.
//!
//! Layout: [`vault`] owns the file format and the keys (slots, AEAD, crash-safe save, the lock
//! against two writers); [`entry`] the tokens inside; [`kdf`] the bounded Argon2id parameters;
//! [`cli`] the commands. The `otp` crate computes codes, the `import` crate reads other files.
//! No server code is linked in.

pub mod apps;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod crypto;
pub mod entry;
pub mod import;
pub mod kdf;
pub mod qr;
pub mod vault;
