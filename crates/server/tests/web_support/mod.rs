//! What the web page tests share: a small cookie-keeping browser over reqwest, users with
//! tokens, and reading values out of pages.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;

use tessera_server::clock::Clock as _;
use tessera_server::model::{Password, Role, TokenId};
use tessera_server::service::{Actor, AddToken, CreateUser};

use crate::common::{TestServer, oracle_totp};

pub const NOW: u64 = 1_700_000_000;
pub const PASSWORD: &str = "a long user password";

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// A client that keeps cookies and does not follow redirects.
pub struct Browser<'a> {
    pub s: &'a TestServer,
    pub cookies: BTreeMap<String, String>,
    client: reqwest::Client,
}

impl<'a> Browser<'a> {
    pub fn new(s: &'a TestServer) -> Browser<'a> {
        Browser {
            s,
            cookies: BTreeMap::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(self.s.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let r = self
            .client
            .post(self.s.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// Opens the login page and sends the form.
    pub async fn login(&mut self, username: &str, password: &str, code: &str) -> Page {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200);
        let value = hidden(&page.body, "login_form");
        self.post(
            "/login",
            &[
                ("login_form", &value),
                ("username", username),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }

    /// The CSRF value of the session, from the portal page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/portal").await;
        assert_eq!(page.status, 200, "logged in");
        hidden(&page.body, "csrf")
    }
}

/// The value of the first hidden field `name` on a page.
pub fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// Creates a user with a password (and the given role).
pub async fn add_user(s: &TestServer, name: &str, role: Role, otp_required: bool) {
    s.app
        .service
        .create_user(
            &Actor::operator(),
            CreateUser {
                username: name.into(),
                display_name: format!("{name} Example"),
                email: format!("{name}@example.org"),
                phone: "+49 30 1234567".into(),
                otp_required,
                role: Some(role),
                password: Some(Password::new(PASSWORD)),
                ..CreateUser::default()
            },
        )
        .await
        .unwrap();
}

/// Adds an active TOTP token named `name` to the user (activated with the code of `NOW`);
/// returns its id and Key URI.
pub async fn add_totp(s: &TestServer, user: &str, name: &str) -> (TokenId, String) {
    let created = s
        .app
        .service
        .add_token(
            &Actor::operator(),
            user,
            AddToken {
                name: Some(name.into()),
                ..AddToken::default()
            },
        )
        .await
        .unwrap();
    let uri = created.otpauth_uri.clone().unwrap();
    let now = now(s);
    s.app
        .service
        .verify_first_code(
            &Actor::operator(),
            created.token.id,
            &oracle_totp(&uri, now),
        )
        .await
        .unwrap();
    (created.token.id, uri)
}

/// The code of the next time step (the current one may be used already), moving the clock there.
pub fn next_code(s: &TestServer, uri: &str) -> String {
    s.clock.advance(30);
    oracle_totp(uri, now(s))
}

/// The server's current time.
pub fn now(s: &TestServer) -> u64 {
    u64::try_from(s.clock.now()).unwrap()
}
