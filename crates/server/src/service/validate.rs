//! Validation (SPEC F2): is this login valid? Called by registered applications (HTTP, later
//! RADIUS) and by `tessera validate`.
//!
//! Order of checks, and why:
//! 1. the source address and the account may be throttled: then nothing else is checked;
//! 2. the code is checked before the password, so that someone without the token learns nothing
//!    about the password;
//! 3. the password last (Argon2id, bounded concurrency, never on the OTP-only path).
//!
//! Clients get accept / reject / challenge and a generic message; the audit log gets the exact
//! reason, the token, the application and the source address.

use crate::msg::{Key, Msg};
use serde::{Deserialize, Serialize};

use crate::model::{
    AppMode, Application, AuditEvent, Password, Role, Token, TokenKind, TokenState, User, UserState,
};

use crate::store::RequestPrint;

use super::attempts::Front;
use super::audit::Outcome;
use super::codes::{CodeCheck, Rejection, normalize_code};
use super::{Result, Service};

/// A login to check. Either `password` and `otp`, or `pass` (the password immediately followed
/// by the code), or `transaction_id` and `otp` to answer a challenge.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    pub username: String,
    #[serde(default)]
    pub password: Option<Password>,
    #[serde(default)]
    pub otp: Option<Password>,
    /// Password and code in one field, as RADIUS and older VPNs send them.
    #[serde(default)]
    pub pass: Option<Password>,
    /// The id of a challenge answered with `otp`.
    #[serde(default)]
    pub transaction_id: Option<Password>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Reject,
    /// A code was sent by e-mail or SMS: answer with `transaction_id` and `otp`.
    Challenge,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ValidateResponse {
    pub result: Verdict,
    /// For people; deliberately generic on reject.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// `email` or `sms` on a challenge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge_kind: Option<TokenKind>,
}

impl ValidateResponse {
    pub(crate) fn accept() -> Self {
        ValidateResponse {
            result: Verdict::Accept,
            message: "login valid".into(),
            transaction_id: None,
            challenge_kind: None,
        }
    }

    pub(crate) fn reject() -> Self {
        ValidateResponse {
            result: Verdict::Reject,
            message: "login invalid".into(),
            transaction_id: None,
            challenge_kind: None,
        }
    }
}

/// What the checks decided, with the audit details.
pub(crate) struct Decision {
    pub response: ValidateResponse,
    pub reason: String,
    /// The token that matched or was tried, for the audit target.
    pub serial: Option<String>,
    /// The event was committed already, together with the token's new counter.
    pub audited: bool,
    /// Refused because the code was used already, with the right password: the login page can
    /// say "wait for the next code" instead of a generic failure.
    pub replayed: bool,
    /// [`Extras::password_first`]: the password was right and a code is needed next.
    pub code_wanted: bool,
    /// Accepted as an identical retransmit of a request whose code was accepted before
    /// ([`Extras::request`]): nothing was consumed again.
    pub retransmit: bool,
}

/// What only the RADIUS front end passes to a validation (never from an API body).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extras<'a> {
    /// The fingerprint of the request, stored with the counter an accepted code moves; an
    /// identical request whose code is then refused as used is accepted if it matches.
    pub request: Option<&'a RequestPrint>,
    /// E-mail and SMS codes are sent in the background: the challenge is answered at once.
    pub background_delivery: bool,
    /// Only the password is given, and a code is to be asked for next (Access-Challenge): a
    /// right password is counted like a login's and reported as [`Decision::code_wanted`].
    pub password_first: bool,
}

/// How long after an accepted request an identical retransmit gets the same answer (RFC 5080
/// §2.2.2: reply caches keep entries 5-30 s).
pub(crate) const RETRANSMIT_SECS: i64 = 30;

impl Decision {
    pub(crate) fn reject(reason: impl Into<String>) -> Decision {
        Decision {
            response: ValidateResponse::reject(),
            reason: reason.into(),
            serial: None,
            audited: false,
            replayed: false,
            code_wanted: false,
            retransmit: false,
        }
    }

