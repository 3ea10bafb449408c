//! Writes PSKC files, encrypted only: every secret and counter is AES-CBC encrypted and
//! HMAC'd (RFC 6030 §6.1.1), under a pre-shared key or a password (PBKDF2, §6.2). Streaming: one
//! key at a time to any `Write`.
//!
//! Randomness (IVs, the MAC key, the salt) comes from the caller, so the crate stays without an
//! RNG of its own.

use std::io::{self, Write};

use data_encoding::BASE64;
use zeroize::Zeroizing;

use super::crypto::{Cipher, MacHash};
use crate::{Kind, Record};

/// The protection of an exported file.
pub enum ExportProtection {
    /// A pre-shared key of 16, 24 or 32 bytes (AES-128/192/256-CBC).
    Key(Zeroizing<Vec<u8>>),
    /// A password: PBKDF2-HMAC-SHA256 with this many iterations, AES-256-CBC.
    Password {
        password: Zeroizing<String>,
        iterations: u32,
    },
}

impl std::fmt::Debug for ExportProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportProtection(redacted)")
    }
}

/// Writes one `KeyContainer` (see the module notes).
pub struct PskcWriter<W: Write> {
    out: W,
    cipher: Cipher,
    key: Zeroizing<Vec<u8>>,
    mac_key: Zeroizing<Vec<u8>>,
    random: Random,
}

impl<W: Write> std::fmt::Debug for PskcWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PskcWriter")
    }
}

/// Fills a buffer with cryptographically secure random bytes.
pub type Random = Box<dyn FnMut(&mut [u8]) -> io::Result<()> + Send>;

const MAC: MacHash = MacHash::Sha256;

/// Escapes text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl<W: Write> PskcWriter<W> {
    /// Starts the container. `random` fills buffers with cryptographically secure random bytes;
    /// its failure fails the write (no IV or MAC key is ever left predictable).
    pub fn new(
        mut out: W,
        protection: ExportProtection,
        mut random: Random,
    ) -> io::Result<PskcWriter<W>> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#">"#
        )?;
        let (cipher, key) = match protection {
            ExportProtection::Key(key) => {
                let cipher = match key.len() {
                    16 | 24 | 32 => Cipher::AesCbc(key.len()),
                    _ => return Err(invalid("the key must be 16, 24 or 32 bytes")),
                };
                writeln!(
                    out,
                    "  <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>"
                )?;
                (cipher, key)
            }
            ExportProtection::Password {
                password,
                iterations,
            } => {
                if iterations == 0 {
                    return Err(invalid("iterations must be at least 1"));
                }
                let mut salt = [0u8; 16];
                random(&mut salt)?;
                let mut key = Zeroizing::new(vec![0u8; 32]);
                MacHash::Sha256.pbkdf2(password.as_bytes(), &salt, iterations, &mut key);
                write!(
                    out,
                    concat!(
                        "  <EncryptionKey><xenc11:DerivedKey>",
                        "<xenc11:KeyDerivationMethod Algorithm=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2\">",
                        "<pkcs5:PBKDF2-params><Salt><Specified>{}</Specified></Salt>",
                        "<IterationCount>{}</IterationCount><KeyLength>32</KeyLength>",
                        "<PRF Algorithm=\"{}\"/></pkcs5:PBKDF2-params></xenc11:KeyDerivationMethod>",
                        "<xenc11:MasterKeyName>Tessera export</xenc11:MasterKeyName>",
                        "</xenc11:DerivedKey></EncryptionKey>\n"
                    ),
                    BASE64.encode(&salt),
                    iterations,
                    MacHash::Sha256.uri()
                )?;
                (Cipher::AesCbc(32), key)
            }
        };
        let mut mac_key = Zeroizing::new(vec![0u8; 32]);
        random(&mut mac_key)?;
        let mut iv = [0u8; 16];
        random(&mut iv)?;
        let wrapped = cipher.encrypt_cbc(&key, &iv, &mac_key);
        writeln!(
            out,
            "  <MACMethod Algorithm=\"{}\"><MACKey><xenc:EncryptionMethod Algorithm=\"{}\"/><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>",
            MAC.uri(),
            cipher.uri(),
            BASE64.encode(&wrapped)
        )?;
        Ok(PskcWriter {
            out,
            cipher,
            key,
            mac_key,
            random,
        })
    }

    /// An `EncryptedValue` with its `ValueMAC`.
    fn encrypted(&mut self, element: &str, plain: &[u8]) -> io::Result<()> {
        let mut iv = [0u8; 16];
        (self.random)(&mut iv)?;
        let data = self.cipher.encrypt_cbc(&self.key, &iv, plain);
        let mac = MAC.mac(&self.mac_key, &data);
        write!(
            self.out,
            "<{element}><EncryptedValue><xenc:EncryptionMethod Algorithm=\"{}\"/><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>{}</ValueMAC></{element}>",
            self.cipher.uri(),
            BASE64.encode(&data),
            BASE64.encode(&mac)
        )
    }

    /// Writes one `KeyPackage`. The record's serial is required.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let serial = record.serial.as_deref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a record without a serial number",
            )
        })?;
        write!(self.out, "  <KeyPackage><DeviceInfo>")?;
        if let Some(m) = &record.manufacturer {
            write!(self.out, "<Manufacturer>{}</Manufacturer>", esc(m))?;
        }
        write!(self.out, "<SerialNo>{}</SerialNo>", esc(serial))?;
        if let Some(m) = &record.model {
            write!(self.out, "<Model>{}</Model>", esc(m))?;
        }
        let algorithm = match record.kind {
            Kind::Hotp { .. } => "urn:ietf:params:xml:ns:keyprov:pskc:hotp",
            Kind::Totp { .. } => "urn:ietf:params:xml:ns:keyprov:pskc:totp",
        };
        write!(
            self.out,
            "</DeviceInfo><Key Id=\"{}\" Algorithm=\"{algorithm}\">",
            esc(serial)
        )?;
        if let Some(i) = &record.issuer {
            write!(self.out, "<Issuer>{}</Issuer>", esc(i))?;
        }
        write!(
            self.out,
            "<AlgorithmParameters><Suite>HMAC-{}</Suite><ResponseFormat Length=\"{}\" Encoding=\"DECIMAL\"/></AlgorithmParameters><Data>",
            record.algorithm.as_str(),
            record.digits
        )?;
        self.encrypted("Secret", record.secret.as_bytes())?;
        match record.kind {
            Kind::Hotp { counter } => {
                self.encrypted("Counter", &counter.to_be_bytes())?;
            }
            Kind::Totp { period, drift } => {
                write!(
                    self.out,
                    "<Time><PlainValue>0</PlainValue></Time><TimeInterval><PlainValue>{period}</PlainValue></TimeInterval>"
                )?;
                if drift != 0 {
                    write!(
                        self.out,
                        "<TimeDrift><PlainValue>{drift}</PlainValue></TimeDrift>"
                    )?;
                }
            }
        }
        writeln!(self.out, "</Data></Key></KeyPackage>")
    }

    /// Closes the container and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        writeln!(self.out, "</KeyContainer>")?;
        self.out.flush()?;
        Ok(self.out)
    }
}
