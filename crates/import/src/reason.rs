//! Why an entry was skipped ([`SkipReason`]), why a whole file was refused ([`Refusal`]) and what
//! is worth a warning ([`Warning`]): each with a stable code (API: reports and scripts match on
//! it) and a message in English and German.
//!
//! Details carried by a variant are positions, counts and names taken from the file's structure
//! (an algorithm URI, a column name), never key material.

use std::fmt;

/// The language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    /// `de` (any case, with or without region) is German; anything else English.
    pub fn from_tag(tag: &str) -> Lang {
        if tag.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("de")) {
            Lang::De
        } else {
            Lang::En
        }
    }
}

/// Keeps a detail taken from a file short and printable (it ends up in reports and logs).
pub(crate) fn detail(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect::<String>()
}

/// Why one entry of a file was not imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SkipReason {
    /// The token type is OCRA (challenge-response), which Tessera does not verify.
    Ocra,
    /// A PIN key (RFC 6030 figure 5), not a one-time-code key.
    PinKey,
    /// Yubico OTP (AES, modhex), not OATH HOTP/TOTP.
    YubicoOtp,
    /// A static password slot of a YubiKey.
    StaticPassword,
    /// An algorithm or token type this importer does not know.
    AlgorithmUnknown { name: String },
    /// The entry carries no key material (a `KeyReference` only, an empty secret).
    NoSecret,
    /// No serial number (PSKC `SerialNo` or `Key Id`; CSV serial column).
    NoSerial,
    /// The serial number is empty after trimming, longer than 64 characters or not printable.
    SerialInvalid,
    /// The same serial number appeared earlier in this file.
    DuplicateSerial,
    /// The secret does not decode (base64, hex or base32) or is longer than 128 bytes.
    SecretInvalid,
    /// The secret decodes both as hex and as base32; say which with the secret encoding option.
    SecretAmbiguous,
    /// Digits other than 6, 7 or 8.
    DigitsUnsupported { digits: String },
    /// A Luhn check digit is appended to the code (PSKC `CheckDigits`).
    CheckDigits,
    /// The code is not decimal (PSKC `ResponseFormat Encoding`).
    NotDecimal { encoding: String },
    /// A hash other than SHA-1, SHA-256 or SHA-512.
    HashUnsupported { name: String },
    /// MD5 (Google Authenticator export algorithm 4).
    HashMd5,
    /// A counter, time interval or drift that is not an integer in range.
    IntegerInvalid { field: &'static str },
    /// A time step of 0 or more than a day.
    PeriodInvalid,
    /// PSKC `Time` other than 0 (a moved T0); not supported.
    TimeNonZero,
    /// A policy element this importer does not know: RFC 6030 §5 says use is then not permitted.
    PolicyUnknown { element: String },
    /// A PIN policy or a limited number of transactions, which Tessera cannot enforce on the token.
    PolicyUnsupported { element: String },
    /// The key may not be used for one-time codes (`KeyUsage`).
    KeyUsageNotOtp,
    /// The value is encrypted with an algorithm this importer does not support.
    EncryptionUnsupported { algorithm: String },
    /// A CSV row has too few columns or an empty required field.
    RowMalformed { column: String },
    /// An `otpauth://` line (or QR code) that does not parse.
    UriInvalid { problem: String },
    /// A QR code that holds neither `otpauth://` nor `otpauth-migration://`.
    QrNotOtp,
    /// An image in which no QR code was found.
    QrNone,
    /// A Google Authenticator export entry that cannot be used (no secret, unknown type).
    EntryInvalid { problem: String },
    /// Not every QR code of a multi-part Google Authenticator export was given.
    BatchIncomplete { received: usize, total: usize },
}

