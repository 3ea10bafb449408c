//! Tests of the HTTP SMS gateway client (`http.rs`) against a local gateway stub.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap as AxumHeaders, Method as AxumMethod, StatusCode as AxumStatus, Uri};
use axum::response::IntoResponse as _;

use super::*;

/// One request as the stub gateway saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: AxumMethod,
    uri: Uri,
    headers: AxumHeaders,
    body: Bytes,
}

/// A gateway on 127.0.0.1 that records every request. Paths choose the answer:
/// `/fail` 500 with an answer echoing the request, `/moved` 302, `/slow` no answer for 30 s,
/// else 200.
struct Stub {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: AxumMethod, uri: Uri, headers: AxumHeaders, body: Bytes| {
                let record = record.clone();
                async move {
                    let path = uri.path().to_owned();
                    let echo = String::from_utf8_lossy(&body).into_owned();
                    record.lock().unwrap().push(Seen {
                        method,
                        uri,
                        headers,
                        body,
                    });
                    match path.as_str() {
                        "/fail" => (
                            AxumStatus::INTERNAL_SERVER_ERROR,
                            format!("cannot deliver {echo} {}", "x".repeat(500)),
                        )
                            .into_response(),
                        "/moved" => (AxumStatus::FOUND, [("location", "/send")]).into_response(),
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            AxumStatus::OK.into_response()
                        }
                        _ => (AxumStatus::OK, "queued").into_response(),
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, seen }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    fn only(&self) -> Seen {
        let seen = self.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        seen[0].clone()
    }
}

fn config(url: String) -> SmsConfig {
    SmsConfig {
        gateway_url: url,
        ..SmsConfig::default()
    }
}

fn sms(text: &str) -> Sms {
    Sms {
        to: "+4915112345678".into(),
        text: text.into(),
    }
}

#[tokio::test]
async fn gateway_posts_json_with_escaped_placeholders_and_headers() {
    let stub = Stub::start().await;
    let mut cfg = config(stub.url("/send"));
    cfg.headers = vec!["X-Api-Key: k-123".into(), "Authorization:Bearer t0k".into()];
    let gateway = HttpSmsGateway::new(&cfg).unwrap();
    let text = "Say \"hi\"\nthen {phone} \\ done";
    gateway.send(&sms(text)).await.unwrap();

    let seen = stub.only();
    assert_eq!(seen.method, AxumMethod::POST);
    assert_eq!(seen.uri.path(), "/send");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["x-api-key"], "k-123");
    assert_eq!(seen.headers["authorization"], "Bearer t0k");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"to": "+4915112345678", "text": text})
    );
}

#[tokio::test]
async fn gateway_form_encodes_placeholders() {
    let stub = Stub::start().await;
    let mut cfg = config(stub.url("/send"));
    cfg.method = "put".into();
    cfg.content_type = "application/x-www-form-urlencoded".into();
    cfg.body_template = "to={phone}&text={message}&from=Tessera".into();
    let gateway = HttpSmsGateway::new(&cfg).unwrap();
    let text = "a&b=c d+é 100%";
    gateway.send(&sms(text)).await.unwrap();

    let seen = stub.only();
    assert_eq!(seen.method, AxumMethod::PUT);
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect();
    assert_eq!(
        fields,
        [
            ("to".to_owned(), "+4915112345678".to_owned()),
            ("text".to_owned(), text.to_owned()),
            ("from".to_owned(), "Tessera".to_owned()),
        ]
    );
}

#[tokio::test]
async fn gateway_sends_raw_body_for_other_content_types() {
    let stub = Stub::start().await;
    let mut cfg = config(stub.url("/send"));
    cfg.content_type = "text/plain; charset=utf-8".into();
    cfg.body_template = "{phone}\n{message}\n{other}".into();
    let gateway = HttpSmsGateway::new(&cfg).unwrap();
    gateway.send(&sms("code \"1\" & more")).await.unwrap();
    let seen = stub.only();
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        "+4915112345678\ncode \"1\" & more\n{other}"
    );
}

#[tokio::test]
async fn gateway_get_puts_url_encoded_placeholders_in_url_and_sends_no_body() {
    let stub = Stub::start().await;
    let mut cfg = config(stub.url("/api/{phone}/send?text={message}&key=abc"));
    cfg.method = "GET".into();
    let gateway = HttpSmsGateway::new(&cfg).unwrap();
    let text = "Code: 123 456 & more/?#";
    gateway.send(&sms(text)).await.unwrap();

    let seen = stub.only();
    assert_eq!(seen.method, AxumMethod::GET);
    assert_eq!(seen.uri.path(), "/api/%2B4915112345678/send");
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(seen.uri.query().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        query,
        [
            ("text".to_owned(), text.to_owned()),
            ("key".to_owned(), "abc".to_owned()),
        ]
    );
    assert!(seen.body.is_empty());
    assert!(seen.headers.get("content-type").is_none());
}

