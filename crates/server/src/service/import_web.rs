//! Imports from the web admin pages: uploaded files read in memory (PSKC, CSV, SafeNet XML, URI lists,
//! Google Authenticator exports, QR images), a dry run first, the upload kept sealed with the
//! admin's session until it is confirmed (with a fresh re-authentication, like every other
//! sensitive change), then imported as on the command line.
//!
//! The staged upload holds seeds and maybe the file's password: it is sealed under the server
//! key, bound to the session, kept at most [`STAGE_SECS`], and dropped when confirmed,
//! cancelled or replaced (the store's housekeeping removes expired ones and those of ended
//! sessions).

use serde::{Deserialize, Serialize};
use tessera_import::csv::{CsvOptions, CsvReader, Preset, SecretEncoding};
use tessera_import::pskc::{Protection, PskcOptions, PskcReader};
use tessera_import::qr::QrImages;
use tessera_import::uri::UriListReader;
use tessera_import::{Item, Refusal, Source};
use zeroize::{Zeroize, Zeroizing};

use crate::msg::{Key, Msg};

use super::inventory::{ImportPolicy, ImportReport, ReadTally};
use super::{Error, Result, Service, WebUser};

/// How long an upload waits for its confirmation.
pub const STAGE_SECS: i64 = 30 * 60;

/// What an uploaded file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadFormat {
    Pskc,
    Csv,
    Safenet,
    Uris,
    Migration,
    Qr,
}

impl UploadFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadFormat::Pskc => "pskc",
            UploadFormat::Csv => "csv",
            UploadFormat::Safenet => "safenet",
            UploadFormat::Uris => "uris",
            UploadFormat::Migration => "migration",
            UploadFormat::Qr => "qr",
        }
    }
}

impl std::str::FromStr for UploadFormat {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<UploadFormat, ()> {
        Ok(match s {
            "pskc" => UploadFormat::Pskc,
            "csv" => UploadFormat::Csv,
            "safenet" => UploadFormat::Safenet,
            "uris" => UploadFormat::Uris,
            "migration" => UploadFormat::Migration,
            "qr" => UploadFormat::Qr,
            _ => return Err(()),
        })
    }
}

/// One uploaded file: its name (for the report's locators) and its bytes.
#[derive(Clone, Serialize, Deserialize)]
pub struct UploadedFile {
    pub name: String,
    #[serde(with = "b64")]
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for UploadedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedFile")
            .field("name", &self.name)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Drop for UploadedFile {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// An upload of the web import page with its options. `Debug` shows names and sizes only.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Upload {
    pub format: Option<UploadFormat>,
    pub files: Vec<UploadedFile>,
    /// PSKC: the file's password, or empty.
    pub password: String,
    /// PSKC: the pre-shared key in hex, or empty.
    pub key_hex: String,
    /// CSV: `auto`, `entra`, `privacyidea`, `safeid`, `pingid` or `yubico`.
    pub preset: String,
    /// CSV: `auto`, `hex` or `base32`; empty: the preset's.
    pub secret_encoding: String,
    pub allow_unauthenticated: bool,
    pub update_existing: bool,
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.password.zeroize();
        self.key_hex.zeroize();
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<(&str, usize)> = self
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.bytes.len()))
            .collect();
        f.debug_struct("Upload")
            .field("format", &self.format)
            .field("files", &files)
            .finish_non_exhaustive()
    }
}