    fn accept(reason: impl Into<String>, serial: Option<String>, audited: bool) -> Decision {
        Decision {
            response: ValidateResponse::accept(),
            reason: reason.into(),
            serial,
            audited,
            replayed: false,
            code_wanted: false,
            retransmit: false,
        }
    }
}

/// The outcome of checking a code against all of a user's code tokens.
enum CodeOutcome {
    Accepted {
        serial: String,
        resynced: bool,
        audited: bool,
        retransmit: bool,
    },
    /// `replayed`: a token matched the code, but at a counter or step that was used already.
    Rejected { reason: String, replayed: bool },
}

/// Who asks, for audit events written together with an accepted code.
struct AuditContext<'a> {
    app: &'a Application,
    source: &'a str,
    username: &'a str,
}

impl Service {
    /// Validates a login for `app` from `source`. Every decision is audited; only malformed
    /// input is an error.
    pub async fn validate(
        &self,
        app: &Application,
        source: &str,
        req: ValidateRequest,
    ) -> Result<ValidateResponse> {
        Ok(self
            .validate_with(app, source, req, Extras::default())
            .await?
            .response)
    }

    /// [`Service::validate`] with what only the RADIUS front end passes; the whole decision.
    /// Every validation of every front end is counted here (`/metrics`).
    pub(crate) async fn validate_with(
        &self,
        app: &Application,
        source: &str,
        req: ValidateRequest,
        extras: Extras<'_>,
    ) -> Result<Decision> {
        use crate::metrics::{Outcome as M, Reason};
        let took = crate::clock::Stopwatch::start();
        let result = self.validate_uncounted(app, source, req, extras).await;
        let outcome = match &result {
            Ok(d) if d.code_wanted => M::Challenge,
            Ok(d) => match d.response.result {
                Verdict::Accept => M::Accept,
                Verdict::Challenge => M::Challenge,
                Verdict::Reject => M::Reject(Reason::of(&d.reason)),
            },
            Err(_) => M::Error,
        };
        self.metrics.validation(outcome, took.ms() / 1000.0);
        result
    }

    /// [`Service::validate_with`] without the metrics.
    async fn validate_uncounted(
        &self,
        app: &Application,
        source: &str,
        req: ValidateRequest,
        extras: Extras<'_>,
    ) -> Result<Decision> {
        let username = req.username.trim().to_owned();
        if username.is_empty() || username.chars().count() > 256 {
            return Err(super::Error::Invalid(Msg::new(Key::UsernameLength)));
        }
        let decision = self
            .decide_with(app, source, &username, req, Front::Application, extras)
            .await?;
        if decision.response.result != Verdict::Accept {
            // Failures change throttling state: read it fresh next time.
            self.user_cache.forget(&username);
        }
        if decision.audited {
            return Ok(decision);
        }
        let target = match &decision.serial {
            Some(serial) => format!("token:{serial}"),
            None => format!("user:{username}"),
        };
        let challenge = decision.response.result == Verdict::Challenge || decision.code_wanted;
        let outcome = match decision.response.result {
            Verdict::Accept => Outcome::Success,
            Verdict::Reject if decision.code_wanted => Outcome::Success,
            Verdict::Reject => Outcome::Failure,
            Verdict::Challenge => Outcome::Success,
        };
        self.audit_as(
            &format!("app:{}", app.name),
            source,
            if challenge {
                "validate.challenge"
            } else {
                "validate"
            },
            target,
            &username,
            outcome,
            decision.reason.clone(),
        )
        .await?;
        Ok(decision)
    }

    pub(super) async fn decide(
        &self,
        app: &Application,
        source: &str,
        username: &str,
        req: ValidateRequest,
        front: Front,
    ) -> Result<Decision> {
        self.decide_with(app, source, username, req, front, Extras::default())
            .await
    }

