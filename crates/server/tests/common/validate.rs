//! A server with one registered application, for tests of `POST /api/v1/validate`: users and
//! tokens are made through the service as the local operator, logins go over HTTP with the
//! application's key.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use serde_json::Value;
use tessera_otp::KeyUri;
use tessera_server::model::{AppMode, AuditFilter, Password, Role, TokenKind};
use tessera_server::service::{Actor, AddToken, CreateApp, CreateUser};

use super::{Db, TestServer, oracle_totp};

/// The password of every user the fixture creates.
pub const PASSWORD: &str = "user password 1";

/// A server with one application and helpers to create users and tokens as the operator.
pub struct Fixture {
    pub s: TestServer,
    /// The application's API key.
    pub key: String,
}

impl Fixture {
    pub async fn new(db: Db, mode: AppMode) -> Fixture {
        Self::with(db, mode, |_| {}).await
    }

    pub async fn with(
        db: Db,
        mode: AppMode,
        tweak: impl FnOnce(&mut tessera_server::Config),
    ) -> Fixture {
        let s = TestServer::spawn_with(db, tweak).await;
        let app = s
            .app
            .service
            .create_app(
                &Actor::operator(),
                CreateApp {
                    name: "vpn".into(),
                    mode: Some(mode),
                    passthrough: None,
                },
            )
            .await
            .unwrap();
        Fixture {
            s,
            key: app.api_key,
        }
    }

    /// A user `NAME` with the address `NAME@example.com` and [`PASSWORD`].
    pub async fn user(&self, name: &str, otp_required: bool) {
        self.user_with(name, |u| u.otp_required = otp_required)
            .await;
    }

    /// Like [`Fixture::user`], with the record adjusted by `tweak` (phone, language, ...).
    pub async fn user_with(&self, name: &str, tweak: impl FnOnce(&mut CreateUser)) {
        let mut user = CreateUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: Some(Password::new(PASSWORD)),
            role: Some(Role::User),
            ..CreateUser::default()
        };
        tweak(&mut user);
        self.s
            .app
            .service
            .create_user(&Actor::operator(), user)
            .await
            .unwrap();
    }

    /// Adds and activates a token; returns its Key URI.
    pub async fn token(&self, user: &str, kind: &str) -> String {
        let svc = &self.s.app.service;
        let created = svc
            .add_token(
                &Actor::operator(),
                user,
                AddToken {
                    kind: Some(kind.parse().unwrap()),
                    ..AddToken::default()
                },
            )
            .await
            .unwrap();
        let uri = created.otpauth_uri.clone().unwrap();
        let parsed = KeyUri::parse(&uri).unwrap();
        let first = if kind == "hotp" {
            parsed.hotp().unwrap().generate(&parsed.secret, 0)
        } else {
            oracle_totp(&uri, self.now())
        };
        svc.verify_first_code(&Actor::operator(), created.token.id, &first)
            .await
            .unwrap();
        if kind == "totp" {
            // Activation used the current step; the tests start at the next one.
            self.s.clock.advance(30);
        }
        uri
    }

    /// Adds an e-mail or SMS token (active at once: there is no seed to confirm); returns its
    /// serial.
    pub async fn challenge_token(&self, user: &str, kind: TokenKind) -> String {
        let created = self
            .s
            .app
            .service
            .add_token(
                &Actor::operator(),
                user,
                AddToken {
                    kind: Some(kind),
                    ..AddToken::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(created.token.state.as_str(), "active");
        created.token.serial.0
    }

    pub fn now(&self) -> u64 {
        u64::try_from(tessera_server::clock::Clock::now(&self.s.clock)).unwrap()
    }

    pub async fn validate(&self, body: Value) -> (u16, Value) {
        let r = self
            .s
            .client
            .post(self.s.url("/api/v1/validate"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn result(&self, body: Value) -> String {
        let (status, v) = self.validate(body).await;
        assert_eq!(status, 200, "{v}");
        v["result"].as_str().unwrap().to_owned()
    }

    /// The newest audit reason for the user.
    pub async fn last_reason(&self, user: &str) -> String {
        self.reasons(user, "validate").await.remove(0)
    }

    /// The audit reasons of the user's entries with `action`, newest first.
    pub async fn reasons(&self, user: &str, action: &str) -> Vec<String> {
        self.s
            .app
            .service
            .list_audit(
                &Actor::operator(),
                AuditFilter {
                    username: Some(user.into()),
                    action: Some(action.into()),
                    limit: 500,
                    ..AuditFilter::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.reason)
            .collect()
    }
}