mod b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// QR images and text files with `otpauth-migration://` or `otpauth://` links, read whole; the
/// parts of one export are gathered across files. With `images_only` (and for any file named
/// or made like an image) a file must be a PNG or JPEG. An unreadable image refuses the whole
/// import: the admin meant every file given.
pub fn images_source(files: &[(String, &[u8])], images_only: bool) -> Source<'static> {
    let mut images = QrImages::default();
    let mut refusal: Option<Refusal> = None;
    for (name, bytes) in files {
        let lower = name.to_ascii_lowercase();
        let named_image = [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e));
        let is_image = images_only
            || named_image
            || bytes.starts_with(b"\x89PNG")
            || bytes.starts_with(b"\xFF\xD8\xFF");
        if is_image || std::str::from_utf8(bytes).is_err() {
            if let Err(e) = images.add(name, bytes) {
                refusal.get_or_insert(e);
            }
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                images.add_text(line, &format!("{name} line {}", n + 1));
            }
        }
    }
    let items: Vec<std::result::Result<Item, Refusal>> = match refusal {
        Some(e) => vec![Err(e)],
        None => images.finish().into_iter().map(Ok).collect(),
    };
    Box::new(items.into_iter())
}

/// PSKC files one after the other, each read with the key or the password (a key wins).
pub fn pskc_source<R: std::io::Read + Send + 'static>(
    readers: Vec<R>,
    key: Option<Zeroizing<Vec<u8>>>,
    password: Option<Zeroizing<String>>,
    allow_unauthenticated: bool,
) -> Source<'static> {
    Box::new(readers.into_iter().flat_map(move |r| {
        let protection = match (&key, &password) {
            (Some(k), _) => Protection::Key(k.clone()),
            (_, Some(p)) => Protection::Password(p.clone()),
            _ => Protection::None,
        };
        PskcReader::new(
            r,
            PskcOptions {
                protection,
                allow_unauthenticated,
            },
        )
    }))
}

/// The reader of an upload, over copies of its bytes (the upload stays staged for the
/// confirmation).
fn source(upload: &Upload, tally: &ReadTally) -> Result<Source<'static>> {
    let invalid = |text: &str| Error::Invalid(Msg::text(text.to_owned()));
    let files = &upload.files;
    if files.is_empty() {
        return Err(Error::Invalid(Msg::new(Key::UploadEmpty)));
    }
    let cursor =
        |f: &UploadedFile| tally.wrap(std::io::Cursor::new(Zeroizing::new(f.bytes.clone())));
    Ok(match upload.format.unwrap_or(UploadFormat::Pskc) {
        UploadFormat::Pskc => {
            let key = upload.key_hex.trim();
            let key = if key.is_empty() {
                None
            } else {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(key.as_bytes())
                    .ok()
                    .filter(|b| matches!(b.len(), 16 | 24 | 32))
                    .ok_or_else(|| invalid("the key: 32, 48 or 64 hex digits"))?;
                Some(Zeroizing::new(bytes))
            };
            let password =
                (!upload.password.is_empty()).then(|| Zeroizing::new(upload.password.clone()));
            let readers: Vec<_> = files.iter().map(cursor).collect();
            pskc_source(readers, key, password, upload.allow_unauthenticated)
        }
        UploadFormat::Csv => {
            let preset: Preset = match upload.preset.trim() {
                "" => Preset::Auto,
                p => p.parse().map_err(|e: String| invalid(&e))?,
            };
            let encoding: Option<SecretEncoding> = match upload.secret_encoding.trim() {
                "" => None,
                e => Some(e.parse().map_err(|e: String| invalid(&e))?),
            };
            let mut sources: Vec<Source<'static>> = Vec::new();
            for f in files {
                let options = CsvOptions { preset, encoding };
                sources.push(match CsvReader::new(cursor(f), options) {
                    Ok(r) => Box::new(r),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                });
            }
            Box::new(sources.into_iter().flatten())
        }
        UploadFormat::Safenet => {
            let readers: Vec<_> = files
                .iter()
                .map(|f| tessera_import::safenet::SafenetReader::new(cursor(f)))
                .collect();
            Box::new(readers.into_iter().flatten())
        }
        UploadFormat::Uris => {
            let readers: Vec<_> = files
                .iter()
                .map(|f| UriListReader::new(cursor(f)))
                .collect();
            Box::new(readers.into_iter().flatten())
        }
        UploadFormat::Migration | UploadFormat::Qr => {
            let named: Vec<(String, &[u8])> = files
                .iter()
                .map(|f| {
                    tally.add(&f.bytes);
                    (f.name.clone(), f.bytes.as_slice())
                })
                .collect();
            images_source(&named, upload.format == Some(UploadFormat::Qr))
        }
    })
}

