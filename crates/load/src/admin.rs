//! The admin API calls `prepare` and `unlock` make: log in, re-authenticate, and JSON requests
//! that re-authenticate once when the server asks for it.
//!
//! Error answers are `{"error": {"code", "message"}}`; callers branch on `code`, never on the
//! message text.

use std::time::Duration;

use anyhow::{Context, bail};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_load::report::ErrorKind;
use tessera_load::target::Target;

use crate::http::{self, HttpConn};

/// Admin calls may hash passwords (Argon2) on a busy machine: be patient.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A logged-in admin session.
pub struct Admin {
    target: Target,
    password: String,
    authorization: HeaderValue,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// An answer: the status and the JSON body (`null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// The stable error code of an error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// A one-line description for error messages (status, code and message; never a secret:
    /// the server's errors carry none).
    pub fn describe(&self) -> String {
        let message = self
            .body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("");
        format!(
            "HTTP {} {} {message}",
            self.status.as_u16(),
            self.error_code().unwrap_or("")
        )
    }
}

/// Reads the admin password from the environment variable named `var`.
pub fn password_from_env(var: &str) -> anyhow::Result<String> {
    let password = std::env::var(var)
        .with_context(|| format!("the admin password is read from ${var}, which is not set"))?;
    if password.is_empty() {
        bail!("${var} is empty");
    }
    Ok(password)
}

/// One JSON request on `conn`.
pub async fn call(
    conn: &mut HttpConn,
    target: &Target,
    method: Method,
    route: &str,
    authorization: Option<&HeaderValue>,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    let uri = http::route(target, route)?;
    let bytes = match body {
        Some(body) => Bytes::from(serde_json::to_vec(body)?),
        None => Bytes::new(),
    };
    let request = http::request(method.clone(), &uri, authorization, bytes);
    let (status, body) = conn
        .send(request, ADMIN_TIMEOUT)
        .await
        .map_err(|kind| match kind {
            ErrorKind::Connect => anyhow::anyhow!("cannot connect to {}", target.authority),
            _ => anyhow::anyhow!("{method} {route}: {}", kind.key()),
        })?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

impl Admin {
    /// `POST /api/v1/auth/login`.
    pub async fn login(
        conn: &mut HttpConn,
        target: &Target,
        username: &str,
        password: String,
    ) -> anyhow::Result<Admin> {
        let body = json!({"username": username, "password": password});
        let answer = call(
            conn,
            target,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&body),
        )
        .await?;
        if answer.status != StatusCode::OK {
            bail!("admin login failed: {}", answer.describe());
        }
        let token = answer
            .body
            .get("token")
            .and_then(Value::as_str)
            .context("login answer without a token")?;
        Ok(Admin {
            target: target.clone(),
            password,
            authorization: http::bearer(token)?,
        })
    }

    /// `POST /api/v1/auth/reauth`: allows sensitive changes for the next few minutes.
    pub async fn reauth(&self, conn: &mut HttpConn) -> anyhow::Result<()> {
        let body = json!({"password": self.password});
        let answer = call(
            conn,
            &self.target,
            Method::POST,
            "/api/v1/auth/reauth",
            Some(&self.authorization),
            Some(&body),
        )
        .await?;
        if answer.status != StatusCode::OK {
            bail!("re-authentication failed: {}", answer.describe());
        }
        Ok(())
    }

    /// An authenticated request. A `403 reauth_required` answer (the elevation expired) is
    /// followed by one re-authentication and one retry.
    pub async fn send(
        &self,
        conn: &mut HttpConn,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let answer = self.send_once(conn, method.clone(), route, body).await?;
        if answer.status == StatusCode::FORBIDDEN && answer.error_code() == Some("reauth_required")
        {
            self.reauth(conn).await?;
            return self.send_once(conn, method, route, body).await;
        }
        Ok(answer)
    }

    async fn send_once(
        &self,
        conn: &mut HttpConn,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        call(
            conn,
            &self.target,
            method,
            route,
            Some(&self.authorization),
            body,
        )
        .await
    }
}
