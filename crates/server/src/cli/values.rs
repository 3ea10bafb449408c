//! Parsers for command-line values that several commands share, so that one word means the same
//! in every command: a yes/no value accepts `on/off`, `yes/no` and `true/false` in any case, and a
//! per-user setting accepts the same words or `policy`.
//!
//! A value these parsers refuse is a usage error: clap reports it and the command exits with 2
//! before anything is opened.

use std::fmt;

/// The words for yes and for no, lowercase.
const YES: [&str; 3] = ["yes", "on", "true"];
const NO: [&str; 3] = ["no", "off", "false"];

/// How the help of a yes/no option names its values.
pub const BOOL_VALUES: &str = "yes|no";

/// How the help of a per-user setting names its values.
pub const SETTING_VALUES: &str = "yes|no|policy";

fn word(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    if YES.contains(&s.as_str()) {
        Some(true)
    } else if NO.contains(&s.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// A yes/no value: `yes`, `on`, `true` or `no`, `off`, `false`, in any case.
pub fn boolean(s: &str) -> Result<bool, String> {
    word(s).ok_or_else(|| "expected yes or no (on/off and true/false work too)".to_owned())
}

/// A per-user setting: the user's own yes or no, or `policy` to follow the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The user's own setting.
    Own(bool),
    /// Follow the configuration.
    Policy,
}

impl Setting {
    /// `Some(value)` for the user's own setting, `None` to follow the configuration.
    pub fn own(self) -> Option<bool> {
        match self {
            Setting::Own(v) => Some(v),
            Setting::Policy => None,
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Setting::Own(true) => "yes",
            Setting::Own(false) => "no",
            Setting::Policy => "policy",
        })
    }
}

/// A per-user setting: the words of [`boolean`], or `policy`.
pub fn setting(s: &str) -> Result<Setting, String> {
    if s.trim().eq_ignore_ascii_case("policy") {
        return Ok(Setting::Policy);
    }
    word(s).map(Setting::Own).ok_or_else(|| {
        "expected yes, no or policy (on/off and true/false work too; policy follows the \
         configuration)"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_boolean_word_is_accepted_in_any_case() {
        for s in ["yes", "on", "true", "YES", "On", "TRUE", " yes "] {
            assert_eq!(boolean(s), Ok(true), "{s}");
            assert_eq!(setting(s), Ok(Setting::Own(true)), "{s}");
        }
        for s in ["no", "off", "false", "NO", "Off", "False"] {
            assert_eq!(boolean(s), Ok(false), "{s}");
            assert_eq!(setting(s), Ok(Setting::Own(false)), "{s}");
        }
        assert_eq!(setting("Policy"), Ok(Setting::Policy));
    }

    #[test]
    fn other_words_are_refused() {
        for s in ["", "maybe", "1", "0", "y", "policy!"] {
            assert!(boolean(s).is_err(), "{s}");
            assert!(setting(s).is_err(), "{s}");
        }
        assert!(boolean("policy").is_err());
    }
}