impl SkipReason {
    /// The stable code, as in JSON reports.
    pub fn code(&self) -> &'static str {
        use SkipReason::*;
        match self {
            Ocra => "ocra",
            PinKey => "pin_key",
            YubicoOtp => "yubico_otp",
            StaticPassword => "static_password",
            AlgorithmUnknown { .. } => "algorithm_unknown",
            NoSecret => "no_secret",
            NoSerial => "no_serial",
            SerialInvalid => "serial_invalid",
            DuplicateSerial => "duplicate_serial",
            SecretInvalid => "secret_invalid",
            SecretAmbiguous => "secret_ambiguous",
            DigitsUnsupported { .. } => "digits_unsupported",
            CheckDigits => "check_digits",
            NotDecimal { .. } => "not_decimal",
            HashUnsupported { .. } => "hash_unsupported",
            HashMd5 => "hash_md5",
            IntegerInvalid { .. } => "integer_invalid",
            PeriodInvalid => "period_invalid",
            TimeNonZero => "time_nonzero",
            PolicyUnknown { .. } => "policy_unknown",
            PolicyUnsupported { .. } => "policy_unsupported",
            KeyUsageNotOtp => "key_usage_not_otp",
            EncryptionUnsupported { .. } => "encryption_unsupported",
            RowMalformed { .. } => "row_malformed",
            UriInvalid { .. } => "uri_invalid",
            QrNotOtp => "qr_not_otp",
            QrNone => "qr_none",
            EntryInvalid { .. } => "entry_invalid",
            BatchIncomplete { .. } => "batch_incomplete",
        }
    }

    /// The message for people, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        use SkipReason::*;
        let de = lang == Lang::De;
        match self {
            Ocra => pick(
                de,
                "OCRA (challenge-response) is not supported",
                "OCRA (Challenge-Response) wird nicht unterstützt",
            ),
            PinKey => pick(
                de,
                "a PIN key, not a one-time-code key",
                "ein PIN-Schlüssel, kein Schlüssel für Einmalcodes",
            ),
            YubicoOtp => pick(
                de,
                "Yubico OTP is not OATH HOTP/TOTP",
                "Yubico OTP ist kein OATH HOTP/TOTP",
            ),
            StaticPassword => pick(
                de,
                "a static password slot, not a one-time-code key",
                "ein Slot mit statischem Passwort, kein Schlüssel für Einmalcodes",
            ),
            AlgorithmUnknown { name } => format!(
                "{} {name:?}",
                pick(
                    de,
                    "unknown algorithm or token type",
                    "unbekannter Algorithmus oder Token-Typ"
                )
            ),
            NoSecret => pick(
                de,
                "no key material in this entry",
                "dieser Eintrag enthält keinen Schlüssel",
            ),
            NoSerial => pick(de, "no serial number", "keine Seriennummer"),
            SerialInvalid => pick(
                de,
                "the serial number is empty, longer than 64 characters or not printable",
                "die Seriennummer ist leer, länger als 64 Zeichen oder nicht druckbar",
            ),
            DuplicateSerial => pick(
                de,
                "this serial number appeared earlier in the file",
                "diese Seriennummer kam weiter oben in der Datei schon vor",
            ),
            SecretInvalid => pick(
                de,
                "the secret does not decode or is longer than 128 bytes",
                "der Schlüssel lässt sich nicht dekodieren oder ist länger als 128 Byte",
            ),
            SecretAmbiguous => pick(
                de,
                "the secret reads as hex and as base32: choose one with --secret-encoding",
                "der Schlüssel ist als Hex und als Base32 lesbar: mit --secret-encoding eines wählen",
            ),
            DigitsUnsupported { digits } => format!(
                "{} ({digits})",
                pick(
                    de,
                    "codes must have 6, 7 or 8 digits",
                    "Codes müssen 6, 7 oder 8 Stellen haben"
                )
            ),
            CheckDigits => pick(
                de,
                "codes with a check digit are not supported",
                "Codes mit Prüfziffer werden nicht unterstützt",
            ),
            NotDecimal { encoding } => format!(
                "{} ({encoding})",
                pick(de, "codes must be decimal", "Codes müssen dezimal sein")
            ),
            HashUnsupported { name } => format!(
                "{} ({name})",
                pick(
                    de,
                    "hash must be SHA-1, SHA-256 or SHA-512",
                    "Hash muss SHA-1, SHA-256 oder SHA-512 sein"
                )
            ),
            HashMd5 => pick(de, "MD5 is not supported", "MD5 wird nicht unterstützt"),
            IntegerInvalid { field } => format!(
                "{} ({field})",
                pick(
                    de,
                    "not an integer in range",
                    "keine Ganzzahl im gültigen Bereich"
                )
            ),
            PeriodInvalid => pick(
                de,
                "the time step must be between 1 and 86400 seconds",
                "der Zeitschritt muss zwischen 1 und 86400 Sekunden liegen",
            ),
            TimeNonZero => pick(
                de,
                "a start time (Time) other than 0 is not supported",
                "eine Startzeit (Time) ungleich 0 wird nicht unterstützt",
            ),
            PolicyUnknown { element } => format!(
                "{} ({element})",
                pick(
                    de,
                    "unknown policy element: use is not permitted (RFC 6030 §5)",
                    "unbekanntes Policy-Element: Nutzung nicht erlaubt (RFC 6030 §5)"
                )
            ),
            PolicyUnsupported { element } => format!(
                "{} ({element})",
                pick(
                    de,
                    "policy cannot be enforced",
                    "Policy kann nicht durchgesetzt werden"
                )
            ),
            KeyUsageNotOtp => pick(
                de,
                "the key may not be used for one-time codes",
                "der Schlüssel darf nicht für Einmalcodes genutzt werden",
            ),
            EncryptionUnsupported { algorithm } => format!(
                "{} {algorithm:?}",
                pick(
                    de,
                    "unsupported encryption",
                    "nicht unterstützte Verschlüsselung"
                )
            ),
            RowMalformed { column } => format!(
                "{} ({column})",
                pick(de, "missing or empty column", "fehlende oder leere Spalte")
            ),
            UriInvalid { problem } => format!(
                "{}: {problem}",
                pick(
                    de,
                    "not a valid otpauth:// URI",
                    "keine gültige otpauth://-URI"
                )
            ),
            QrNotOtp => pick(
                de,
                "the QR code holds no otpauth:// or otpauth-migration:// link",
                "der QR-Code enthält keinen otpauth://- oder otpauth-migration://-Link",
            ),
            QrNone => pick(
                de,
                "no QR code found in the image",
                "im Bild wurde kein QR-Code gefunden",
            ),
            EntryInvalid { problem } => format!(
                "{}: {problem}",
                pick(de, "unusable export entry", "unbrauchbarer Export-Eintrag")
            ),
            BatchIncomplete { received, total } => {
                if de {
                    format!(
                        "nur {received} von {total} QR-Codes dieses Exports erhalten: die fehlenden dazugeben"
                    )
                } else {
                    format!(
                        "{received} of {total} QR codes of this export received: add the missing ones"
                    )
                }
            }
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Lang::En))
    }
}

