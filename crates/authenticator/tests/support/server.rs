//! A real Tessera server on `127.0.0.1:0` beside the `tessera-auth` binary: the system clock
//! (the binary makes codes from the real time), SQLite in a temporary data directory, mails in
//! the outbox. (The server side of these flows runs on PostgreSQL too in the server crate's
//! tests, e.g. tests/vault_backup.rs; these tests are about the client.) Users, invitations and applications are made through the service as the local
//! operator; everything the user does goes through `tessera-auth`.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::PathBuf;
use std::sync::Arc;

use tessera_server::model::{AppMode, Password, Role};
use tessera_server::service::{Actor, CreateApp, CreateUser};
use tessera_server::{App, Config};

/// The password of the test user.
pub const PASSWORD: &str = "user password 1";

pub struct Server {
    pub base: String,
    pub app: App,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("base", &self.base).finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn spawn() -> Server {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.server.public_url = base.clone();
        config.auth.admin_second_factor = false;
        config.server.time_zone = "UTC".into();
        tweak(&mut config);
        let (app, _) = tessera_server::build(config, Arc::new(tessera_server::clock::SystemClock))
            .await
            .unwrap();
        let limits = tessera_server::http::serve::Limits::from_config(&app.service.config().server);
        let task = tokio::spawn(tessera_server::http::serve::serve(
            listener,
            app.router(),
            limits,
            std::future::pending(),
            std::time::Duration::ZERO,
        ));
        Server {
            base,
            app,
            dir,
            client: reqwest::Client::new(),
            task,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A user who must use a one-time code, with [`PASSWORD`] and an address.
    pub async fn user(&self, name: &str) {
        self.app
            .service
            .create_user(
                &Actor::operator(),
                CreateUser {
                    username: name.into(),
                    display_name: format!("{name} Example"),
                    email: format!("{name}@example.com"),
                    password: Some(Password::new(PASSWORD)),
                    role: Some(Role::User),
                    otp_required: true,
                    ..CreateUser::default()
                },
            )
            .await
            .unwrap();
    }

    /// Mails an invitation and returns the link the mail holds.
    pub async fn invite(&self, name: &str) -> String {
        self.app
            .service
            .invite_user(&Actor::operator(), name, true)
            .await
            .unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.data_dir().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        let raw = std::fs::read(files.last().unwrap()).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let body = msg.body_text(0).unwrap().into_owned();
        let start = body.find("http").unwrap();
        body[start..]
            .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Registers an application (a VPN gateway) and returns its key.
    pub async fn app_key(&self) -> String {
        self.app
            .service
            .create_app(
                &Actor::operator(),
                CreateApp {
                    name: "vpn".into(),
                    mode: Some(AppMode::PasswordAndOtp),
                    passthrough: None,
                },
            )
            .await
            .unwrap()
            .api_key
    }

    /// A login as the VPN gateway asks for it: `accept` or `reject`.
    pub async fn login(&self, key: &str, user: &str, password: &str, code: &str) -> String {
        let r: serde_json::Value = self
            .client
            .post(format!("{}/api/v1/validate", self.base))
            .bearer_auth(key)
            .json(&serde_json::json!({"username": user, "password": password, "otp": code}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["result"].as_str().unwrap_or_default().to_owned()
    }
}
