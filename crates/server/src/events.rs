//! Audit entries for people: the name of each action, the result and the reason in the reader's
//! language, for the event lists on pages (portal, a user's admin page, the audit log).
//!
//! The log itself stays as written (English, hash-chained; the API and the CLI show it as
//! stored). Pages translate when they show it: an action by `[event.action]`, a result by
//! `[event.result]`, and a reason by matching it against the English texts of `[event.reason]`,
//! whose `{placeholders}` take the varying parts (names, numbers, addresses) and are put into the
//! reader's language's text. A reason made of parts joined by "; " is translated part by part; a
//! part that matches no text is shown as stored. Entries written by older versions are
//! translated the same way, as far as their text still matches.

use std::sync::OnceLock;

use crate::i18n::Tr;
use crate::model::Language;

/// Every action the server writes to the audit log. `Service::audit_as` refuses others in
/// debug builds (the tests), so a new action cannot appear on a page without a name.
pub const ACTIONS: &[&str] = &[
    "account.reset",
    "app.add",
    "app.revoke",
    "audit.checkpoint",
    "audit.key",
    "auth.login",
    "auth.logout",
    "auth.reauth",
    "backup.create",
    "backup.restore",
    "enroll.complete",
    "enroll.end",
    "enroll.invite",
    "key.activate",
    "key.add",
    "key.retire",
    "key.rewrap",
    "import.tokens",
    "inventory.assign",
    "inventory.claim",
    "inventory.export",
    "inventory.retire",
    "mail.test",
    "radius.client.add",
    "radius.client.remove",
    "radius.client.rotate",
    "portal.refused",
    "recovery.complete",
    "recovery.deliver",
    "recovery.issue",
    "recovery.start",
    "recovery.verify",
    "reset.confirm",
    "reset.request",
    "security.admins_notified",
    "security.blocked",
    "security.notify",
    "security.unlock",
    "token.activate",
    "token.add",
    "token.delete",
    "token.disable",
    "token.enable",
    "token.migrate",
    "token.program",
    "token.rename",
    "token.resync",
    "token.revoke",
    "token.unlock",
    "user.add",
    "user.delete",
    "user.passwd",
    "user.recovery",
    "user.recovery_delivery",
    "user.recovery_policy",
    "user.set",
    "validate",
    "validate.challenge",
    "vault_backup.delete",
    "vault_backup.download",
    "vault_backup.upload",
    "web.login",
    "web.login.challenge",
    "web.logout",
];

/// The catalogue key of an action's name.
fn action_key(action: &str) -> String {
    format!("event.action.{action}")
}

/// The action's name for people; an action this version does not know is shown as stored.
pub fn action_text(t: Tr, action: &str) -> String {
    if crate::i18n::has_key(t.0, &action_key(action)) {
        t.t(&action_key(action)).to_owned()
    } else {
        action.to_owned()
    }
}

/// "success" / "failure" for people.
pub fn result_text(t: Tr, result: &str) -> String {
    let key = format!("event.result.{result}");
    if crate::i18n::has_key(t.0, &key) {
        t.t(&key).to_owned()
    } else {
        result.to_owned()
    }
}

/// One piece of a reason text: literal text, or a named placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Arg(String),
}

/// The English reason texts, parsed: (catalogue key, pieces).
fn templates() -> &'static [(String, Vec<Piece>)] {
    static TEMPLATES: OnceLock<Vec<(String, Vec<Piece>)>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut v: Vec<(String, Vec<Piece>)> = crate::i18n::entries(Language::En, "event.reason.")
            .into_iter()
            .map(|(key, text)| (key, pieces(&text)))
            .collect();
        // More literal text first: the most specific text wins where two could match.
        v.sort_by_key(|(key, p)| (std::cmp::Reverse(literal_len(p)), key.clone()));
        v
    })
}

fn literal_len(p: &[Piece]) -> usize {
    p.iter()
        .map(|x| match x {
            Piece::Lit(s) => s.len(),
            Piece::Arg(_) => 0,
        })
        .sum()
}

fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Piece::Lit(rest[..open].to_owned()));
        }
        out.push(Piece::Arg(rest[open + 1..open + close].to_owned()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Lit(rest.to_owned()));
    }
    out
}

/// Matches `text` against `pieces`; the values of the placeholders (each at least one
/// character) when it fits. Short texts and few pieces: plain backtracking.
fn matches<'a>(pieces: &[Piece], text: &'a str, out: &mut Vec<(String, &'a str)>) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Lit(lit), rest)) => text
            .strip_prefix(lit.as_str())
            .is_some_and(|after| matches(rest, after, out)),
        Some((Piece::Arg(name), rest)) => {
            let ends: Vec<usize> = text.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
            for end in ends {
                out.push((name.clone(), &text[..end]));
                if matches(rest, &text[end..], out) {
                    return true;
                }
                out.pop();
            }
            false
        }
    }
}