fn pick(de: bool, en: &str, german: &str) -> String {
    if de { german } else { en }.to_owned()
}

/// Why a whole file was refused: nothing from it may be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// Not well-formed XML, or XML of a different kind.
    #[error("not a valid file of this format: {problem}")]
    Malformed { problem: String },
    /// A DOCTYPE (entities, external references) is never accepted.
    #[error("the file declares a DOCTYPE; refused")]
    Doctype,
    /// An element nests too deep, a text or line is too long, or there are too many entries.
    #[error("the file exceeds a size limit: {limit}")]
    TooLarge { limit: String },
    /// The file ends before its last element was closed.
    #[error("the file is truncated")]
    Truncated,
    /// A PSKC version other than 1.0.
    #[error("unsupported PSKC version {version:?}")]
    Version { version: String },
    /// The file is encrypted with a pre-shared key and none was given.
    #[error("the file is encrypted with a key ({name}): give it with --key-file")]
    KeyRequired { name: String },
    /// The file is encrypted with a password and none was given.
    #[error("the file is encrypted with a password ({name}): give it with --password-stdin")]
    PasswordRequired { name: String },
    /// A key or password was given for a file that is not encrypted that way.
    #[error("the file is not encrypted with a {given}")]
    WrongProtection { given: &'static str },
    /// Decryption or a MAC failed: the key or password is wrong, or the file was changed. One
    /// answer for all of these, so the file cannot be used as an oracle.
    #[error("wrong key or password, or the file was changed (MAC check failed)")]
    WrongKeyOrMac,
    /// An encrypted value has no MAC (RFC 6030 §6.1.1); refused by default.
    #[error("an encrypted value has no MAC: the file cannot be authenticated")]
    MacMissing,
    /// A plaintext file has no MAC at all; accepted only when asked to.
    #[error(
        "the file is not encrypted and carries no MAC: allow unauthenticated files to import it"
    )]
    Unauthenticated,
    /// RSA key transport (RFC 6030 §6.3) is not supported.
    #[error(
        "asymmetric encryption is not supported; ask the vendor for a pre-shared key, a password or a GPG-encrypted file"
    )]
    Asymmetric,
    /// An encryption, MAC or key-derivation algorithm that is not supported.
    #[error("unsupported algorithm {algorithm:?}")]
    AlgorithmUnsupported { algorithm: String },
    /// Key derivation parameters missing or out of range.
    #[error("invalid key derivation parameters: {problem}")]
    KdfInvalid { problem: String },
    /// A CSV file whose header names no serial or no secret column.
    #[error("the CSV header has no {column} column")]
    HeaderMissing { column: &'static str },
    /// The input could not be read.
    #[error("the file could not be read: {problem}")]
    Read { problem: String },
    /// An image that is neither PNG nor JPEG (e.g. text named `.png`).
    #[error("not a PNG or JPEG image")]
    ImageFormat,
    /// An image larger than the limits (dimensions or memory).
    #[error("the image is too large")]
    ImageTooLarge,
    /// A PNG or JPEG that does not decode.
    #[error("the image does not decode")]
    ImageInvalid,
}