/// Associated data of a staged upload: bound to the session.
fn stage_aad(session_hash: &str) -> Vec<u8> {
    [
        b"tessera/import-upload/v1/".as_slice(),
        session_hash.as_bytes(),
    ]
    .concat()
}

impl Service {
    async fn run_upload(
        &self,
        me: &WebUser,
        upload: &Upload,
        dry_run: bool,
    ) -> Result<ImportReport> {
        let tally = ReadTally::default();
        // QR images are decoded as the source is made: off the async workers.
        let source = {
            let (upload, tally) = (upload.clone(), tally.clone());
            tokio::task::spawn_blocking(move || source(&upload, &tally))
                .await
                .map_err(|e| Error::Invalid(Msg::text(format!("upload not read: {e}"))))??
        };
        let policy = ImportPolicy {
            format: upload
                .format
                .unwrap_or(UploadFormat::Pskc)
                .as_str()
                .to_owned(),
            update_existing: upload.update_existing,
            dry_run,
            assign: false,
        };
        self.import_tokens(&me.actor(), source, &tally, &policy, &|_| {})
            .await
    }

    /// The first step of a web import: a dry run of the upload (nothing kept), and the upload
    /// staged for [`Service::confirm_web_import`] unless the file was refused. Admins only.
    pub async fn stage_web_import(&self, me: &WebUser, upload: Upload) -> Result<ImportReport> {
        if !me.is_admin() {
            return Err(Error::Forbidden(Msg::new(Key::NotAdmin)));
        }
        let report = self.run_upload(me, &upload, true).await?;
        if report.refused.is_none() {
            let json = Zeroizing::new(
                serde_json::to_vec(&upload)
                    .map_err(|e| Error::Invalid(Msg::text(e.to_string())))?,
            );
            let sealed = self.keys.seal(&stage_aad(&me.session_hash), &json)?;
            let expires = self.clock.now().saturating_add(STAGE_SECS);
            self.store
                .stage_upload(&me.session_hash, &sealed, expires)
                .await?;
        }
        Ok(report)
    }

    /// Whether this session has an upload waiting for its confirmation.
    pub async fn has_staged_import(&self, me: &WebUser) -> Result<bool> {
        Ok(self
            .store
            .staged_upload(&me.session_hash, self.clock.now())
            .await?
            .is_some())
    }

    /// Imports the session's staged upload (needs a fresh re-authentication); the upload is
    /// dropped whatever the outcome.
    pub async fn confirm_web_import(&self, me: &WebUser) -> Result<ImportReport> {
        me.actor().require_reauth(self.clock.now())?;
        let Some(sealed) = self
            .store
            .staged_upload(&me.session_hash, self.clock.now())
            .await?
        else {
            return Err(Error::Invalid(Msg::new(Key::UploadGone)));
        };
        self.store.drop_staged_upload(&me.session_hash).await?;
        let json = self
            .keys
            .open(&stage_aad(&me.session_hash), &sealed)
            .map_err(|_| Error::Invalid(Msg::new(Key::UploadGone)))?;
        let upload: Upload =
            serde_json::from_slice(&json).map_err(|_| Error::Invalid(Msg::new(Key::UploadGone)))?;
        self.run_upload(me, &upload, false).await
    }

    /// Drops the session's staged upload, if any.
    pub async fn cancel_web_import(&self, me: &WebUser) -> Result<()> {
        self.store.drop_staged_upload(&me.session_hash).await?;
        Ok(())
    }

    /// The makers in the inventory (the list's filter).
    pub async fn inventory_manufacturers(&self) -> Result<Vec<String>> {
        Ok(self.store.inventory_manufacturers().await?)
    }
}
