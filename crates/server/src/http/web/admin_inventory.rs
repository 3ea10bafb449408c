//! The admin's inventory pages (`/admin/inventory`): hardware tokens in stock with search by
//! serial and filters (state, kind, maker), the imports, and an import from uploaded files or
//! images: a dry run first (the report shows parameters, skips with their reasons, never a
//! seed), then the confirmation, which asks for the admin's password again; assigning a token
//! to a user and retiring one ask for it too. Every step calls the service the CLI uses, which
//! audits it.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::i18n::Tr;
use crate::model::{
    ImportRecord, InventoryFilter, InventoryState, InventoryToken, Language, TokenKind,
};
use crate::service::{Error, ImportReport, ReportEntry, Upload, UploadedFile};

use super::pages::{FilterLink, Nav};
use super::{AdminMe, AppState, FormData, Me, error_page, see_other, user_href, with_reauth};

/// Tokens per page of the list.
const PAGE: i64 = 50;

/// The largest upload (all files of one import together): several export images of up to
/// 20 MB each would not fit anyway; a seed file of 100,000 keys is about 90 MB and belongs on
/// the command line.
const MAX_UPLOAD: usize = 32 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/inventory", get(get_inventory))
        .route(
            "/admin/inventory/import",
            post(post_import).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/admin/inventory/import/confirm", post(post_confirm))
        .route("/admin/inventory/import/cancel", post(post_cancel))
        .route("/admin/inventory/{serial}/assign", post(post_assign))
        .route("/admin/inventory/{serial}/retire", post(post_retire))
}

/// One token of the list, formatted.
#[derive(Debug, Clone)]
pub struct InventoryRow {
    pub t: InventoryToken,
    pub kind: &'static str,
    pub state: &'static str,
    pub params: String,
    pub valid_until: String,
    pub in_stock: bool,
}

/// One import of the list.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub i: ImportRecord,
    pub at: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_inventory.html")]
pub struct InventoryPage {
    pub n: Nav,
    pub t: Tr,
    pub rows: Vec<InventoryRow>,
    pub summary: String,
    pub q: String,
    pub states: Vec<FilterLink>,
    pub kinds: Vec<FilterLink>,
    pub manufacturers: Vec<(String, bool)>,
    pub state: String,
    pub kind: String,
    pub prev_href: String,
    pub next_href: String,
    pub imports: Vec<ImportRow>,
    pub staged: bool,
    pub notice: String,
}