impl Refusal {
    /// The stable code, as in JSON reports and API errors.
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            Malformed { .. } => "file_malformed",
            Doctype => "xml_doctype",
            TooLarge { .. } => "file_too_large",
            Truncated => "file_truncated",
            Version { .. } => "pskc_version",
            KeyRequired { .. } => "key_required",
            PasswordRequired { .. } => "password_required",
            WrongProtection { .. } => "wrong_protection",
            WrongKeyOrMac => "wrong_key_or_mac",
            MacMissing => "mac_missing",
            Unauthenticated => "unauthenticated",
            Asymmetric => "asymmetric_unsupported",
            AlgorithmUnsupported { .. } => "algorithm_unsupported",
            KdfInvalid { .. } => "kdf_invalid",
            HeaderMissing { .. } => "csv_header",
            Read { .. } => "read_failed",
            ImageFormat => "image_format",
            ImageTooLarge => "image_too_large",
            ImageInvalid => "image_invalid",
        }
    }

    /// The message for people, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        use Refusal::*;
        if lang == Lang::En {
            return self.to_string();
        }
        match self {
            Malformed { problem } => format!("keine gültige Datei dieses Formats: {problem}"),
            Doctype => "die Datei deklariert einen DOCTYPE; abgelehnt".into(),
            TooLarge { limit } => format!("die Datei überschreitet eine Größengrenze: {limit}"),
            Truncated => "die Datei ist abgeschnitten".into(),
            Version { version } => format!("nicht unterstützte PSKC-Version {version:?}"),
            KeyRequired { name } => format!("die Datei ist mit einem Schlüssel verschlüsselt ({name}): mit --key-file angeben"),
            PasswordRequired { name } => format!("die Datei ist mit einem Passwort verschlüsselt ({name}): mit --password-stdin angeben"),
            WrongProtection { given } => format!("die Datei ist nicht so verschlüsselt ({given})"),
            WrongKeyOrMac => "falscher Schlüssel oder falsches Passwort, oder die Datei wurde verändert (MAC-Prüfung fehlgeschlagen)".into(),
            MacMissing => "ein verschlüsselter Wert hat keinen MAC: die Datei ist nicht authentifizierbar".into(),
            Unauthenticated => "die Datei ist unverschlüsselt und ohne MAC: unauthentifizierte Dateien erst erlauben".into(),
            Asymmetric => "asymmetrische Verschlüsselung wird nicht unterstützt; beim Hersteller einen vorab geteilten Schlüssel, ein Passwort oder eine GPG-verschlüsselte Datei erbitten".into(),
            AlgorithmUnsupported { algorithm } => format!("nicht unterstützter Algorithmus {algorithm:?}"),
            KdfInvalid { problem } => format!("ungültige Parameter der Schlüsselableitung: {problem}"),
            HeaderMissing { column } => format!("die CSV-Kopfzeile hat keine Spalte {column}"),
            Read { problem } => format!("die Datei konnte nicht gelesen werden: {problem}"),
            ImageFormat => "kein PNG- oder JPEG-Bild".into(),
            ImageTooLarge => "das Bild ist zu groß".into(),
            ImageInvalid => "das Bild lässt sich nicht dekodieren".into(),
        }
    }
}

/// Something worth telling the admin about an imported record or file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Warning {
    /// The secret is shorter than RFC 4226's 128 bits (common: 80-bit app secrets).
    WeakSecret { bits: usize },
    /// The file was accepted without a MAC because that was allowed.
    Unauthenticated,
    /// The file is signed; the signature was not verified.
    SignatureNotVerified,
}

impl Warning {
    pub fn code(&self) -> &'static str {
        match self {
            Warning::WeakSecret { .. } => "weak_secret",
            Warning::Unauthenticated => "unauthenticated",
            Warning::SignatureNotVerified => "signature_not_verified",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let de = lang == Lang::De;
        match self {
            Warning::WeakSecret { bits } => {
                if de {
                    format!("schwacher Schlüssel: {bits} Bit (RFC 4226 verlangt mindestens 128)")
                } else {
                    format!("weak secret: {bits} bits (RFC 4226 asks for at least 128)")
                }
            }
            Warning::Unauthenticated => pick(
                de,
                "the file carries no MAC: its content could not be authenticated",
                "die Datei hat keinen MAC: ihr Inhalt ließ sich nicht authentifizieren",
            ),
            Warning::SignatureNotVerified => pick(
                de,
                "the file is signed; the signature was not verified",
                "die Datei ist signiert; die Signatur wurde nicht geprüft",
            ),
        }
    }
}
