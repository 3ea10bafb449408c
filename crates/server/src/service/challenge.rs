//! E-mail and SMS challenges: a short-lived, single-use code sent per login, answered with the
//! transaction id the client got. Only hashes are stored: the transaction id (256 random bits)
//! as SHA-256, the code as SHA-256 over id and code, so a database dump reveals neither.

use crate::crypto::{ct_eq, random_bytes, random_token, token_hash};
use crate::mail::Email;
use crate::model::{Challenge, Language, Token, TokenKind, TokenState, User};
use crate::sms::Sms;
use crate::store::{Advance, RequestPrint};

use super::validate::{Decision, ValidateResponse, Verdict};
use super::{Result, Service};

fn code_hash(transaction_id: &str, code: &str) -> String {
    token_hash(&format!("{transaction_id}:{code}"))
}

/// A random code of `digits` decimal digits (uniform: rejection sampling over bytes).
pub(super) fn random_code(digits: u32) -> Result<String> {
    let mut out = String::with_capacity(digits as usize);
    while out.len() < digits as usize {
        for b in random_bytes(16)?.iter() {
            // 250 = 25 * 10: values above would bias the digits.
            if *b < 250 && out.len() < digits as usize {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(out)
}

/// Challenges count against the per-user sending limit for this long after they were sent.
pub(super) const SENDING_LIMIT_WINDOW: i64 = 3600;

impl Service {
    /// Creates a challenge for `token` and sends its code. Rate-limited per user. With
    /// `background`, the code is sent by a task of its own and the challenge is answered at
    /// once (a RADIUS client waits 3-10 s in all: a slow mail server must not use that up);
    /// a failed delivery then voids the challenge just the same.
    pub(crate) async fn send_challenge(
        &self,
        user: &User,
        token: &Token,
        background: bool,
    ) -> Result<Decision> {
        let cfg = &self.config.validate;
        let now = self.clock.now();
        // The last hour: a challenge sent exactly an hour ago no longer counts, just as a
        // challenge is expired exactly at its TTL.
        let sent = self
            .store
            .count_challenges_since(
                user.id,
                now.saturating_sub(SENDING_LIMIT_WINDOW).saturating_add(1),
            )
            .await?;
        if u64::try_from(sent).unwrap_or(u64::MAX) >= cfg.challenge_max_per_hour {
            return Ok(Decision::reject("challenge not sent: hourly limit reached"));
        }
        // Users without a phone (or whose number was removed) never get SMS.
        if token.kind == TokenKind::Sms && (user.phone.is_empty() || !user.sms_enabled) {
            return Ok(Decision::reject(
                "challenge not sent: no phone number for SMS",
            ));
        }
        if token.kind == TokenKind::Email && user.email.is_empty() {
            return Ok(Decision::reject("challenge not sent: no e-mail address"));
        }
        let transaction_id = random_token()?;
        let code = random_code(token.digits.clamp(6, 8))?;
        let ttl = i64::try_from(cfg.challenge_ttl_secs).unwrap_or(300);
        let challenge = Challenge {
            id_hash: token_hash(&transaction_id),
            user_id: user.id,
            token_id: token.id,
            code_hash: code_hash(&transaction_id, &code),
            created_at: now,
            expires_at: now.saturating_add(ttl),
            attempts: 0,
            used: false,
        };
        self.store.insert_challenge(&challenge).await?;
        let minutes = (ttl / 60).max(1);
        enum Message {
            Sms(Sms),
            Email(Email),
        }
        let message = match token.kind {
            TokenKind::Sms => {
                // The sender's name is the organisation's, as in mails and pages.
                let org = self.config.issuer();
                let text = match user.language {
                    Language::De => format!(
                        "Ihr Passcode für {org}: {code} (gültig {minutes} Minuten). Geben Sie ihn nicht weiter."
                    ),
                    Language::En => format!(
                        "Your {org} login code: {code} (valid for {minutes} minutes). Do not share it."
                    ),
                };
                Message::Sms(Sms {
                    to: user.phone.clone(),
                    text,
                })
            }
            _ => {
                let (subject, text) = match user.language {
                    Language::De => (
                        "Ihr Passcode für die Anmeldung".to_owned(),
                        format!(
                            "Hallo {name},\n\nIhr Passcode für die Anmeldung lautet:\n\n    {code}\n\n\
                             Es ist {minutes} Minuten gültig und kann nur einmal verwendet werden.\n\
                             Wenn Sie sich gerade nicht anmelden, ignorieren Sie diese E-Mail und \
                             informieren Sie Ihre IT.\n",
                            name = display(user)
                        ),
                    ),
                    Language::En => (
                        "Your login code".to_owned(),
                        format!(
                            "Hello {name},\n\nyour one-time passcode for signing in is:\n\n    {code}\n\n\
                             It is valid for {minutes} minutes and works once.\n\
                             If you are not signing in right now, ignore this e-mail and tell your IT team.\n",
                            name = display(user)
                        ),
                    ),
                };
                Message::Email(Email {
                    to: user.email.clone(),
                    subject,
                    text,
                    html: None,
                })
            }
        };
        let (sms, mailer, store) = (self.sms.clone(), self.mailer.clone(), self.store.clone());
        let (id_hash, username, kind) =
            (challenge.id_hash.clone(), user.username.clone(), token.kind);
        let deliver = async move {
            let delivered = match &message {
                Message::Sms(m) => sms.send(m).await.map_err(|e| e.to_string()),
                Message::Email(m) => mailer.send(m).await.map_err(|e| e.to_string()),
            };
            if let Err(e) = &delivered {
                // Void the challenge: a code that never arrived must not stay answerable.
                let _ = store.consume_challenge(&id_hash, now).await;
                tracing::warn!(user = %username, kind = %kind, error = %e, "challenge delivery failed");
            }
            delivered
        };
        if background {
            tokio::spawn(deliver);
        } else if let Err(e) = deliver.await {
            return Ok(Decision::reject(format!("challenge delivery failed: {e}")));
        }
        Ok(Decision {
            response: ValidateResponse {
                result: Verdict::Challenge,
                message: match token.kind {
                    TokenKind::Sms => "a code was sent by SMS".into(),
                    _ => "a code was sent by e-mail".into(),
                },
                transaction_id: Some(transaction_id),
                challenge_kind: Some(token.kind),
            },
            reason: if background {
                format!("{} code being sent", token.kind)
            } else {
                format!("{} code sent", token.kind)
            },
            serial: Some(token.serial.0.clone()),
            audited: false,
            replayed: false,
            code_wanted: false,
            retransmit: false,
        })
    }

    /// Completes a challenge with the code the user received; `tokens` are the user's tokens.
    pub(crate) async fn answer_challenge(
        &self,
        user: &User,
        tokens: &[Token],
        transaction_id: &str,
        code: &str,
        request: Option<&RequestPrint>,
    ) -> Result<Decision> {
        let id_hash = token_hash(transaction_id);
        let now = self.clock.now();
        let Some(challenge) = self.store.challenge(&id_hash).await? else {
            return Ok(Decision::reject("unknown transaction"));
        };
        if challenge.user_id != user.id {
            return Ok(Decision::reject("transaction belongs to another user"));
        }
        if challenge.used {
            if let Some(request) = request
                && self
                    .store
                    .token_moved_by(
                        challenge.token_id,
                        request,
                        now.saturating_sub(super::validate::RETRANSMIT_SECS),
                    )
                    .await?
            {
                // The identical request answered this challenge moments ago (another node).
                let mut d = Decision::reject("");
                d.response = ValidateResponse::accept();
                d.reason = "identical retransmit of an accepted challenge answer".into();
                d.retransmit = true;
                return Ok(d);
            }
            return Ok(Decision::reject("challenge already used"));
        }
        if challenge.expires_at <= now {
            return Ok(Decision::reject("challenge expired"));
        }
        // A token disabled or revoked since the code was sent logs no one in, not even with a
        // code already on its way.
        if !tokens
            .iter()
            .any(|t| t.id == challenge.token_id && t.state == TokenState::Active)
        {
            return Ok(Decision::reject("token of the challenge no longer active"));
        }
        // Count the attempt before comparing, atomically: parallel guesses cannot exceed it.
        let attempts = self.store.challenge_attempt(&id_hash).await?;
        if u64::try_from(attempts).unwrap_or(u64::MAX) > self.config.validate.challenge_max_attempts
        {
            return Ok(Decision::reject("challenge void after too many attempts"));
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if !ct_eq(
            code_hash(transaction_id, &code).as_bytes(),
            challenge.code_hash.as_bytes(),
        ) {
            return Ok(Decision::reject("wrong challenge code"));
        }
        if !self.store.consume_challenge(&id_hash, now).await? {
            return Ok(Decision::reject("challenge already used"));
        }
        // The device was used: its "last used" moves on (and its counter counts the logins).
        if let Some(token) = tokens.iter().find(|t| t.id == challenge.token_id) {
            let used = Advance {
                matched: token.next_counter,
                drift: 0,
                from: TokenState::Active,
                to: TokenState::Active,
                now,
                fails: token.fail_count,
                request: request.copied(),
            };
            if !self.store.advance_token(token.id, used).await? {
                tracing::debug!(serial = %token.serial.0, "challenge token changed meanwhile; last use not recorded");
            }
        }
        if user.fail_count > 0 {
            self.store.reset_account_failures(user.id).await?;
        }
        Ok(Decision {
            response: ValidateResponse::accept(),
            reason: "challenge code accepted".into(),
            serial: None,
            audited: false,
            replayed: false,
            code_wanted: false,
            retransmit: false,
        })
    }
}

fn display(user: &User) -> &str {
    if user.display_name.is_empty() {
        &user.username
    } else {
        &user.display_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_have_the_length_and_only_digits() {
        for d in 6..=8 {
            let c = random_code(d).unwrap();
            assert_eq!(c.len(), d as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
