//! The dashboard every node serves at `/ui`: one page and its script, embedded in the binary
//! (no CDN, works offline), drawing what the API already answers an operator — the regions
//! and their round trips (`/v1/cluster`), this node's pool (`/v1/pool`) and the starts of the
//! last hour (`/v1/history`). The page itself holds no data; the data endpoints take the admin
//! or the viewer token, which the page asks for (or reads from the address's `#token=`
//! fragment, which browsers never send) and keeps in the tab's session storage.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{Api, ApiResult};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");

/// Nothing from elsewhere, no framing, no sniffing.
const POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /ui`: the page.
#[utoipa::path(get, path = "/ui", tag = "operators",
    responses((status = 200, description = "The dashboard (its data needs the admin or viewer token)", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    asset(PAGE, "text/html; charset=utf-8")
}

/// `GET /ui/app.js`: its script.
#[utoipa::path(get, path = "/ui/app.js", tag = "operators",
    responses((status = 200, description = "The dashboard's script", content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /v1/history` (admin or viewer): invocations this node answered in each of the last
/// 60 minutes, by start (`cold`, `warm`, `prewarmed`), oldest first; and its latest routing
/// decisions (where each of the last 50 invocations ran and why), newest first; per code type
/// run here, its runs per minute beside its model; and the other members' idle containers as
/// they last published them.
#[utoipa::path(get, path = "/v1/history", tag = "operators", security(("bearer" = [])),
    responses(
        (status = 200, description = "The last hour's starts per minute, the latest routing decisions, per code type its runs beside its model, the other members' containers by code type, state and size class, pre-warmed ones counted", body = Object),
        (status = 401, description = "`unauthenticated`", body = crate::api::ErrorBody),
        (status = 403, description = "`forbidden`: a tenant's token", body = crate::api::ErrorBody)))]
pub async fn history(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    api.operator(&headers)?;
    let now_minute = crate::clock::unix_ms() / 60_000;
    let c = &api.shared.config;
    let codes: Vec<serde_json::Value> = api
        .shared
        .metrics
        .recent
        .ran_by_code(now_minute)
        .into_iter()
        .map(|(code, ran)| {
            let model = crate::predictor::model_of(&api.shared.models, &code);
            json!({
                "code": code,
                "ran": ran.iter().map(|(minute, count)| json!({"minute": minute, "count": count})).collect::<Vec<_>>(),
                "model": model.map(|m| json!({
                    "samples": m.samples,
                    "trained_minute": m.trained_at_ms / 60_000,
                    "demand_per_min": m.demand.per_step,
                    "peak_mib": m.peak_mib,
                    "duration_ms": m.duration_ms,
                    "cold_start_ms": m.cold_start_ms,
                })),
            })
        })
        .collect();
    // The other members' pools as they last published them (idle containers by code type and
    // size class, what the Router routes on; busy and starting ones too, pre-warmed idle ones counted).
    let members: Vec<serde_json::Value> = {
        let remote = api
            .shared
            .cluster
            .remote
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut members: Vec<_> = remote
            .values()
            .map(|v| {
                json!({
                    "node": v.node.name,
                    "region": v.node.region,
                    "age_ms": v.fetched.elapsed().as_millis() as u64,
                    "idle": v.inventory.idle,
                    "busy": v.inventory.busy,
                    "starting": v.inventory.starting,
                    "prewarmed": v.inventory.prewarmed,
                })
            })
            .collect();
        members.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
        members
    };
    Ok(Json(json!({
        "node": c.node_id,
        "region": c.region,
        "minutes": api.shared.metrics.recent.minutes(now_minute),
        "routes": api.shared.metrics.recent.routes(&c.node_id, &c.region),
        "codes": codes,
        "members": members,
    })))
}
