//! E-mails people read, rendered from `templates/email/` and the message catalogue (`i18n.rs`):
//! the enrollment invitation (plain text and HTML), the security mails of recovery and reset
//! (their text, also as HTML) and the operator's test mail. The mail module
//! only transports what these functions build.

use askama::Template;

use crate::clock::UnixTime;
use crate::i18n::{Tr, Zone};
use crate::mail::Email;
use crate::model::Language;

/// What an invitation e-mail says. `link` carries the link token: it goes into the bodies only.
#[derive(Clone, Copy)]
pub struct InvitationMail<'a> {
    pub to: &'a str,
    pub language: Language,
    /// The user's display name (or username).
    pub name: &'a str,
    pub username: &'a str,
    pub organisation: &'a str,
    pub link: &'a str,
    pub expires_at: UnixTime,
    /// The zone of the expiry time (`server.time_zone`).
    pub zone: Zone,
}

impl std::fmt::Debug for InvitationMail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationMail")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    t: Tr,
    m: &'a InvitationMail<'a>,
    expires: String,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    t: Tr,
    m: &'a InvitationMail<'a>,
    expires: String,
}

/// The invitation e-mail in the user's language.
pub fn invitation(m: &InvitationMail<'_>) -> Result<Email, askama::Error> {
    let t = Tr::in_zone(m.language, m.zone);
    let expires = t.datetime(m.expires_at);
    let text = InvitationText {
        t,
        m,
        expires: expires.clone(),
    }
    .render()?;
    let html = InvitationHtml { t, m, expires }.render()?;
    Ok(Email {
        to: m.to.to_owned(),
        subject: t.f("mail.subject", &[("org", m.organisation)]),
        text,
        html: Some(html),
    })
}

/// One block of a security mail's HTML body, taken from its plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph; its lines.
    Text(Vec<String>),
    /// An indented line that is a link: a button and the address.
    Link {
        url: String,
        label_key: &'static str,
    },
    /// Indented lines that are not links: codes, in large monospace.
    Code(Vec<String>),
}

/// The blocks of a plain-text mail: paragraphs split at empty lines; indented paragraphs are
/// links or codes.
fn blocks_of(text: &str) -> Vec<Block> {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(|l| l.trim().to_owned()).collect();
            let indented = p.lines().all(|l| l.starts_with("    "));
            match (indented, lines.as_slice()) {
                (true, [one]) if one.starts_with("http://") || one.starts_with("https://") => {
                    Block::Link {
                        url: one.clone(),
                        label_key: if one.contains("/not-me/") {
                            "mail.button_not_me"
                        } else if one.contains("/reset/") {
                            "mail.button_reset"
                        } else {
                            "mail.button_open"
                        },
                    }
                }
                (true, _) => Block::Code(lines),
                (false, _) => Block::Text(lines),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct NoticeHtml<'a> {
    t: Tr,
    organisation: &'a str,
    subject: &'a str,
    blocks: Vec<Block>,
}

/// A security mail (recovery code, notification, reset link, re-issued codes) in plain text and
/// the same text as HTML in the invitation's look; links become buttons, codes stand out.
pub fn notice(
    to: &str,
    language: Language,
    organisation: &str,
    subject: String,
    text: String,
) -> Email {
    let html = NoticeHtml {
        t: Tr::new(language),
        organisation,
        subject: &subject,
        blocks: blocks_of(&text),
    }
    .render()
    // Rendering a fixed template into a String does not fail; the text alone is still a mail.
    .ok();
    Email {
        to: to.to_owned(),
        subject,
        text,
        html,
    }
}

/// A short bilingual test mail for `tessera send-test-email`.
pub fn test_mail(to: &str, organisation: &str) -> Email {
    let (en, de) = (Tr::new(Language::En), Tr::new(Language::De));
    let args = [("org", organisation)];
    Email {
        to: to.to_owned(),
        subject: format!(
            "{} / {}",
            de.t("mail.test_subject"),
            en.t("mail.test_subject")
        ),
        text: format!(
            "{}\n\n{}\n",
            de.f("mail.test_body", &args),
            en.f("mail.test_body", &args)
        ),
        html: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(language: Language) -> Email {
        invitation(&InvitationMail {
            to: "alice@example.org",
            language,
            name: "Alice <A>",
            username: "alice",
            organisation: "Example & Co",
            link: "https://otp.example.org/enroll/TOKEN123",
            expires_at: 1_700_000_000,
            zone: Zone::utc(),
        })
        .unwrap()
    }

    #[test]
    fn notice_html_turns_links_into_buttons_and_escapes_text() {
        let m = notice(
            "a@example.org",
            Language::En,
            "Example & Co",
            "Your recovery code".into(),
            "Hello <A>,\n\nYour code:\n\n    12345678\n\nIf not you:\n\n    \
             https://otp.example.org/not-me/TOKEN\n"
                .into(),
        );
        let html = m.html.unwrap();
        assert!(html.contains("Hello &#60;A&#62;,") || html.contains("Hello &lt;A&gt;,"));
        assert!(html.contains(">12345678<"), "{html}");
        assert!(html.contains("href=\"https://otp.example.org/not-me/TOKEN\""));
        assert!(html.contains("This wasn't me") || html.contains("This wasn&#39;t me"));
        assert!(m.text.starts_with("Hello <A>,"));
    }

    #[test]
    fn invitation_has_text_and_html_in_the_users_language() {
        let de = mail(Language::De);
        assert_eq!(de.subject, "Einmalpasswort für Example & Co einrichten");
        assert!(de.text.contains("Hallo Alice <A>,"), "{}", de.text);
        assert!(de.text.contains("https://otp.example.org/enroll/TOKEN123"));
        assert!(de.text.contains("14.11.2023, 22:13 UTC"));
        assert!(de.text.contains("Authenticator-App"));
        let html = de.html.unwrap();
        assert!(html.contains("lang=\"de\""), "{html}");
        assert!(html.contains("href=\"https://otp.example.org/enroll/TOKEN123\""));
        // Names are escaped in HTML.
        assert!(
            html.contains("Alice &#60;A&#62;") || html.contains("Alice &lt;A&gt;"),
            "{html}"
        );
        assert!(!html.contains("<A>"));
        let en = mail(Language::En);
        assert!(en.subject.starts_with("Set up your one-time passcode"));
        assert!(en.text.contains("2023-11-14 22:13 UTC"));
    }
}
