//! RADIUS as one more front end over validation (SPEC §4): the clients (NASes, VPN gateways,
//! proxies) with their sealed shared secrets, and a login as a RADIUS client asks for it, turned
//! into the same validation calls the HTTP API makes. The codec and the UDP loop live in
//! `crates/radius` and `crate::radius`; this module never sees a packet.
//!
//! Challenge mode: the first request carries the password; when it is right, the answer is an
//! Access-Challenge whose State is sealed under the server key (client, user, expiry, a nonce,
//! and for e-mail/SMS the challenge's transaction id), so any node can open it; the nonce is
//! claimed in the database when the State is answered, so it works once, on any node.

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{random_bytes, token_hash};
use crate::model::{
    AppId, AppMode, AppState, Application, Cidr, Language, Password, RadiusClient, RadiusMode,
    Role, TokenKind,
};
use crate::msg::{Key, Msg};
use crate::store::{RequestPrint, StoreError};

use super::audit::Outcome;
use super::validate::{Extras, ValidateRequest, Verdict};
use super::{Actor, Error, Result, Service};

/// How long a challenge's State can be answered.
pub const STATE_TTL_SECS: i64 = 120;
/// Longest shared secret accepted (the draft asks for 64 to work; FreeRADIUS allows 128 too).
pub const MAX_SECRET: usize = 128;
/// Secrets this short draw a warning (draft-ietf-radext-deprecating-radius: "≤ 12 octets").
pub const SHORT_SECRET: usize = 12;

pub(super) fn secret_aad(name: &str, next: bool) -> Vec<u8> {
    let kind = if next { "next-secret" } else { "secret" };
    format!("tessera/radius-{kind}/v1/{name}").into_bytes()
}

fn state_aad(client_id: i64) -> Vec<u8> {
    format!("tessera/radius-state/v1/{client_id}").into_bytes()
}