    async fn decide_with(
        &self,
        app: &Application,
        source: &str,
        username: &str,
        req: ValidateRequest,
        front: Front,
        extras: Extras<'_>,
    ) -> Result<Decision> {
        if !self.source_allowed(source) {
            return Ok(Decision::reject("source address rate limit"));
        }
        let with_password = app.mode == AppMode::PasswordAndOtp;
        // Every early refusal does the work of a real check: no enumeration by timing.
        let refuse = |reason: &'static str| async move {
            if with_password {
                self.burn_validate_password().await;
            }
            Ok(Decision::reject(reason))
        };
        if self.stranger_budget_spent(front, username, source) {
            return refuse(
                "too many failed logins without the password from this address (the account \
                 and its tokens are not affected)",
            )
            .await;
        }
        let now = self.clock.now();
        let cached = self.user_cache.get(username, now);
        let found = match cached {
            Some(hit) => Some(hit),
            None => {
                let found = self.store.user_with_tokens(username).await?;
                if let Some((user, tokens)) = &found {
                    self.user_cache.put(user, tokens, now);
                }
                found
            }
        };
        let Some((user, tokens)) = found else {
            self.record_stranger_failure(front, username, source);
            return refuse("unknown user").await;
        };
        if user.state != UserState::Active {
            return refuse("user disabled").await;
        }
        if user.throttled_until > now {
            return refuse("account throttled after wrong passwords").await;
        }
        if let Some(tid) = &req.transaction_id {
            let code = req.otp.as_ref().map_or("", Password::expose);
            return self
                .answer_challenge(&user, &tokens, tid.expose(), code, extras.request)
                .await;
        }
        // A token locked after failures unlocks by itself once its cool-down has passed.
        let mut active: Vec<Token> = Vec::with_capacity(tokens.len());
        let mut locked = 0;
        for mut t in tokens {
            if t.state == TokenState::Locked && t.throttled_until <= now {
                self.store.unlock_token(t.id).await?;
                t.state = TokenState::Active;
                t.fail_count = 0;
                t.throttled_until = 0;
            }
            match t.state {
                TokenState::Active => active.push(t),
                TokenState::Locked => locked += 1,
                _ => {}
            }
        }
        let code_tokens: Vec<&Token> = active.iter().filter(|t| t.kind.has_seed()).collect();
        let challenge_tokens: Vec<&Token> = active.iter().filter(|t| !t.kind.has_seed()).collect();
        if active.is_empty() && locked > 0 {
            // Never fall back to the password alone because the tokens are locked.
            return refuse("every token of the user is locked").await;
        }

        // Split the single-field form: the code length is known from the user's tokens.
        let candidates: Vec<(String, Option<String>)> = match (&req.pass, &req.password) {
            (Some(pass), None) if req.otp.is_none() => {
                split_pass(pass.expose(), &code_tokens, with_password)
            }
            (None, password) => vec![(
                password.as_ref().map_or("", Password::expose).to_owned(),
                req.otp.as_ref().map(|o| o.expose().to_owned()),
            )],
            _ => {
                return Err(super::Error::Invalid(Msg::new(Key::PassOrPassword)));
            }
        };
        let first_password = candidates.first().map_or("", |c| c.0.as_str());

        if code_tokens.is_empty() && challenge_tokens.is_empty() {
            return self
                .decide_without_token(app, front, source, &user, first_password)
                .await;
        }

        let has_code = candidates
            .iter()
            .any(|c| c.1.as_deref().is_some_and(|o| !o.is_empty()));
        if !has_code {
            if let Some(token) = challenge_tokens.first() {
                if with_password && !self.check_validate_password(&user, first_password).await? {
                    return Ok(Decision::reject("wrong password (challenge not sent)"));
                }
                return self
                    .send_challenge(&user, token, extras.background_delivery)
                    .await;
            }
            if extras.password_first && with_password && !code_tokens.is_empty() {
                // The code is asked for next: the password is checked and counted like a
                // login's, so that this step is no unthrottled password oracle.
                if !self.check_validate_password(&user, first_password).await? {
                    return Ok(Decision::reject("wrong password (code not asked for)"));
                }
                let mut d = Decision::reject("password accepted, code asked for");
                d.code_wanted = true;
                return Ok(d);
            }
            if with_password && !self.password_matches(&user, first_password).await {
                self.record_stranger_failure(front, username, source);
            }
            return Ok(Decision::reject("code missing"));
        }