#[tokio::test]
async fn gateway_error_status_is_reported_without_number_or_text() {
    let stub = Stub::start().await;
    let gateway = HttpSmsGateway::new(&config(stub.url("/fail?key=secret-key"))).unwrap();
    let err = gateway.send(&sms("Your code is 123456")).await.unwrap_err();
    let SmsError::Gateway(message) = &err else {
        panic!("expected Gateway, got {err:?}");
    };
    assert!(message.contains("500 Internal Server Error"), "{message}");
    assert!(message.contains("cannot deliver"), "{message}");
    assert!(!message.contains("123456"), "{message}");
    assert!(!message.contains("4915112345678"), "{message}");
    assert!(!message.contains("secret-key"), "{message}");
    let excerpt = message.split(": ").skip(1).collect::<Vec<_>>().join(": ");
    assert!(excerpt.chars().count() <= ANSWER_EXCERPT_CHARS, "{message}");
}

#[tokio::test]
async fn gateway_redirect_is_not_followed() {
    let stub = Stub::start().await;
    let err = HttpSmsGateway::new(&config(stub.url("/moved")))
        .unwrap()
        .send(&sms("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmsError::Gateway(ref m) if m.contains("302 Found")),
        "{err}"
    );
    assert_eq!(stub.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unreachable_gateway_is_a_gateway_error_without_the_url() {
    // Bind and drop: the port is free and nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(format!(
        "http://127.0.0.1:{port}/send?to={{phone}}&key=s3cret"
    ));
    cfg.method = "GET".into();
    let err = HttpSmsGateway::new(&cfg)
        .unwrap()
        .send(&sms("Your code is 123456"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SmsError::Gateway(_)), "{text}");
    assert!(text.to_lowercase().contains("connect"), "{text}");
    assert!(
        !text.contains("s3cret") && !text.contains("4915112345678"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_gateway_times_out() {
    let stub = Stub::start().await;
    let mut cfg = config(stub.url("/slow"));
    cfg.timeout_secs = 1;
    let err = HttpSmsGateway::new(&cfg)
        .unwrap()
        .send(&sms("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SmsError::Gateway(ref m) if m.contains("within 1 s")),
        "{err}"
    );
}

#[test]
fn invalid_method_is_refused_at_construction() {
    let mut cfg = config("https://sms.example.com/send".into());
    cfg.method = "PATCH".into();
    let err = HttpSmsGateway::new(&cfg).unwrap_err();
    assert!(
        matches!(err, SmsError::InvalidConfig(ref m) if m.contains("PATCH")),
        "{err}"
    );
}

#[test]
fn invalid_header_is_named_without_its_value() {
    let mut cfg = config("https://sms.example.com/send".into());
    cfg.headers = vec!["X Bad Name: topsecret".into()];
    let err = HttpSmsGateway::new(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("X Bad Name") && !err.contains("topsecret"),
        "{err}"
    );

    cfg.headers = vec!["X-Key: line\nbreak-secret".into()];
    let err = HttpSmsGateway::new(&cfg).unwrap_err().to_string();
    assert!(err.contains("X-Key") && !err.contains("secret"), "{err}");

    cfg.headers = vec!["Bearer-no-colon-secret".into()];
    let err = HttpSmsGateway::new(&cfg).unwrap_err().to_string();
    assert!(err.contains("entry 1") && !err.contains("secret"), "{err}");
}

#[test]
fn invalid_url_is_refused_at_construction() {
    for url in [
        "ftp://sms.example.com/",
        "not a url",
        "https://",
        "mailto:sms@example.com",
    ] {
        let err = HttpSmsGateway::new(&config(url.into())).unwrap_err();
        assert!(matches!(err, SmsError::InvalidConfig(_)), "{url}: {err}");
    }
}

#[test]
fn gateway_debug_hides_path_query_and_headers() {
    let mut cfg = config("https://sms.example.com:8443/bot-key/send?key=abc".into());
    cfg.headers = vec!["X-Api-Key: topsecret".into()];
    let printed = format!("{:?}", HttpSmsGateway::new(&cfg).unwrap());
    assert!(
        printed.contains("https://sms.example.com:8443"),
        "{printed}"
    );
    assert!(
        !printed.contains("bot-key") && !printed.contains("abc"),
        "{printed}"
    );
    assert!(!printed.contains("topsecret"), "{printed}");
}

#[test]
fn fill_replaces_placeholders_once() {
    let out = fill("{phone}|{message}|{x}{", "P", "{phone}", str::to_owned);
    assert_eq!(out, "P|{phone}|{x}{");
    assert_eq!(json_escape("a\"b\n\\"), r#"a\"b\n\\"#);
    assert_eq!(percent_encode("+1 2/é"), "%2B1%202%2F%C3%A9");
}
