//! The portal's "Move from Google Authenticator": the user uploads the export's QR images, the
//! page offers only the entries of this server's issuer (`Service::stage_my_migration` drops
//! the rest), the user picks one and confirms it with the code the app shows now and their
//! password again.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::i18n::Tr;
use crate::model::Language;
use crate::service::MigrationOffer;

use super::pages::Nav;
use super::{AppState, FormData, Me, error_page, see_other, with_reauth};

/// Export images are a few hundred KB each; screenshots of phones a few MB.
const MAX_UPLOAD: usize = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/portal/migrate",
            post(post_migrate).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/portal/migrate/confirm", post(post_confirm))
        .route("/portal/migrate/cancel", post(post_cancel))
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/portal_migrate.html")]
pub struct MigratePage {
    pub n: Nav,
    pub t: Tr,
    pub offer: MigrationOffer,
    pub intro: String,
    pub others: String,
}

async fn post_migrate(State(s): State<AppState>, me: Me, mp: Multipart) -> Response {
    let (form, files) = match super::read_multipart(mp).await {
        Ok(f) => f,
        Err(e) => return error_page(&s, me.t, Some(&me.web), &e),
    };
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let lang = match me.t.0 {
        Language::De => tessera_import::Lang::De,
        Language::En => tessera_import::Lang::En,
    };
    match s.stage_my_migration(&me.web, &files, lang).await {
        Ok(offer) => {
            let t = me.t;
            MigratePage {
                n: me.nav(&s, "migrate.title", "portal"),
                t,
                intro: if offer.entries.is_empty() {
                    t.f1("migrate.none", "issuer", &offer.issuer)
                } else {
                    t.f1("migrate.pick", "issuer", &offer.issuer)
                },
                others: if offer.other_issuers > 0 {
                    t.f1("migrate.others", "count", &offer.other_issuers.to_string())
                } else {
                    String::new()
                },
                offer,
            }
            .into_response()
        }
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_confirm(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    with_reauth(&me, &s, "/portal/migrate/confirm", &form, |web, form| {
        let s = s.clone();
        async move {
            let index = form.get("entry").parse::<usize>().unwrap_or(usize::MAX);
            s.confirm_my_migration(&web, index, form.get("code"), form.get("name"))
                .await?;
            Ok(see_other("/portal?done=migrated"))
        }
    })
    .await
}

async fn post_cancel(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s.cancel_web_import(&me.web).await {
        Ok(()) => see_other("/portal"),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}
