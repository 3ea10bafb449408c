//! Every decoder of outside input behind the HTTP front (JSON bodies, forms, path segments,
//! queries), through the real router on a real SQLite database: no input makes the server
//! panic or answer 500. The first byte picks the endpoint, the rest is the body, path segment or
//! query. Strangers' budgets are set out of reach, so throttling does not hide the handlers.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    admin: String,
    app_key: String,
    _dir: std::path::PathBuf,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("tessera-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = tessera_server::Config {
            data_dir: dir.clone(),
            ..tessera_server::Config::default()
        };
        config.auth.admin_second_factor = false;
        config.auth.source_failures_per_hour = u64::MAX / 2;
        config.auth.account_source_failures_per_hour = u64::MAX / 2;
        let (router, admin, app_key) = rt.block_on(async {
            use tessera_server::model::{Password, Role};
            use tessera_server::service::{Actor, CreateApp, CreateUser};
            let clock = Arc::new(tessera_server::clock::SystemClock);
            let (app, _) = tessera_server::build(config, clock).await.expect("build");
            let svc = &app.service;
            for (name, role) in [("root", Role::Admin), ("ann", Role::User)] {
                svc.create_user(
                    &Actor::operator(),
                    CreateUser {
                        username: name.into(),
                        email: format!("{name}@example.org"),
                        role: Some(role),
                        password: Some(Password::new("correct horse battery")),
                        ..CreateUser::default()
                    },
                )
                .await
                .expect("user");
            }
            let key = svc
                .create_app(
                    &Actor::operator(),
                    CreateApp {
                        name: "vpn".into(),
                        mode: None,
                        passthrough: None,
                    },
                )
                .await
                .expect("app")
                .api_key;
            let router = app.router();
            let login = Request::post("/api/v1/auth/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    r#"{"username":"root","password":"correct horse battery"}"#,
                ))
                .expect("request");
            let r = router.clone().oneshot(login).await.expect("login");
            let body = axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let token = v["token"].as_str().expect("token").to_owned();
            (router, token, key)
        });
        World {
            rt,
            router,
            admin,
            app_key,
            _dir: dir,
        }
    })
}

/// `(method, path, bearer, content type, body)` for selector `n` and the fuzzed bytes.
fn request(w: &World, n: u8, rest: &[u8]) -> Option<Request<Body>> {
    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";
    let text = String::from_utf8_lossy(rest);
    let (method, path, bearer, ct, body): (Method, String, Option<&str>, &str, Vec<u8>) =
        match n % 14 {
            0 => (
                Method::POST,
                "/api/v1/auth/login".into(),
                None,
                JSON,
                rest.to_vec(),
            ),
            1 => (
                Method::POST,
                "/api/v1/validate".into(),
                Some(&w.app_key),
                JSON,
                rest.to_vec(),
            ),
            2 => (Method::POST, "/login".into(), None, FORM, rest.to_vec()),
            3 => (Method::POST, "/recover".into(), None, FORM, rest.to_vec()),
            4 => (Method::POST, "/reset".into(), None, FORM, rest.to_vec()),
            5 => (
                Method::GET,
                format!("/api/v1/users/{text}"),
                Some(&w.admin),
                JSON,
                Vec::new(),
            ),
            6 => (
                Method::GET,
                format!("/api/v1/audit?{text}"),
                Some(&w.admin),
                JSON,
                Vec::new(),
            ),
            7 => (
                Method::POST,
                "/api/v1/users".into(),
                Some(&w.admin),
                JSON,
                rest.to_vec(),
            ),
            8 => (
                Method::PATCH,
                "/api/v1/users/ann".into(),
                Some(&w.admin),
                JSON,
                rest.to_vec(),
            ),
            9 => (
                Method::POST,
                "/api/v1/users/ann/tokens".into(),
                Some(&w.admin),
                JSON,
                rest.to_vec(),
            ),
            10 => (
                Method::GET,
                format!("/enroll/{text}"),
                None,
                FORM,
                Vec::new(),
            ),
            11 => (
                Method::GET,
                format!("/login?{text}"),
                None,
                FORM,
                Vec::new(),
            ),
            12 => (
                Method::POST,
                "/enroll/abc/verify".into(),
                None,
                FORM,
                rest.to_vec(),
            ),
            _ => (
                Method::PUT,
                "/api/v1/users/ann/recovery".into(),
                Some(&w.admin),
                JSON,
                rest.to_vec(),
            ),
        };
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, ct);
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let Some(req) = request(w, n, rest) else {
        return; // not a valid request line: hyper would refuse it before the router
    };
    let status =
        w.rt.block_on(w.router.clone().oneshot(req))
            .expect("the router is infallible")
            .status();
    assert_ne!(status.as_u16(), 500, "an input made the server fail");
});
