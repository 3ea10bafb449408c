//! The input guard in front of every route: no field of Tessera accepts the NUL character
//! (U+0000). PostgreSQL cannot store it in text at all, and a name with a NUL in it is a trick,
//! never a typo. A request that carries one, in its path, its query, a form or a JSON body, is
//! answered `400 invalid_input` before any handler runs, the same way on both databases.
//!
//! Bodies of other types (none today; file uploads later) are passed on untouched: binary files
//! may hold NUL bytes legitimately and are checked by their own parsers.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::i18n::{Tr, negotiate};
use crate::service::ErrorCode;

use super::{ApiError, AppState};

/// What the API says about a NUL character.
const NUL_MESSAGE: &str = "the request contains a NUL character (U+0000), which no field accepts";

/// The guard, as an axum middleware.
pub async fn refuse_nul(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    if has_nul_in_uri(req.uri().path(), req.uri().query()) {
        return refusal(&s, &req, api);
    }
    let kind = body_kind(&req);
    if kind == BodyKind::Other || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let limit = s.config().server.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(api),
    };
    let nul = match kind {
        BodyKind::Form => has_nul_in_form(&bytes),
        BodyKind::Json => has_nul_in_json(&bytes),
        BodyKind::Other => false,
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    if nul {
        return refusal(&s, &req, api);
    }
    next.run(req).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
    Other,
}

/// Which of the checked body types the request says it carries. Web forms are sent without a
/// type by some clients; the web handlers parse any body as a form, so a missing type on a
/// non-API path counts as a form.
fn body_kind(req: &Request) -> BodyKind {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let api = req.uri().path().starts_with("/api/");
    match ct.as_str() {
        "application/x-www-form-urlencoded" => BodyKind::Form,
        "" if !api => BodyKind::Form,
        "" => BodyKind::Json,
        t if t == "application/json" || t.ends_with("+json") => BodyKind::Json,
        _ => BodyKind::Other,
    }
}

fn refusal(s: &AppState, req: &Request, api: bool) -> Response {
    if api {
        return ApiError::new(ErrorCode::InvalidInput, NUL_MESSAGE).into_response();
    }
    let accept = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Tr::in_zone(
        negotiate(None, accept, s.config().server.default_language),
        s.config().server.zone(),
    );
    super::web::message(
        s,
        t,
        None,
        StatusCode::BAD_REQUEST,
        "web.invalid_title",
        t.t("web.nul_text").to_owned(),
    )
}

fn too_large(api: bool) -> Response {
    if api {
        return ApiError::new(ErrorCode::PayloadTooLarge, "request body too large").into_response();
    }
    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
}

/// A NUL in the path (`%00` in any segment: it has no letters, so no case to fold) or in the
/// query.
pub fn has_nul_in_uri(path: &str, query: Option<&str>) -> bool {
    path.as_bytes().windows(3).any(|w| w == b"%00")
        || query.is_some_and(|q| has_nul_in_form(q.as_bytes()))
}

/// A NUL in an `application/x-www-form-urlencoded` body: raw, or `%00` in a name or a value.
pub fn has_nul_in_form(body: &[u8]) -> bool {
    body.contains(&0)
        || url::form_urlencoded::parse(body).any(|(k, v)| k.contains('\0') || v.contains('\0'))
}

/// A NUL in a JSON text: a raw zero byte (invalid JSON anyway) or the escape `\u0000` inside a
/// string. The scan follows escapes, so `"\\u0000"` (a backslash, then the text u0000) is not a
/// NUL. Outside strings JSON has no backslashes, so the scan needs no other state.
pub fn has_nul_in_json(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            0 => return true,
            b'\\' => {
                if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_every_encoding() {
        assert!(has_nul_in_uri("/api/v1/users/a%00b", None));
        assert!(has_nul_in_uri("/x", Some("q=a%00")));
        assert!(has_nul_in_uri("/x", Some("a%00=1")));
        assert!(!has_nul_in_uri("/api/v1/users/a%20b", Some("q=%2500")));
        assert!(has_nul_in_form(b"username=a%00&password=x"));
        assert!(has_nul_in_form(b"username=a\0"));
        assert!(!has_nul_in_form(b"username=a%2500+b"));
        assert!(has_nul_in_json(br#"{"username":"a\u0000"}"#));
        assert!(has_nul_in_json(br#"{"username":"\\\u0000"}"#));
        assert!(!has_nul_in_json(br#"{"username":"\\u0000"}"#));
        assert!(!has_nul_in_json(br#"{"username":"\u0001"}"#));
        assert!(has_nul_in_json(b"{\"a\":\"\0\"}"));
        assert!(!has_nul_in_json(br#"{"a":"\"}"#));
        assert!(!has_nul_in_json(b"\\"));
        assert!(!has_nul_in_json(b"\\u00"));
    }
}
