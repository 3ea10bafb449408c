//! The admin's RADIUS clients page (`/admin/radius`): list, register (the generated secret is
//! shown once, on this answer only), rotate and retire secrets, remove. Admins only; every
//! change carries the CSRF secret and asks for the admin's password again (`with_reauth`), and
//! calls the same service method as `tessera radius client`, which audits it.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::i18n::Tr;
use crate::model::{RadiusClient, RadiusMode};
use crate::service::radius::AddRadiusClient;

use super::pages::Nav;
use super::{AdminMe, AppState, FormData, Me, error_page, see_other, with_reauth};

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_radius.html")]
pub struct AdminRadiusPage {
    pub n: Nav,
    pub t: Tr,
    pub clients: Vec<RadiusClient>,
    /// A secret just generated: shown this once.
    pub new_secret: String,
    pub secret_for: String,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/radius", get(get_radius).post(post_radius))
        .route("/admin/radius/{name}/rotate", post(post_rotate))
        .route("/admin/radius/{name}/remove", post(post_remove))
}

async fn radius_page(s: &AppState, me: &Me, secret_for: &str, new_secret: String) -> Response {
    match s.list_radius_clients(&me.web.actor()).await {
        Ok(clients) => AdminRadiusPage {
            n: me.nav(s, "web.radius_title", "radius"),
            t: me.t,
            clients,
            new_secret,
            secret_for: secret_for.to_owned(),
        }
        .into_response(),
        Err(e) => error_page(s, me.t, Some(&me.web), &e),
    }
}

async fn get_radius(State(s): State<AppState>, AdminMe(me): AdminMe) -> Response {
    radius_page(&s, &me, "", String::new()).await
}

async fn post_radius(State(s): State<AppState>, AdminMe(me): AdminMe, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let me2 = me.clone();
    with_reauth(&me, &s, "/admin/radius", &form, |web, form| {
        let s = s.clone();
        async move {
            let mode = form.get("mode").parse().unwrap_or(RadiusMode::PasswordCode);
            let created = s
                .add_radius_client(
                    &web.actor(),
                    AddRadiusClient {
                        name: form.get("name").to_owned(),
                        address: form.get("address").to_owned(),
                        mode,
                        // BlastRADIUS: required unless the admin ticks the box against it.
                        require_message_authenticator: !form.has("no_message_authenticator"),
                        limit_proxy_state: form.has("limit_proxy_state"),
                        passthrough: false,
                        secret: None,
                    },
                )
                .await?;
            let secret = created.secret.map(|s| s.to_string()).unwrap_or_default();
            Ok(radius_page(&s, &me2, &created.client.name, secret).await)
        }
    })
    .await
}

async fn post_rotate(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let me2 = me.clone();
    let action = format!("/admin/radius/{name}/rotate");
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            let retire = form.has("retire");
            let (client, secret, _) = s
                .rotate_radius_secret(&web.actor(), &name, None, retire)
                .await?;
            let secret = secret.map(|s| s.to_string()).unwrap_or_default();
            Ok(radius_page(&s, &me2, &client.name, secret).await)
        }
    })
    .await
}

async fn post_remove(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("/admin/radius/{name}/remove");
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            s.remove_radius_client(&web.actor(), &name).await?;
            Ok(see_other("/admin/radius"))
        }
    })
    .await
}