/// One skip or warning of a report, in the page's language.
#[derive(Debug, Clone)]
pub struct EntryRow {
    pub locator: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_import_report.html")]
pub struct ReportPage {
    pub n: Nav,
    pub t: Tr,
    pub r: ImportReport,
    pub counts: String,
    pub refused: Option<EntryRow>,
    pub skips: Vec<EntryRow>,
    pub warnings: Vec<EntryRow>,
    /// A dry run waiting for its confirmation.
    pub confirm: bool,
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    manufacturer: String,
    #[serde(default)]
    page: i64,
    #[serde(default)]
    done: String,
}

impl ListQuery {
    fn href(&self, state: &str, kind: &str, page: i64) -> String {
        let mut href = format!("/admin/inventory?q={}", enc(&self.q));
        for (k, v) in [
            ("state", state),
            ("kind", kind),
            ("manufacturer", self.manufacturer.as_str()),
        ] {
            if !v.is_empty() {
                href.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        if page > 0 {
            href.push_str(&format!("&page={page}"));
        }
        href
    }
}

fn entry(t: Tr, e: &ReportEntry) -> EntryRow {
    EntryRow {
        locator: e.locator.clone(),
        code: e.code.clone(),
        message: if t.0 == Language::De && !e.message_de.is_empty() {
            e.message_de.clone()
        } else {
            e.message.clone()
        },
    }
}

async fn get_inventory(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = me.t;
    let page = q.page.max(0);
    let state: Option<InventoryState> = q.state.parse().ok();
    let kind: Option<TokenKind> = q
        .kind
        .parse()
        .ok()
        .filter(|k| matches!(k, TokenKind::Totp | TokenKind::Hotp));
    let filter = InventoryFilter {
        search: q.q.trim().to_owned(),
        state,
        kind,
        manufacturer: q.manufacturer.clone(),
    };
    let (list, total) = match s
        .list_inventory(&filter, PAGE, page.saturating_mul(PAGE))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let imports = match s.imports(20).await {
        Ok(i) => i,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let makers = match s.inventory_manufacturers().await {
        Ok(m) => m,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let staged = match s.has_staged_import(&me.web).await {
        Ok(b) => b,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let state_s = state.map_or("", |s| s.as_str());
    let kind_s = kind.map_or("", |k| k.as_str());
    let offset = page.saturating_mul(PAGE);
    let shown = offset + i64::try_from(list.len()).unwrap_or(0);
    let from = if total == 0 { 0 } else { offset + 1 };
    let notice = match q.done.as_str() {
        "retired" | "cancelled" => t.t(&format!("inventory.done_{}", q.done)).to_owned(),
        _ => String::new(),
    };
    InventoryPage {
        n: me.nav(&s, "inventory.title", "inventory"),
        t,
        summary: t.f(
            "inventory.summary",
            &[
                ("from", &from.to_string()),
                ("to", &shown.to_string()),
                ("total", &total.to_string()),
            ],
        ),
        states: [
            ("", "inventory.all"),
            ("in_stock", "inventory.state_in_stock"),
            ("assigned", "inventory.state_assigned"),
            ("retired", "inventory.state_retired"),
        ]
        .iter()
        .map(|(v, key)| FilterLink {
            label: t.t(key),
            href: q.href(v, kind_s, 0),
            current: *v == state_s,
        })
        .collect(),
        kinds: [
            ("", "inventory.all"),
            ("totp", "inventory.kind_totp"),
            ("hotp", "inventory.kind_hotp"),
        ]
        .iter()
        .map(|(v, key)| FilterLink {
            label: t.t(key),
            href: q.href(state_s, v, 0),
            current: *v == kind_s,
        })
        .collect(),
        manufacturers: makers
            .into_iter()
            .map(|m| {
                let selected = m == q.manufacturer;
                (m, selected)
            })
            .collect(),
        prev_href: if page > 0 {
            q.href(state_s, kind_s, page - 1)
        } else {
            String::new()
        },
        next_href: if shown < total {
            q.href(state_s, kind_s, page + 1)
        } else {
            String::new()
        },
        rows: list
            .into_iter()
            .map(|i| InventoryRow {
                kind: t.t(&format!("inventory.kind_{}", i.kind)),
                state: t.t(&format!("inventory.state_{}", i.state)),
                params: if i.kind == TokenKind::Totp {
                    format!("{}, {}, {} s", i.algorithm, i.digits, i.period)
                } else {
                    format!("{}, {}", i.algorithm, i.digits)
                },
                valid_until: i.not_after.map_or(String::new(), |at| t.datetime(at)),
                in_stock: i.state == InventoryState::InStock,
                t: i,
            })
            .collect(),
        imports: imports
            .into_iter()
            .map(|i| ImportRow {
                at: t.datetime(i.created_at),
                i,
            })
            .collect(),
        state: state_s.to_owned(),
        kind: kind_s.to_owned(),
        staged,
        notice,
        q: q.q,
    }
    .into_response()
}

fn report_page(s: &AppState, me: &Me, r: ImportReport, confirm: bool) -> Response {
    let t = me.t;
    let key = if r.dry_run {
        "inventory.counts_dry"
    } else {
        "inventory.counts"
    };
    let status = if r.refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ReportPage {
        n: me.nav(s, "inventory.report_title", "inventory"),
        t,
        counts: t.f(
            key,
            &[
                ("imported", &r.imported.to_string()),
                ("updated", &r.updated.to_string()),
                ("existing", &r.existing.to_string()),
                ("skipped", &r.skipped.to_string()),
            ],
        ),
        refused: r.refused.as_ref().map(|e| entry(t, e)),
        skips: r.skips.iter().map(|e| entry(t, e)).collect(),
        warnings: r.warnings.iter().map(|e| entry(t, e)).collect(),
        confirm: confirm && r.refused.is_none(),
        r,
    };
    (status, page).into_response()
}

/// Reads the multipart upload: the options and every file.
async fn read_upload(mp: Multipart) -> Result<(FormData, Upload), Error> {
    let (form, files) = super::read_multipart(mp).await?;
    let upload = Upload {
        format: form.get("format").parse().ok(),
        files: files
            .into_iter()
            .map(|(name, bytes)| UploadedFile { name, bytes })
            .collect(),
        password: form.get("password").to_owned(),
        key_hex: form.get("key_hex").to_owned(),
        preset: form.get("preset").to_owned(),
        secret_encoding: form.get("secret_encoding").to_owned(),
        allow_unauthenticated: form.has("allow_unauthenticated"),
        update_existing: form.has("update_existing"),
    };
    Ok((form, upload))
}

async fn post_import(State(s): State<AppState>, AdminMe(me): AdminMe, mp: Multipart) -> Response {
    let (form, upload) = match read_upload(mp).await {
        Ok(u) => u,
        Err(e) => return error_page(&s, me.t, Some(&me.web), &e),
    };
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s.stage_web_import(&me.web, upload).await {
        Ok(report) => report_page(&s, &me, report, true),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_confirm(State(s): State<AppState>, AdminMe(me): AdminMe, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let me2 = me.clone();
    with_reauth(
        &me,
        &s,
        "/admin/inventory/import/confirm",
        &form,
        |web, _| {
            let s = s.clone();
            async move {
                let report = s.confirm_web_import(&web).await?;
                Ok(report_page(&s, &me2, report, false))
            }
        },
    )
    .await
}

async fn post_cancel(State(s): State<AppState>, AdminMe(me): AdminMe, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s.cancel_web_import(&me.web).await {
        Ok(()) => see_other("/admin/inventory?done=cancelled"),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_assign(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("/admin/inventory/{}/assign", enc(&serial));
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            let actor = web.actor();
            let name = form.get("name").trim();
            let token = s
                .assign_inventory_token(
                    &actor,
                    &serial,
                    form.get("user").trim(),
                    (!name.is_empty()).then_some(name),
                )
                .await?;
            Ok(see_other(&format!(
                "{}?done=assigned",
                user_href(&token.username)
            )))
        }
    })
    .await
}

async fn post_retire(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("/admin/inventory/{}/retire", enc(&serial));
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            let actor = web.actor();
            s.retire_inventory_token(&actor, &serial).await?;
            Ok(see_other("/admin/inventory?done=retired"))
        }
    })
    .await
}
