//! Messages by key: what the service says to people (why an input was refused, why an action is
//! not possible) as a catalogue key plus named arguments, never as finished English text. Web
//! pages render a [`Msg`] in the page's language ([`crate::i18n::Tr::msg`]); the JSON API, the
//! CLI and the log render it in English ([`Msg::english`]).
//!
//! Every key the code can produce is a variant of [`Key`], and [`Key::ALL`] lists them (one
//! macro makes both), so a test checks that each has a text in both catalogues.

use std::fmt;

use crate::i18n::Tr;
use crate::model::Language;

macro_rules! keys {
    ($($(#[$doc:meta])* $variant:ident => $key:literal,)*) => {
        /// A message the service can produce; its text is `[error]` in `i18n/*.toml`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key {
            $($(#[$doc])* $variant,)*
        }

        impl Key {
            /// Every key, for the catalogue test.
            pub const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The catalogue key.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Key::$variant => $key,)*
                }
            }
        }
    };
}

keys! {
    /// A text made elsewhere, shown as it is (the CLI's own input checks, which are English).
    Text => "error.text",
    UsernameFormat => "error.username_format",
    UsernameLength => "error.username_length",
    EmailFormat => "error.email_format",
    PhoneFormat => "error.phone_format",
    TextField => "error.text_field",
    PasswordLength => "error.password_length",
    UserExists => "error.user_exists",
    DisableSelf => "error.disable_self",
    DeleteSelf => "error.delete_self",
    LastAdmin => "error.last_admin",
    NameLength => "error.name_length",
    Algorithm => "error.algorithm",
    TokenDigits => "error.token_digits",
    TokenPeriod => "error.token_period",
    KeyUriTooLong => "error.key_uri_too_long",
    ParamsNotForKind => "error.params_not_for_kind",
    NoEmail => "error.no_email",
    NoPhone => "error.no_phone",
    SerialExists => "error.serial_exists",
    NotInStock => "error.not_in_stock",
    ClaimNextCode => "error.claim_next_code",
    SerialFormat => "error.serial_format",
    SerialInUse => "error.serial_in_use",
    UploadEmpty => "error.upload_empty",
    UploadGone => "error.upload_gone",
    ExportDisabled => "error.export_disabled",
    NotPending => "error.not_pending",
    Revoked => "error.revoked",
    NotResynced => "error.not_resynced",
    TokenIs => "error.token_is",
    CodeFormat => "error.code_format",
    PassOrPassword => "error.pass_or_password",
    AppExists => "error.app_exists",
    RadiusClientExists => "error.radius_client_exists",
    RadiusSecretEmpty => "error.radius_secret_empty",
    RadiusSecretLength => "error.radius_secret_length",
    RadiusNoNextSecret => "error.radius_no_next_secret",
    UserDisabled => "error.user_disabled",
    InviteNoEmail => "error.invite_no_email",
    InvalidAddress => "error.invalid_address",
    FormInvalid => "error.form_invalid",
    FormMalformed => "error.form_malformed",
    CodesNotConfirmed => "error.codes_not_confirmed",
    NotAdmin => "error.not_admin",
    EnrollmentNotStarted => "error.enrollment_not_started",
    EnrollmentNotComplete => "error.enrollment_not_complete",
    HintLength => "error.hint_length",
    HintHasPassword => "error.hint_has_password",
    ReissueNoEmail => "error.reissue_no_email",
    UnknownSetting => "error.unknown_setting",
    BulkFilter => "error.bulk_filter",
    SelfRecoveryImpossible => "error.self_recovery_impossible",
    ResetUnconfirmed => "admin_recovery.reset_unconfirmed",
    Language => "error.language",
    NotFound => "error.not_found",
    Exists => "error.exists",
    Unauthenticated => "error.unauthenticated",
    InvalidCredentials => "error.invalid_credentials",
    ReauthRequired => "error.reauth_required",
    InvalidCode => "error.invalid_code",
    Throttled => "error.throttled",
    Internal => "error.internal",
    EnrollmentUsed => "error.enrollment_used",
    EnrollmentExpired => "error.enrollment_expired",
    EnrollmentSuperseded => "error.enrollment_superseded",
    EnrollmentEnded => "error.enrollment_ended",
    MailFailed => "error.mail_failed",
}

/// A message: a key and its named arguments (`{name}` in the texts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub key: Key,
    pub args: Vec<(&'static str, Arg)>,
}

/// The value of an argument: a text as it is (a name, a number), or a catalogue key whose text
/// is taken in the reader's language (a token's state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Key(&'static str),
}

impl Msg {
    pub fn new(key: Key) -> Msg {
        Msg {
            key,
            args: Vec::new(),
        }
    }

    /// The message with the argument `name` set to `value`.
    pub fn arg(mut self, name: &'static str, value: impl fmt::Display) -> Msg {
        self.args.push((name, Arg::Text(value.to_string())));
        self
    }

    /// The message with the argument `name` set to the text of catalogue key `key`.
    pub fn arg_key(mut self, name: &'static str, key: &'static str) -> Msg {
        self.args.push((name, Arg::Key(key)));
        self
    }

    /// A text that is shown as it is, in every language.
    pub fn text(text: impl Into<String>) -> Msg {
        Msg::new(Key::Text).arg("text", text.into())
    }

    /// The message in English: for the JSON API, the CLI and the log.
    pub fn english(&self) -> String {
        Tr::new(Language::En).msg(self)
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english())
    }
}

/// The catalogue key of a token state's name (`web.state_active`, ...).
pub fn state_key(state: crate::model::TokenState) -> &'static str {
    use crate::model::TokenState;
    match state {
        TokenState::Pending => "web.state_pending",
        TokenState::Active => "web.state_active",
        TokenState::Disabled => "web.state_disabled",
        TokenState::Locked => "web.state_locked",
        TokenState::Revoked => "web.state_revoked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_key_has_a_text_in_both_languages() {
        for key in Key::ALL {
            for lang in [Language::En, Language::De] {
                assert!(
                    crate::i18n::has_key(lang, key.as_str()),
                    "{} missing in {lang}.toml",
                    key.as_str()
                );
            }
        }
        for state in crate::model::TokenState::ALL {
            assert!(crate::i18n::has_key(Language::De, state_key(*state)));
        }
    }

    #[test]
    fn messages_render_in_english_and_german_with_their_arguments() {
        let m = Msg::new(Key::PasswordLength).arg("min", 10);
        assert_eq!(m.english(), "password: between 10 and 1024 characters");
        assert_eq!(
            Tr::new(Language::De).msg(&m),
            "Passwort: zwischen 10 und 1024 Zeichen"
        );
        let state = Msg::new(Key::TokenIs).arg_key("state", "web.state_revoked");
        assert_eq!(state.english(), "token is revoked");
        assert_eq!(
            Tr::new(Language::De).msg(&state),
            "Das Gerät ist widerrufen"
        );
        // A value is never filled again: a name with braces stays as typed.
        let name = Msg::new(Key::UserExists).arg("name", "{min}");
        assert_eq!(name.english(), "user {min} exists already");
    }
}