/// A placeholder's value in the reader's language: a nested `{reason}` is translated again,
/// a `{state}` or `{kind}` takes the page's word for it; names and numbers stay.
fn value_text(t: Tr, name: &str, value: &str, depth: u8) -> String {
    let word = |key: String| {
        if crate::i18n::has_key(t.0, &key) {
            t.t(&key).to_owned()
        } else {
            value.to_owned()
        }
    };
    match name {
        "reason" if depth < 3 => reason_at(t, value, depth + 1),
        n if n == "state" || n.ends_with("_state") => word(format!("web.state_{value}")),
        "kind" => word(format!("web.kind_{value}")),
        n if n.starts_with("onoff") || n == "delivery" => word(format!("event.word.{value}")),
        _ => value.to_owned(),
    }
}

/// The reason in the reader's language (see the module's comment).
pub fn reason_text(t: Tr, reason: &str) -> String {
    reason_at(t, reason, 0)
}

fn reason_at(t: Tr, reason: &str, depth: u8) -> String {
    if reason.is_empty() {
        return String::new();
    }
    // Parts joined by "; " are translated one by one, unless a text of its own has "; " in it
    // (then a placeholder could otherwise swallow the next part).
    let compound = reason.contains("; ");
    if let Some(text) = whole(t, reason, depth, compound) {
        return text;
    }
    if compound {
        return reason
            .split("; ")
            .map(|part| reason_at(t, part, depth))
            .collect::<Vec<_>>()
            .join("; ");
    }
    // A list of changes ("email, phone, language de"): only when every item is known, so that a
    // text with a comma of its own is never cut apart.
    if reason.contains(", ") {
        let parts: Option<Vec<String>> = reason
            .split(", ")
            .map(|part| whole(t, part, depth, false))
            .collect();
        if let Some(parts) = parts {
            return parts.join(", ");
        }
    }
    reason.to_owned()
}

fn whole(t: Tr, text: &str, depth: u8, compound_only: bool) -> Option<String> {
    let compound = |p: &[Piece]| {
        p.iter()
            .any(|x| matches!(x, Piece::Lit(l) if l.contains("; ")))
    };
    for (key, p) in templates() {
        if compound_only && !compound(p) {
            continue;
        }
        let mut args = Vec::new();
        if matches(p, text, &mut args) {
            let values: Vec<(String, String)> = args
                .iter()
                .map(|(name, value)| (name.clone(), value_text(t, name, value, depth)))
                .collect();
            let refs: Vec<(&str, &str)> = values
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            return Some(t.f(key, &refs));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_name_in_both_languages() {
        for action in ACTIONS {
            for lang in [Language::En, Language::De] {
                assert!(
                    crate::i18n::has_key(lang, &action_key(action)),
                    "event.action.\"{action}\" missing in {lang}.toml"
                );
            }
        }
        let listed: Vec<String> = crate::i18n::entries(Language::En, "event.action.")
            .into_iter()
            .map(|(k, _)| k.trim_start_matches("event.action.").to_owned())
            .collect();
        for name in &listed {
            assert!(ACTIONS.contains(&name.as_str()), "{name} is not an action");
        }
        for result in ["success", "failure"] {
            assert!(crate::i18n::has_key(
                Language::De,
                &format!("event.result.{result}")
            ));
        }
    }

    #[test]
    fn reasons_are_translated_with_their_values() {
        let de = Tr::new(Language::De);
        assert_eq!(reason_text(de, "code accepted"), "Passcode angenommen");
        assert_eq!(
            reason_text(
                de,
                "token TOTP12345678 (Diensthandy) active; 10 recovery codes"
            ),
            "Gerät TOTP12345678 (Diensthandy) aktiv; 10 Wiederherstellungscodes"
        );
        assert_eq!(
            reason_text(de, "TOTP1: wrong code; TOTP2: code already used (replay)"),
            "TOTP1: falscher Passcode; TOTP2: Passcode schon verwendet (Wiederholung)"
        );
        assert_eq!(reason_text(de, "active -> disabled"), "aktiv → deaktiviert");
        // Unknown text stays as stored; English stays English.
        assert_eq!(reason_text(de, "something new"), "something new");
        assert_eq!(
            reason_text(Tr::new(Language::En), "code accepted"),
            "code accepted"
        );
        assert_eq!(action_text(de, "web.login"), "Anmeldung im Web");
        assert_eq!(action_text(de, "x.unknown"), "x.unknown");
    }

    #[test]
    fn every_reason_text_is_reached_by_its_own_english_text() {
        // Each English text, with its placeholders filled by plain values, comes back as itself:
        // no text hides another.
        for (key, p) in templates() {
            let sample: String = p
                .iter()
                .map(|x| match x {
                    Piece::Lit(s) => s.clone(),
                    Piece::Arg(_) => "x1".to_owned(),
                })
                .collect();
            let found = templates().iter().find(|(_, q)| {
                let mut args = Vec::new();
                matches(q, &sample, &mut args)
            });
            assert_eq!(found.map(|(k, _)| k), Some(key), "{sample}");
        }
    }
}