/// The first 16 bytes of SHA-256 of the lower-cased name: binds a State to its user without
/// making it longer than an attribute can be.
fn user_tag(username: &str) -> [u8; 16] {
    let d = Sha256::digest(username.trim().to_lowercase().as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// A new client, as the CLI and the admin pages ask for it.
#[derive(Debug, Clone)]
pub struct AddRadiusClient {
    pub name: String,
    pub address: String,
    pub mode: RadiusMode,
    /// New clients require Message-Authenticator unless told otherwise (BlastRADIUS).
    pub require_message_authenticator: bool,
    pub limit_proxy_state: bool,
    pub passthrough: bool,
    /// The admin's own secret; `None` generates one.
    pub secret: Option<Zeroizing<String>>,
}

/// A client with its new secret: the secret is shown this once (if it was generated).
pub struct RadiusClientCreated {
    pub client: RadiusClient,
    pub secret: Option<Zeroizing<String>>,
    /// Set for a secret of 12 octets or fewer.
    pub short_secret: bool,
}

impl std::fmt::Debug for RadiusClientCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusClientCreated")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A client as the RADIUS server needs it: with its secrets opened.
pub struct LiveClient {
    pub client: RadiusClient,
    pub secret: Zeroizing<Vec<u8>>,
    pub next_secret: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for LiveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveClient")
            .field("client", &self.client.name)
            .finish_non_exhaustive()
    }
}

/// One Access-Request, as the RADIUS handler read it.
#[derive(Debug)]
pub struct RadiusLogin<'a> {
    pub username: String,
    /// User-Password, un-hidden: the password, the code, or both, by the client's mode.
    pub password: Password,
    /// The State of an Access-Challenge being answered.
    pub state: Option<&'a [u8]>,
    /// Client and exact request bytes: an identical retransmit has the same one.
    pub request: RequestPrint,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RadiusAnswer {
    /// Let the user in; `role` picks the client's reply attributes.
    Accept {
        role: Role,
    },
    Reject,
    /// Ask for a code: send `state` back with `prompt`.
    Challenge {
        state: Vec<u8>,
        prompt: String,
    },
}

/// The sealed contents of a State.
struct StateBody {
    client_id: i64,
    expires_at: i64,
    nonce: [u8; 16],
    user: [u8; 16],
    /// The e-mail/SMS challenge's transaction id; empty for authenticator codes.
    transaction: String,
}

impl StateBody {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(48 + self.transaction.len());
        v.extend_from_slice(&self.client_id.to_be_bytes());
        v.extend_from_slice(&self.expires_at.to_be_bytes());
        v.extend_from_slice(&self.nonce);
        v.extend_from_slice(&self.user);
        v.extend_from_slice(self.transaction.as_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<StateBody> {
        if b.len() < 48 {
            return None;
        }
        let client_id = i64::from_be_bytes(b[0..8].try_into().ok()?);
        let expires_at = i64::from_be_bytes(b[8..16].try_into().ok()?);
        Some(StateBody {
            client_id,
            expires_at,
            nonce: b[16..32].try_into().ok()?,
            user: b[32..48].try_into().ok()?,
            transaction: String::from_utf8(b[48..].to_vec()).ok()?,
        })
    }
}

/// The application a RADIUS client acts as towards validation (named `radius:NAME` in the
/// audit log).
fn radius_app(client: &RadiusClient, mode: AppMode) -> Application {
    Application {
        id: AppId(0),
        name: format!("radius:{}", client.name),
        key_prefix: String::new(),
        key_hash: String::new(),
        mode,
        passthrough: client.passthrough,
        state: AppState::Active,
        created_at: client.created_at,
        revoked_at: None,
    }
}

fn prompt(language: Language, kind: Option<TokenKind>) -> String {
    match (language, kind) {
        (Language::De, Some(TokenKind::Email)) => {
            "Geben Sie den Passcode ein, den wir Ihnen per E-Mail geschickt haben".into()
        }
        (Language::De, Some(TokenKind::Sms)) => {
            "Geben Sie den Passcode ein, den wir Ihnen per SMS geschickt haben".into()
        }
        (Language::De, _) => "Geben Sie den Passcode aus Ihrer Authenticator-App ein".into(),
        (Language::En, Some(TokenKind::Email)) => "Enter the code we sent you by e-mail".into(),
        (Language::En, Some(TokenKind::Sms)) => "Enter the code we sent you by SMS".into(),
        (Language::En, _) => "Enter the code from your authenticator app".into(),
    }
}

impl Service {
    fn check_secret(secret: &str) -> Result<bool> {
        if secret.is_empty() {
            return Err(Error::Invalid(Msg::new(Key::RadiusSecretEmpty)));
        }
        if secret.len() > MAX_SECRET || secret.chars().any(char::is_control) {
            return Err(Error::Invalid(
                Msg::new(Key::RadiusSecretLength).arg("max", MAX_SECRET),
            ));
        }
        Ok(secret.len() <= SHORT_SECRET)
    }

    /// 24 random bytes as 32 characters of base64url: 192 bits, typeable, no quoting needed in
    /// any NAS's configuration.
    fn generate_secret() -> Result<Zeroizing<String>> {
        Ok(Zeroizing::new(BASE64URL_NOPAD.encode(&random_bytes(24)?)))
    }

    /// Registers a RADIUS client. Its secret is generated unless given, and sealed like a
    /// token's seed; creating a secret is a sensitive change.
    pub async fn add_radius_client(
        &self,
        actor: &Actor,
        req: AddRadiusClient,
    ) -> Result<RadiusClientCreated> {
        let name = req.name.trim();
        if name.is_empty()
            || name.chars().count() > 64
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::Invalid(Msg::new(Key::NameLength)));
        }
        let address: Cidr = req
            .address
            .parse()
            .map_err(|e: String| Error::Invalid(Msg::new(Key::Text).arg("text", e)))?;
        actor.require_reauth(self.clock.now())?;
        let (secret, generated) = match req.secret {
            Some(s) => (s, false),
            None => (Self::generate_secret()?, true),
        };
        let short_secret = Self::check_secret(&secret)?;
        let now = self.clock.now();
        let client = RadiusClient {
            id: 0,
            name: name.to_owned(),
            address,
            sealed_secret: self
                .keys
                .seal(&secret_aad(name, false), secret.as_bytes())?,
            sealed_next_secret: None,
            mode: req.mode,
            require_message_authenticator: req.require_message_authenticator,
            limit_proxy_state: req.limit_proxy_state,
            passthrough: req.passthrough,
            created_at: now,
            updated_at: now,
        };
        let client = match self.store.insert_radius_client(&client).await {
            Err(StoreError::Conflict) => {
                return Err(Error::Conflict(
                    Msg::new(Key::RadiusClientExists).arg("name", name),
                ));
            }
            other => other?,
        };
        self.audit(
            actor,
            "radius.client.add",
            format!("radius:{}", client.name),
            "",
            Outcome::Success,
            format!(
                "address {}, mode {}, message authenticator {}, proxy-state limit {}",
                client.address,
                client.mode,
                if client.require_message_authenticator {
                    "required"
                } else {
                    "optional"
                },
                if client.limit_proxy_state {
                    "on"
                } else {
                    "off"
                },
            ),
        )
        .await?;
        Ok(RadiusClientCreated {
            client,
            secret: generated.then_some(secret),
            short_secret,
        })
    }

    pub async fn list_radius_clients(&self, _actor: &Actor) -> Result<Vec<RadiusClient>> {
        Ok(self.store.radius_clients().await?)
    }

    pub async fn get_radius_client(&self, _actor: &Actor, name: &str) -> Result<RadiusClient> {
        self.store
            .radius_client(name)
            .await?
            .ok_or(Error::NotFound("RADIUS client"))
    }

    /// Removes a client: from then on its packets are dropped as from an unknown source.
    pub async fn remove_radius_client(&self, actor: &Actor, name: &str) -> Result<()> {
        actor.require_reauth(self.clock.now())?;
        if !self.store.delete_radius_client(name).await? {
            return Err(Error::NotFound("RADIUS client"));
        }
        self.audit(
            actor,
            "radius.client.remove",
            format!("radius:{name}"),
            "",
            Outcome::Success,
            "",
        )
        .await?;
        Ok(())
    }

    /// Secret rotation without downtime: without `retire_old`, a next secret (generated unless
    /// given) is accepted beside the current one; with it, the next secret becomes the only one.
    /// Returns the new secret when it was generated.
    pub async fn rotate_radius_secret(
        &self,
        actor: &Actor,
        name: &str,
        secret: Option<Zeroizing<String>>,
        retire_old: bool,
    ) -> Result<(RadiusClient, Option<Zeroizing<String>>, bool)> {
        actor.require_reauth(self.clock.now())?;
        let client = self
            .store
            .radius_client(name)
            .await?
            .ok_or(Error::NotFound("RADIUS client"))?;
        let now = self.clock.now();
        let (generated, short, reason) = if retire_old {
            let Some(next) = &client.sealed_next_secret else {
                return Err(Error::Invalid(Msg::new(Key::RadiusNoNextSecret)));
            };
            let next = self.keys.open(&secret_aad(name, true), next)?;
            let sealed = self.keys.seal(&secret_aad(name, false), &next)?;
            self.store
                .set_radius_secrets(client.id, &sealed, None, now)
                .await?;
            (
                None,
                false,
                "old secret retired, next secret is the only one",
            )
        } else {
            let (secret, generated) = match secret {
                Some(s) => (s, false),
                None => (Self::generate_secret()?, true),
            };
            let short = Self::check_secret(&secret)?;
            let sealed_next = self.keys.seal(&secret_aad(name, true), secret.as_bytes())?;
            self.store
                .set_radius_secrets(client.id, &client.sealed_secret, Some(&sealed_next), now)
                .await?;
            (
                generated.then_some(secret),
                short,
                "next secret added, accepted beside the current one",
            )
        };
        self.audit(
            actor,
            "radius.client.rotate",
            format!("radius:{name}"),
            "",
            Outcome::Success,
            reason,
        )
        .await?;
        let client = self
            .store
            .radius_client(name)
            .await?
            .ok_or(Error::NotFound("RADIUS client"))?;
        Ok((client, generated, short))
    }

    /// Every client with its secrets opened, for the RADIUS server's table.
    pub async fn radius_client_table(&self) -> Result<Vec<LiveClient>> {
        let mut out = Vec::new();
        for client in self.store.radius_clients().await? {
            let secret = self
                .keys
                .open(&secret_aad(&client.name, false), &client.sealed_secret)?;
            let next_secret = match &client.sealed_next_secret {
                Some(n) => Some(self.keys.open(&secret_aad(&client.name, true), n)?),
                None => None,
            };
            out.push(LiveClient {
                client,
                secret,
                next_secret,
            });
        }
        Ok(out)
    }

    /// Whether the database answers (Status-Server is answered only then).
    pub async fn radius_ready(&self) -> bool {
        self.store.radius_client("").await.is_ok()
    }

    /// Decides one Access-Request of `client` from `source`. Every decision is audited by the
    /// validation it is made of, as the application `radius:NAME`.
    pub async fn radius_login(
        &self,
        client: &RadiusClient,
        source: &str,
        login: RadiusLogin<'_>,
    ) -> Result<RadiusAnswer> {
        let username = login.username.trim().to_owned();
        if username.is_empty() || username.chars().count() > 256 {
            return Ok(RadiusAnswer::Reject);
        }
        if let Some(state) = login.state {
            return self
                .answer_radius_state(client, source, &username, &login, state)
                .await;
        }
        let mut extras = Extras {
            request: Some(&login.request),
            background_delivery: true,
            password_first: false,
        };
        let pw = login.password.clone();
        let (mode, req) = match client.mode {
            RadiusMode::PasswordCode => (
                AppMode::PasswordAndOtp,
                ValidateRequest {
                    username: username.clone(),
                    pass: Some(pw),
                    ..Default::default()
                },
            ),
            RadiusMode::Code => (
                AppMode::OtpOnly,
                ValidateRequest {
                    username: username.clone(),
                    otp: Some(pw),
                    ..Default::default()
                },
            ),
            RadiusMode::Challenge => {
                extras.password_first = true;
                (
                    AppMode::PasswordAndOtp,
                    ValidateRequest {
                        username: username.clone(),
                        password: Some(pw),
                        ..Default::default()
                    },
                )
            }
        };
        let app = radius_app(client, mode);
        let decision = match self.validate_with(&app, source, req, extras).await {
            Ok(d) => d,
            // Malformed input (a code with letters, say) is a Reject over RADIUS.
            Err(Error::Invalid(_)) => return Ok(RadiusAnswer::Reject),
            Err(e) => return Err(e),
        };
        match decision.response.result {
            Verdict::Accept => self.radius_accept(&username).await,
            Verdict::Challenge => {
                let transaction = decision.response.transaction_id.unwrap_or_default();
                self.radius_challenge(
                    client,
                    &username,
                    transaction,
                    decision.response.challenge_kind,
                )
                .await
            }
            Verdict::Reject if decision.code_wanted => {
                self.radius_challenge(client, &username, String::new(), None)
                    .await
            }
            Verdict::Reject => Ok(RadiusAnswer::Reject),
        }
    }

    async fn radius_accept(&self, username: &str) -> Result<RadiusAnswer> {
        let role = self
            .store
            .user_by_name(username)
            .await?
            .map_or(Role::User, |u| u.role);
        Ok(RadiusAnswer::Accept { role })
    }

    async fn radius_challenge(
        &self,
        client: &RadiusClient,
        username: &str,
        transaction: String,
        kind: Option<TokenKind>,
    ) -> Result<RadiusAnswer> {
        let language = self
            .store
            .user_by_name(username)
            .await?
            .map_or(Language::En, |u| u.language);
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&random_bytes(16)?);
        let body = StateBody {
            client_id: client.id,
            expires_at: self.clock.now().saturating_add(STATE_TTL_SECS),
            nonce,
            user: user_tag(username),
            transaction,
        };
        let state = self.keys.seal(&state_aad(client.id), &body.encode())?;
        Ok(RadiusAnswer::Challenge {
            state,
            prompt: prompt(language, kind),
        })
    }

    /// The second step of challenge mode: the State names the user, the client and (for
    /// e-mail/SMS) the challenge; User-Password is the code.
    async fn answer_radius_state(
        &self,
        client: &RadiusClient,
        source: &str,
        username: &str,
        login: &RadiusLogin<'_>,
        state: &[u8],
    ) -> Result<RadiusAnswer> {
        let now = self.clock.now();
        let app = radius_app(client, AppMode::OtpOnly);
        let actor = format!("app:{}", app.name);
        let actor = actor.as_str();
        let refuse = |reason: &'static str| async move {
            self.audit_as(
                actor,
                source,
                "validate",
                format!("user:{username}"),
                username,
                Outcome::Failure,
                reason,
            )
            .await?;
            Ok(RadiusAnswer::Reject)
        };
        // Opening fails for a State of another client (the associated data names the client),
        // one never issued, and one altered.
        let Some(body) = self
            .keys
            .open(&state_aad(client.id), state)
            .ok()
            .and_then(|b| StateBody::decode(&b))
            .filter(|b| b.client_id == client.id)
        else {
            return refuse("State not issued to this client, or altered").await;
        };
        if !crate::crypto::ct_eq(&body.user, &user_tag(username)) {
            return refuse("State issued for another user").await;
        }
        if body.expires_at <= now {
            return refuse("State expired").await;
        }
        let nonce = token_hash(&BASE64URL_NOPAD.encode(&body.nonce));
        if !self
            .store
            .claim_radius_state(&nonce, body.expires_at)
            .await?
        {
            // Answered before: only an identical retransmit of that answer (perhaps sent to
            // another node) gets the same Accept again.
            if let Some((_, tokens)) = self.store.user_with_tokens(username).await? {
                for t in &tokens {
                    if self
                        .store
                        .token_moved_by(
                            t.id,
                            &login.request,
                            now.saturating_sub(super::validate::RETRANSMIT_SECS),
                        )
                        .await?
                    {
                        return self.radius_accept(username).await;
                    }
                }
            }
            return refuse("State used already").await;
        }
        let req = ValidateRequest {
            username: username.to_owned(),
            otp: Some(login.password.clone()),
            transaction_id: (!body.transaction.is_empty())
                .then(|| Password::new(body.transaction.clone())),
            ..Default::default()
        };
        let extras = Extras {
            request: Some(&login.request),
            ..Default::default()
        };
        match self.validate_with(&app, source, req, extras).await {
            Ok(d) if d.response.result == Verdict::Accept => self.radius_accept(username).await,
            Ok(_) | Err(Error::Invalid(_)) => Ok(RadiusAnswer::Reject),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bodies_round_trip_and_short_ones_are_refused() {
        let b = StateBody {
            client_id: 7,
            expires_at: 1_700_000_000,
            nonce: [3; 16],
            user: user_tag(" Alice "),
            transaction: "tx-abc".into(),
        };
        let back = StateBody::decode(&b.encode()).unwrap();
        assert_eq!(back.client_id, 7);
        assert_eq!(back.expires_at, 1_700_000_000);
        assert_eq!(back.user, user_tag("alice"));
        assert_eq!(back.transaction, "tx-abc");
        assert!(StateBody::decode(&[0; 47]).is_none());
    }
}