        // Code first, then password.
        let mut last_reason = String::from("wrong code");
        let mut any_replay = false;
        let mut compared: Vec<&Token> = Vec::new();
        for (password, otp) in &candidates {
            let Some(otp) = otp else { continue };
            let Ok(code) = normalize_code(otp) else {
                last_reason = "code malformed".into();
                continue;
            };
            // Without a password to check, the accepted code is the decision: its audit entry is
            // committed with the new counter, in one transaction.
            let ctx = (!with_password).then_some(AuditContext {
                app,
                source,
                username,
            });
            match self
                .check_code(
                    &code_tokens,
                    &code,
                    ctx,
                    &user.username,
                    &mut compared,
                    extras.request,
                )
                .await?
            {
                CodeOutcome::Accepted {
                    serial,
                    resynced,
                    audited,
                    retransmit,
                } => {
                    let how = if retransmit {
                        "identical retransmit of an accepted request (code not used again)"
                    } else if resynced {
                        "code accepted after automatic resync"
                    } else {
                        "code accepted"
                    };
                    let mut d = self
                        .finish_with_password(&user, with_password, password, Some(serial), how)
                        .await?;
                    d.audited = audited;
                    d.retransmit = retransmit && d.response.result == Verdict::Accept;
                    return Ok(d);
                }
                CodeOutcome::Rejected { reason, replayed } => {
                    last_reason = reason;
                    any_replay |= replayed;
                }
            }
        }
        // No token took the code. Whose failure is it? Someone who knows the password (or an
        // application that checked it) spends the tokens' budget; a stranger only their own.
        let knows_password = if with_password {
            let mut any = false;
            for (password, _) in &candidates {
                if self.password_matches(&user, password).await {
                    any = true;
                    break;
                }
            }
            any
        } else {
            true
        };
        if knows_password {
            self.count_code_failure(&compared).await?;
            let mut d = Decision::reject(last_reason);
            // Only for someone who knows the password and sent a code that was right a moment
            // ago: the person's own device, usually the code just used to activate it.
            d.replayed = any_replay;
            Ok(d)
        } else {
            self.record_stranger_failure(front, username, source);
            Ok(Decision::reject(format!(
                "{last_reason}; wrong password too (counted against the source address, not the \
                 tokens)"
            )))
        }
    }

    /// A user with no active token. Who once had one, must use one, or is an admin under
    /// `auth.admin_second_factor` gets nothing on the password alone; the others pass only where
    /// the application allows it (`passthrough`), with the password if it checks passwords.
    async fn decide_without_token(
        &self,
        app: &Application,
        front: Front,
        source: &str,
        user: &User,
        password: &str,
    ) -> Result<Decision> {
        let with_password = app.mode == AppMode::PasswordAndOtp;
        let admin_rule = user.role == Role::Admin
            && self.config.auth.admin_second_factor
            && front == Front::Person;
        let reason = if user.second_factor_at.is_some() {
            Some(
                "no active token, but the user had one: a replacement comes through recovery or an admin",
            )
        } else if user.otp_required {
            Some("otp required but the user has no active token (enrollment needed)")
        } else if admin_rule {
            Some("admin without a second factor (enrollment needed)")
        } else if !app.passthrough {
            Some("no token, and the application allows no passthrough")
        } else {
            None
        };
        if let Some(reason) = reason {
            // The same work as a login, and a stranger's wrong password is theirs to count.
            if with_password && !self.password_matches(user, password).await {
                self.record_stranger_failure(front, &user.username, source);
                return Ok(Decision::reject(format!("{reason}; wrong password")));
            }
            return Ok(Decision::reject(reason));
        }
        if !with_password {
            // The application checked the password itself, and its policy lets such users in.
            if user.fail_count > 0 {
                self.store.reset_account_failures(user.id).await?;
            }
            return Ok(Decision::accept(
                "no token; passthrough (the application checks the password)",
                None,
                false,
            ));
        }
        self.finish_with_password(user, true, password, None, "no token, password only")
            .await
    }

    /// Tries the code on each active code token of the right length; the first that accepts
    /// wins. Nothing is counted here: the tokens the code was compared with are added to
    /// `compared`, for the caller to blame once it knows who failed.
    async fn check_code<'t>(
        &self,
        tokens: &[&'t Token],
        code: &str,
        ctx: Option<AuditContext<'_>>,
        username: &str,
        compared: &mut Vec<&'t Token>,
        request: Option<&RequestPrint>,
    ) -> Result<CodeOutcome> {
        let mut reasons = Vec::new();
        let mut replayed = false;
        for &token in tokens.iter().filter(|t| t.digits as usize == code.len()) {
            let on_accept = ctx.as_ref().map(|c| AuditEvent {
                at: self.clock.now(),
                actor: format!("app:{}", c.app.name),
                action: "validate".into(),
                target: format!("token:{}", token.serial),
                username: c.username.to_lowercase(),
                source: c.source.to_owned(),
                result: "success".into(),
                reason: "code accepted".into(),
            });
            match self
                .try_code_for(
                    token,
                    code,
                    TokenState::Active,
                    TokenState::Active,
                    on_accept,
                    request,
                )
                .await?
            {
                CodeCheck::Accepted {
                    resynced,
                    audited,
                    matched,
                } => {
                    if resynced {
                        self.user_cache.forget(username);
                    } else {
                        self.user_cache.advanced(username, token.id, matched);
                    }
                    return Ok(CodeOutcome::Accepted {
                        serial: token.serial.0.clone(),
                        resynced,
                        audited,
                        retransmit: false,
                    });
                }
                CodeCheck::Rejected(Rejection::Replay)
                    if let Some(request) = request
                        && self
                            .store
                            .token_moved_by(
                                token.id,
                                request,
                                self.clock.now().saturating_sub(RETRANSMIT_SECS),
                            )
                            .await? =>
                {
                    // The same request (byte for byte, from the same client) moved this
                    // token's counter moments ago, perhaps on another node: it is a
                    // retransmit, and gets the same answer (RFC 5080 §2.2.2).
                    return Ok(CodeOutcome::Accepted {
                        serial: token.serial.0.clone(),
                        resynced: false,
                        audited: false,
                        retransmit: true,
                    });
                }
                CodeCheck::Rejected(r) => {
                    replayed |= matches!(r, Rejection::Replay);
                    if !compared.iter().any(|t| t.id == token.id) {
                        compared.push(token);
                    }
                    reasons.push(format!("{}: {}", token.serial, r.as_reason()))
                }
                CodeCheck::Throttled => {
                    reasons.push(format!("{}: throttled after failed codes", token.serial));
                }
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("no active token with {} digits", code.len()));
        }
        Ok(CodeOutcome::Rejected {
            reason: reasons.join("; "),
            replayed,
        })
    }

    /// The last step: the password (unless the application checked it), then accept.
    async fn finish_with_password(
        &self,
        user: &User,
        with_password: bool,
        password: &str,
        serial: Option<String>,
        how: &str,
    ) -> Result<Decision> {
        if with_password {
            // The claimed check clears the account's count when the password is right.
            if !self.check_validate_password(user, password).await? {
                return Ok(Decision {
                    serial,
                    ..Decision::reject(format!("{how}, but wrong password"))
                });
            }
        } else if user.fail_count > 0 {
            self.store.reset_account_failures(user.id).await?;
        }
        Ok(Decision::accept(how, serial, false))
    }
}

/// The (password, code) splits of a single-field `pass`: the last `digits` characters for each
/// code length the user's tokens use. Without code tokens, the whole field is the password.
fn split_pass(pass: &str, tokens: &[&Token], with_password: bool) -> Vec<(String, Option<String>)> {
    let mut lengths: Vec<usize> = tokens.iter().map(|t| t.digits as usize).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut out = Vec::new();
    for d in lengths {
        let Some(split) = pass.len().checked_sub(d) else {
            continue;
        };
        if !pass.is_char_boundary(split) {
            continue;
        }
        let (password, code) = pass.split_at(split);
        if code.bytes().all(|b| b.is_ascii_digit()) && (!password.is_empty() || !with_password) {
            out.push((password.to_owned(), Some(code.to_owned())));
        }
    }
    if out.is_empty() {
        out.push((pass.to_owned(), None));
    }
    out
}
