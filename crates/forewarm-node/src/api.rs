//! The HTTP API (axum). Every error is JSON `{"error": "<code>", "message": "…"}` with the
//! status that says whose fault it is: 400 bad input, 401 no or unknown token, 403 wrong kind
//! of token, 404 unknown (or another tenant's) code type, 409 conflict, 413 body too large,
//! 429 tenant quota, 502 the invocation failed in its container, 503 node capacity or
//! shutting down, 504 no answer within the code type's `timeout_ms`. A 429 or 503 over a
//! quota, the node's capacity or its in-flight slots carries `Retry-After` (seconds): that
//! request never reached a container.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use axum::Json;
use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use forewarm_runtime::{Workload, WorkloadOverrides};
use ractor::ActorStatus;
use ractor::rpc::CallResult;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admission::{Refused, Slots};
use crate::catalog::{
    Code, RUNNER_OVERHEAD_MIB, Tenant, code_key, hash_token, new_token, overrides_within,
    valid_code_name, valid_id,
};
use crate::collector::CollectorMsg;
use crate::health::Part;
use crate::idempotency::{Begun, Ids, MAX_KEY_LEN, Remembered, new_id, valid_key};
use crate::pool::{PoolError, PoolMsg};
use crate::predictor::{PredictorMsg, model_of};
use crate::router::{Invocation, InvokeError, RouterMsg};
use crate::shared::NodeShared;
use crate::supervisor::Slot;
use forewarm_cluster::ClusterError;
use forewarm_raft::{
    Applied, Command, DEFAULT_MAX_QUEUE, DEFAULT_TIMEOUT_MS, MAX_FEATURES, MAX_MAX_QUEUE,
    MAX_TIMEOUT_MS, TenantUpdate,
};

/// The shortest invocation deadline a code type may name, ms.
const MIN_TIMEOUT_MS: u64 = 10;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds to the next try worth making (`Retry-After`).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same, with `Retry-After: secs`.
    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "message": self.message}));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Api {
    /// Node-wide state.
    pub shared: Arc<NodeShared>,
    /// Invocations.
    pub router: Slot<RouterMsg>,
    /// Pool queries.
    pub pool: Slot<PoolMsg>,
    /// Training on demand.
    pub predictor: Slot<PredictorMsg>,
    /// Flushing samples before training on demand.
    pub collector: Slot<CollectorMsg>,
    /// Invocations in flight.
    pub slots: Arc<Slots>,
    /// Invocation ids and the answers they got.
    pub ids: Arc<Ids>,
}

enum Principal {
    Admin,
    /// The read-only operator token: `/metrics` and `/v1/cluster`.
    Viewer,
    Tenant(Tenant),
}

impl Api {
    fn principal(&self, headers: &HeaderMap) -> ApiResult<Principal> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "missing Authorization: Bearer <token>",
                )
            })?
            .to_str()
            .unwrap_or("");
        let token = value.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authorization must be 'Bearer <token>'",
            )
        })?;
        let sha256 = hash_token(token);
        if forewarm_raft::same_bytes(sha256.as_bytes(), self.shared.admin_token_sha256.as_bytes()) {
            return Ok(Principal::Admin);
        }
        if let Some(viewer) = &self.shared.viewer_token_sha256
            && forewarm_raft::same_bytes(sha256.as_bytes(), viewer.as_bytes())
        {
            return Ok(Principal::Viewer);
        }
        self.shared
            .catalog
            .tenant_by_token_sha256(&sha256)
            .map(Principal::Tenant)
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "unknown token")
            })
    }

    fn admin(&self, headers: &HeaderMap) -> ApiResult<()> {
        match self.principal(headers)? {
            Principal::Admin => Ok(()),
            Principal::Viewer | Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the admin token",
            )),
        }
    }

    /// The admin or the viewer token: what operators read (`/metrics`, `/v1/cluster`), never
    /// a tenant (the cluster's members, regions and addresses, every tenant's counters).
    pub(crate) fn operator(&self, headers: &HeaderMap) -> ApiResult<()> {
        match self.principal(headers)? {
            Principal::Admin | Principal::Viewer => Ok(()),
            Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the admin or the viewer token",
            )),
        }
    }

    fn tenant(&self, headers: &HeaderMap) -> ApiResult<Tenant> {
        match self.principal(headers)? {
            Principal::Tenant(t) => Ok(t),
            Principal::Admin | Principal::Viewer => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs a tenant token (the admin token owns no code types)",
            )),
        }
    }

    fn code(&self, tenant: &Tenant, name: &str) -> ApiResult<Arc<Code>> {
        // Another tenant's code type is indistinguishable from a missing one.
        self.shared
            .catalog
            .code(&code_key(&tenant.id, name))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no code type {name:?}: register it with PUT /v1/codes/{name}"),
                )
            })
    }
}

/// The body as JSON `T`; an empty body is `T::default()` when `empty_ok`.
fn json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    empty_ok: bool,
) -> ApiResult<(T, usize)> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        } else {
            ApiError::bad("bad_body", e.body_text())
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok((T::default(), bytes.len()))
        } else {
            Err(ApiError::bad("bad_body", "a JSON body is required"))
        };
    }
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut json).map_err(|e| {
        ApiError::bad(
            "bad_json",
            format!("request body at {}: {}", e.path(), e.inner()),
        )
    })?;
    Ok((value, bytes.len()))
}

/// The routes, with `max_body_bytes` as the body limit.
pub fn routes(api: Api) -> Routes {
    let limit = api.shared.config.max_body_bytes;
    Routes::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .route("/v1/tenants", post(create_tenant))
        .route(
            "/v1/tenants/{id}",
            get(get_tenant).patch(update_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{id}/token", post(rotate_token))
        .route("/v1/cluster", get(cluster))
        .route("/v1/cluster/members/{name}", delete(remove_member))
        .route("/v1/codes/{code}", put(put_code).get(get_code))
        .route("/v1/codes/{code}/prediction", get(prediction))
        .route("/v1/invoke/{code}", post(invoke))
        .route("/v1/pool", get(pool))
        .route("/v1/images", get(get_images).put(put_images))
        .route("/v1/history", get(crate::ui::history))
        .route("/openapi.json", get(openapi))
        .route("/ui", get(crate::ui::page))
        .route("/ui/app.js", get(crate::ui::script))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers: its node, region, policy and time scale", body = Object)))]
async fn healthz(State(api): State<Api>) -> Json<serde_json::Value> {
    let c = &api.shared.config;
    Json(
        json!({"status": "ok", "node": c.node_id, "region": c.region,
               "policy": c.policy.to_string(), "time_scale": c.time_scale}),
    )
}

#[utoipa::path(get, path = "/livez", tag = "health",
    responses((status = 200, description = "The process answers", body = Object)))]
/// 200 while the process answers (liveness: nothing else is checked).
async fn livez() -> Json<serde_json::Value> {
    Json(json!({"status": "live"}))
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready: store, engine, Raft and actors all well", body = Object),
        (status = 503, description = "Not ready: `{\"status\":\"not_ready\",\"reasons\":[...]}`, each naming what failed", body = Object)))]
/// 200 when the node can serve and keep what it is given; 503 with the reasons when its
/// store fails to write, its container engine does not answer, its replicated state stopped
/// or knows no leader, it hears fewer than a majority of the voters, or one of its actors is
/// gone (crate::health).
async fn readyz(State(api): State<Api>) -> Response {
    let mut reasons = api.shared.health.faults();
    reasons.extend(api.shared.cluster.fault());
    reasons.extend(api.shared.cluster.quorum_fault());
    if !api.shared.cluster.leader_known() {
        reasons.push(String::from("replicated state: no leader known"));
    }
    let actors = [
        ("router", api.router.get_status()),
        ("pool supervisor", api.pool.get_status()),
        ("predictor", api.predictor.get_status()),
        ("collector", api.collector.get_status()),
    ];
    for (name, status) in actors {
        if status != ActorStatus::Running {
            reasons.push(format!("actor {name}: {status:?}"));
        }
    }
    if reasons.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        let body = json!({"status": "not_ready", "reasons": reasons});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operators", security(("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text (1.0.0) to a client whose Accept names it (Prometheus does), else Prometheus's classic text format (0.0.4)", content_type = "text/plain", body = String),
        (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody)))]
async fn metrics(State(api): State<Api>, headers: HeaderMap) -> ApiResult<impl IntoResponse> {
    api.operator(&headers)?;
    let open_metrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let metrics = &api.shared.metrics;
    Ok(if open_metrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            metrics.render(),
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics.render_classic(),
        )
    })
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    max_warm: Option<u32>,
    max_memory_mib: Option<u64>,
    #[serde(default)]
    allowed_regions: Vec<String>,
    /// How far (measured round trip, ms, at most 60000) a request may be sent from the region
    /// it arrived in to find a warm container; absent: no bound.
    max_extra_latency_ms: Option<u32>,
}

/// What `POST /v1/tenants` asks for, checked: a valid name, quotas in range, valid regions.
#[derive(Debug)]
struct TenantRequest {
    name: String,
    max_warm: u32,
    max_memory_mib: u64,
    allowed_regions: Vec<String>,
    max_extra_latency_ms: Option<u32>,
}

/// The most a latency budget may be, ms (the topology's round trips are at most 60000 too).
const MAX_LATENCY_BUDGET_MS: u32 = 60_000;

/// A latency budget within its bound (400 `invalid_latency_budget` otherwise).
fn budget_within(budget: Option<u32>) -> ApiResult<()> {
    match budget {
        Some(ms) if ms > MAX_LATENCY_BUDGET_MS => Err(ApiError::bad(
            "invalid_latency_budget",
            format!(
                "max_extra_latency_ms must be 0..={MAX_LATENCY_BUDGET_MS} (or null: no bound), got {ms}"
            ),
        )),
        _ => Ok(()),
    }
}

/// The body of `POST /v1/tenants`, read and checked (400 or 413 otherwise).
fn tenant_request(body: Result<Bytes, BytesRejection>) -> ApiResult<TenantRequest> {
    let (req, _) = json_body::<NewTenant>(body, false)?;
    if !valid_id(&req.name) {
        return Err(ApiError::bad(
            "invalid_name",
            format!(
                "tenant name {:?} must be 1-32 of a-z, 0-9 and '-'",
                req.name
            ),
        ));
    }
    let max_warm = req.max_warm.unwrap_or(16);
    let max_memory_mib = req.max_memory_mib.unwrap_or(4096);
    quota_within(max_warm, max_memory_mib)?;
    regions_valid(&req.allowed_regions)?;
    budget_within(req.max_extra_latency_ms)?;
    Ok(TenantRequest {
        name: req.name,
        max_warm,
        max_memory_mib,
        allowed_regions: req.allowed_regions,
        max_extra_latency_ms: req.max_extra_latency_ms,
    })
}

/// A tenant's quotas within their bounds (400 `invalid_quota` otherwise).
fn quota_within(max_warm: u32, max_memory_mib: u64) -> ApiResult<()> {
    if !(1..=10_000).contains(&max_warm) || !(16..=1 << 24).contains(&max_memory_mib) {
        return Err(ApiError::bad(
            "invalid_quota",
            "max_warm must be 1..=10000 and max_memory_mib 16..=16777216",
        ));
    }
    Ok(())
}

/// Region names that could be regions (400 `invalid_region` otherwise).
fn regions_valid(regions: &[String]) -> ApiResult<()> {
    match regions.iter().find(|r| !valid_id(r)) {
        Some(bad) => Err(ApiError::bad(
            "invalid_region",
            format!("region {bad:?} must be 1-32 of a-z, 0-9 and '-'"),
        )),
        None => Ok(()),
    }
}

/// The body of `PATCH /v1/tenants/{id}`: what to change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantChange {
    max_warm: Option<u32>,
    max_memory_mib: Option<u64>,
    allowed_regions: Option<Vec<String>>,
    /// A new latency budget, ms; `null` removes it.
    #[serde(default, deserialize_with = "forewarm_raft::present")]
    #[schema(value_type = Option<u32>)]
    max_extra_latency_ms: Option<Option<u32>>,
}

#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant name")),
    request_body = TenantChange,
    responses((status = 200, description = "The tenant as stored", body = TenantView), (status = 400, description = "`bad_json`, `bad_body` or a field out of bounds (`invalid_*`), with the reason", body = ErrorBody), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
/// `PATCH /v1/tenants/{id}` (admin): new quotas or regions, in force on every node once
/// committed; answers the tenant as stored.
async fn update_tenant(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<TenantView>> {
    api.admin(&headers)?;
    let (change, _) = json_body::<TenantChange>(body, false)?;
    quota_within(
        change.max_warm.unwrap_or(1),
        change.max_memory_mib.unwrap_or(16),
    )?;
    regions_valid(change.allowed_regions.as_deref().unwrap_or_default())?;
    budget_within(change.max_extra_latency_ms.flatten())?;
    let update = TenantUpdate {
        id: id.clone(),
        max_warm: change.max_warm,
        max_memory_mib: change.max_memory_mib,
        allowed_regions: change.allowed_regions,
        max_extra_latency_ms: change.max_extra_latency_ms,
        ..TenantUpdate::default()
    };
    change_tenant(&api, &id, Command::UpdateTenant(update)).await?;
    get_tenant(State(api), Path(id), headers).await
}

/// Images a tenant may name: the cluster's list (replicated) and this node's own.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
struct Images {
    /// The cluster's allow-list: what `PUT /v1/images` set, the same on every node.
    images: Vec<String>,
    /// This node's own (its `runner_image` and the `images` of its config); read-only.
    #[serde(default, skip_deserializing)]
    node: Vec<String>,
}

/// Most images on the cluster's allow-list, and the longest name.
const MAX_IMAGES: usize = 256;
const MAX_IMAGE_NAME: usize = 255;

#[utoipa::path(get, path = "/v1/images", tag = "operators", security(("bearer" = [])),
    responses((status = 200, description = "The cluster's image allow-list and this node's own", body = Images), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody)))]
/// `GET /v1/images` (admin or viewer): the images tenants may name.
async fn get_images(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<Images>> {
    api.operator(&headers)?;
    api.shared
        .cluster
        .linearizable()
        .await
        .map_err(unavailable)?;
    let config = &api.shared.config;
    let node = std::iter::once(config.runner_image.clone())
        .chain(config.images.iter().cloned())
        .collect();
    Ok(Json(Images {
        images: api.shared.catalog.images(),
        node,
    }))
}

#[utoipa::path(put, path = "/v1/images", tag = "operators", security(("bearer" = [])),
    request_body = Images,
    responses((status = 200, description = "The allow-list as stored", body = Images), (status = 400, description = "`bad_json`, `bad_body` or a field out of bounds (`invalid_*`), with the reason", body = ErrorBody), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
/// `PUT /v1/images` (admin) with `{"images": [...]}`: replace the cluster's allow-list on
/// every node. Code types already registered keep running; a new registration is checked.
async fn put_images(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Images>> {
    api.admin(&headers)?;
    let (req, _) = json_body::<Images>(body, false)?;
    if req.images.len() > MAX_IMAGES {
        return Err(ApiError::bad(
            "too_many_images",
            format!("{} images: at most {MAX_IMAGES}", req.images.len()),
        ));
    }
    if let Some(bad) = req
        .images
        .iter()
        .find(|i| i.is_empty() || i.len() > MAX_IMAGE_NAME || i.chars().any(|c| c.is_whitespace()))
    {
        return Err(ApiError::bad(
            "invalid_image",
            format!("image {bad:?}: 1-{MAX_IMAGE_NAME} characters, no whitespace"),
        ));
    }
    match api
        .shared
        .cluster
        .write(Command::SetImages { images: req.images })
        .await
    {
        Ok(Applied::Done) => get_images(State(api), headers).await,
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(unavailable(e)),
    }
}

#[utoipa::path(post, path = "/v1/tenants/{id}/token", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant name")),
    responses((status = 200, description = "The new token; the old one is refused everywhere", body = TenantCreated), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
/// `POST /v1/tenants/{id}/token` (admin, or the tenant with its current token): a new token;
/// the old one is refused on every node once this is committed.
async fn rotate_token(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<TenantCreated>> {
    match api.principal(&headers)? {
        Principal::Admin => {}
        Principal::Tenant(t) if t.id == id => {}
        Principal::Viewer | Principal::Tenant(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a tenant token rotates only its own tenant's token",
            ));
        }
    }
    let token = format!("fwt_{}", new_token());
    let update = TenantUpdate {
        id: id.clone(),
        token_sha256: Some(hash_token(&token)),
        ..TenantUpdate::default()
    };
    change_tenant(&api, &id, Command::UpdateTenant(update)).await?;
    Ok(Json(TenantCreated { tenant: id, token }))
}

#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant name")),
    responses((status = 204, description = "Deleted on every node"), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
/// `DELETE /v1/tenants/{id}` (admin): the tenant, its code types and their models leave the
/// replicated state; its token is refused at once. Each node drops the pools of those code
/// types at its next reconcile (this one at once): idle and starting containers are removed,
/// busy ones when their request ends, then the tenant's network.
async fn delete_tenant(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    api.admin(&headers)?;
    change_tenant(&api, &id, Command::DeleteTenant { id: id.clone() }).await?;
    let _ = api.pool.cast(PoolMsg::Reconcile);
    Ok(StatusCode::NO_CONTENT)
}

/// Commit `command`, a change of tenant `id` (a forward re-sent after a lost answer applies
/// it again, to the same effect); 404 for an unknown tenant.
async fn change_tenant(api: &Api, id: &str, command: Command) -> ApiResult<()> {
    match api.shared.cluster.write(command).await {
        Ok(Applied::Done) => Ok(()),
        Ok(Applied::UnknownTenant { .. }) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no tenant {id:?}"),
        )),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(unavailable(e)),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TenantCreated {
    tenant: String,
    token: String,
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = NewTenant,
    responses(
        (status = 201, description = "Created on every node; the token is shown once", body = TenantCreated),
        (status = 400, description = "`bad_json`, `bad_body` or a field out of bounds (`invalid_*`), with the reason", body = ErrorBody), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody),
        (status = 409, description = "`exists`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn create_tenant(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    api.admin(&headers)?;
    let req = tenant_request(body)?;
    let token = format!("fwt_{}", new_token());
    let token_sha256 = hash_token(&token);
    let tenant = Tenant {
        id: req.name.clone(),
        token_sha256: token_sha256.clone(),
        max_warm: req.max_warm,
        max_memory_mib: req.max_memory_mib,
        allowed_regions: req.allowed_regions,
        max_extra_latency_ms: req.max_extra_latency_ms,
    };
    let written = api
        .shared
        .cluster
        .write(Command::CreateTenant(tenant))
        .await;
    // A forwarded write retried after its answer was lost (the leader went away after
    // committing it) finds its own tenant: that is a success, with this token.
    let own_retry = |id: &str| {
        api.shared
            .catalog
            .tenant(id)
            .is_some_and(|t| t.token_sha256 == token_sha256)
    };
    match written {
        Ok(Applied::TenantExists { id }) if !own_retry(&id) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("tenant {id} exists"),
        )),
        Ok(Applied::Done | Applied::TenantExists { .. }) => Ok((
            StatusCode::CREATED,
            Json(TenantCreated {
                tenant: req.name,
                token,
            }),
        )),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(unavailable(e)),
    }
}

/// A cluster failure as an answer: nothing was written (or it may be, when the leader went
/// away after the commit; the client can retry: creating a tenant twice answers 409).
fn unavailable(e: ClusterError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cluster", e.to_string())
}

fn unexpected(applied: &Applied) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("unexpected result of a cluster write: {applied:?}"),
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TenantView {
    tenant: String,
    max_warm: u32,
    max_memory_mib: u64,
    allowed_regions: Vec<String>,
    /// Absent: no bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_extra_latency_ms: Option<u32>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant name")),
    responses((status = 200, description = "The tenant (a linearizable read)", body = TenantView), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn get_tenant(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<TenantView>> {
    api.admin(&headers)?;
    // Linearizable: every node answers what was committed before the request.
    match api.shared.cluster.tenant(&id).await.map_err(unavailable)? {
        Some(t) => Ok(Json(TenantView {
            tenant: t.id,
            max_warm: t.max_warm,
            max_memory_mib: t.max_memory_mib,
            allowed_regions: t.allowed_regions,
            max_extra_latency_ms: t.max_extra_latency_ms,
        })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no tenant {id:?}"),
        )),
    }
}

#[utoipa::path(get, path = "/v1/cluster", tag = "operators", security(("bearer" = [])),
    responses((status = 200, description = "This node's view of the cluster: Raft state, leader, term, members with regions, roles, round trips and queue waits", body = Object), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody)))]
async fn cluster(
    State(api): State<Api>,
    headers: HeaderMap,
) -> ApiResult<Json<forewarm_cluster::ClusterView>> {
    api.operator(&headers)?;
    let mesh = api.shared.mesh.get();
    let groups = |name: &str| mesh.map(|m| m.groups(name)).unwrap_or_default();
    Ok(Json(api.shared.cluster.view(groups)))
}

#[utoipa::path(delete, path = "/v1/cluster/members/{name}", tag = "operators", security(("bearer" = [])),
    params(("name" = String, Path, description = "Member name")),
    responses((status = 204, description = "Removed from the membership"), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn remove_member(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    api.admin(&headers)?;
    match api.shared.cluster.remove_member(&name).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no member named {name:?}"),
        )),
        Err(e) => Err(unavailable(e)),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    /// The runner's workload: CPU, memory, I/O and init time per execution, and their bounds.
    #[serde(default)]
    #[schema(value_type = Object)]
    workload: Workload,
    image: Option<String>,
    max_memory_mib: Option<u32>,
    max_cpu_millis: Option<u32>,
    timeout_ms: Option<u64>,
    max_queue: Option<u32>,
    #[serde(default)]
    features: Vec<String>,
}

/// What `PUT /v1/codes/{code}` asks for, checked: a workload within its bounds that fits
/// the memory limit, limits, deadline and queue in range, an image reference.
#[derive(Debug)]
struct CodeRequest {
    workload: Workload,
    image: String,
    max_memory_mib: u32,
    max_cpu_millis: u32,
    timeout_ms: u64,
    max_queue: u32,
    features: Vec<String>,
}

/// The body of `PUT /v1/codes/{code}`, read and checked (400 or 413 otherwise); a code type
/// that names no image gets `runner_image`.
fn code_request(body: Result<Bytes, BytesRejection>, runner_image: &str) -> ApiResult<CodeRequest> {
    let (req, _) = json_body::<CodeBody>(body, true)?;
    req.workload
        .validate()
        .map_err(|e| ApiError::bad("invalid_workload", format!("workload.{e}")))?;
    let max_memory_mib = req.max_memory_mib.unwrap_or(256);
    let max_cpu_millis = req.max_cpu_millis.unwrap_or(1000);
    if !(16..=16_384).contains(&max_memory_mib) || !(50..=16_000).contains(&max_cpu_millis) {
        return Err(ApiError::bad(
            "invalid_limits",
            "max_memory_mib must be 16..=16384 and max_cpu_millis 50..=16000",
        ));
    }
    let timeout_ms = req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ApiError::bad(
            "invalid_timeout",
            format!("timeout_ms {timeout_ms} must be {MIN_TIMEOUT_MS}..={MAX_TIMEOUT_MS}"),
        ));
    }
    let max_queue = req.max_queue.unwrap_or(DEFAULT_MAX_QUEUE);
    if max_queue > MAX_MAX_QUEUE {
        return Err(ApiError::bad(
            "invalid_queue",
            format!("max_queue {max_queue} must be 0..={MAX_MAX_QUEUE}"),
        ));
    }
    if req.workload.mem_mib.saturating_add(RUNNER_OVERHEAD_MIB) > u64::from(max_memory_mib) {
        return Err(ApiError::bad(
            "invalid_limits",
            format!(
                "workload.mem_mib {} plus the runner's {RUNNER_OVERHEAD_MIB} MiB does not fit max_memory_mib {max_memory_mib}",
                req.workload.mem_mib
            ),
        ));
    }
    if req.features.len() > MAX_FEATURES {
        return Err(ApiError::bad(
            "invalid_features",
            format!(
                "at most {MAX_FEATURES} features, not {}",
                req.features.len()
            ),
        ));
    }
    for (i, name) in req.features.iter().enumerate() {
        let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        if !(1..=64).contains(&name.len()) || !name.bytes().all(word) {
            return Err(ApiError::bad(
                "invalid_features",
                format!("feature {name:?} must be 1-64 of a-z, 0-9 and '_' (a body field's name)"),
            ));
        }
        if req.features[..i].contains(name) {
            return Err(ApiError::bad(
                "invalid_features",
                format!("feature {name:?} is named twice"),
            ));
        }
    }
    let image = req.image.unwrap_or_else(|| runner_image.to_owned());
    if image.is_empty() || image.len() > 256 || image.chars().any(char::is_whitespace) {
        return Err(ApiError::bad(
            "invalid_image",
            format!("image {image:?} is not an image reference"),
        ));
    }
    Ok(CodeRequest {
        workload: req.workload,
        image,
        max_memory_mib,
        max_cpu_millis,
        timeout_ms,
        max_queue,
        features: req.features,
    })
}

#[utoipa::path(put, path = "/v1/codes/{code}", tag = "codes", security(("bearer" = [])),
    params(("code" = String, Path, description = "Code type name")),
    request_body = CodeBody,
    responses(
        (status = 201, description = "Registered", body = Object),
        (status = 200, description = "A new version of an existing code type", body = Object),
        (status = 400, description = "`bad_json`, `bad_body` or a field out of bounds (`invalid_*`), with the reason", body = ErrorBody), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody),
        (status = 403, description = "`forbidden` (not a tenant token) or `image_not_allowed`", body = ErrorBody),
        (status = 413, description = "`too_large`", body = ErrorBody),
        (status = 429, description = "`quota`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn put_code(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let tenant = api.tenant(&headers)?;
    if !valid_code_name(&name) {
        return Err(ApiError::bad(
            "invalid_name",
            format!("code name {name:?} must be 1-64 of A-Z, a-z, 0-9, '-', '_', '.'"),
        ));
    }
    let config = &api.shared.config;
    let req = code_request(body, &config.runner_image)?;
    let allowed =
        || config.image_allowed(&req.image) || api.shared.catalog.image_allowed(&req.image);
    // The cluster's list may have been changed through another member a moment ago: catch up
    // with what the leader has committed before refusing (read your writes across members).
    let allowed = allowed() || (api.shared.cluster.linearizable().await.is_ok() && allowed());
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "image_not_allowed",
            format!(
                "image {:?} is on neither the cluster's allow-list (PUT /v1/images) nor this \
                 node's ({} and the `images` of its config): ask an admin to add it",
                req.image, config.runner_image
            ),
        ));
    }
    let written_code = Code {
        tenant: tenant.id.clone(),
        name: name.clone(),
        workload: req.workload,
        image: req.image,
        max_memory_mib: req.max_memory_mib,
        max_cpu_millis: req.max_cpu_millis,
        timeout_ms: req.timeout_ms,
        max_queue: req.max_queue,
        features: req.features,
        version: 0,
        // This put's id: sent again (a forward that lost its answer), it is not stored twice.
        writes: vec![(new_id(), 0)],
    };
    let written = api
        .shared
        .cluster
        .write(Command::PutCode(written_code.clone()))
        .await
        .map_err(unavailable)?;
    // The answer is this write's version, even when a newer write was applied since.
    let version = match written {
        Applied::CodeVersion { version } => version,
        other => return Err(unexpected(&other)),
    };
    // Version 1 is this write's creation. Read from the write's own answer: whether this node
    // had applied an earlier version when the put arrived is a race on a follower (cluster t01
    // saw an update answered 201).
    let created = version == 1;
    if !created && let Some(stored) = api.shared.catalog.code(&code_key(&tenant.id, &name)) {
        let _ = api.pool.cast(PoolMsg::Retire(stored));
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(code_view(&Code {
            version,
            ..written_code
        })),
    ))
}

/// A code type as `PUT` and `GET /v1/codes/{code}` answer it.
fn code_view(code: &Code) -> serde_json::Value {
    json!({"code": code.name, "version": code.version, "image": code.image,
           "max_memory_mib": code.max_memory_mib, "max_cpu_millis": code.max_cpu_millis,
           "timeout_ms": code.timeout_ms, "max_queue": code.max_queue,
           "features": code.features, "workload": code.workload})
}

#[utoipa::path(get, path = "/v1/codes/{code}", tag = "codes", security(("bearer" = [])),
    params(("code" = String, Path, description = "Code type name")),
    responses((status = 200, description = "The code type as registered", body = Object), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn get_code(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant = api.tenant(&headers)?;
    // Linearizable, as a tenant read: every write acknowledged before the request is seen.
    api.shared
        .cluster
        .linearizable()
        .await
        .map_err(unavailable)?;
    let code = api.code(&tenant, &name)?;
    Ok(Json(code_view(&code)))
}

/// The body of `POST /v1/invoke/{code}`, read and checked (400 or 413 otherwise).
#[derive(Debug)]
struct InvokeRequest {
    /// Overrides of the code type's workload that keep it within its bounds and its memory
    /// limit.
    overrides: WorkloadOverrides,
    /// The values of the code type's declared features, in their order (0 where absent).
    features: Vec<f64>,
    /// The body's size.
    payload_bytes: usize,
}

fn invoke_request(body: Result<Bytes, BytesRejection>, code: &Code) -> ApiResult<InvokeRequest> {
    let (mut fields, payload_bytes) =
        json_body::<serde_json::Map<String, serde_json::Value>>(body, true)?;
    let mut features = Vec::with_capacity(code.features.len());
    for name in &code.features {
        let value = match fields.get(name) {
            None => 0.0,
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_feature",
                        format!("feature {name:?} must be a non-negative number, not {v}"),
                    )
                })?,
        };
        features.push(value);
        // A declared feature that is not an override is the profile's alone.
        if !WorkloadOverrides::FIELDS.contains(&name.as_str()) {
            fields.remove(name);
        }
    }
    let overrides: WorkloadOverrides =
        serde_path_to_error::deserialize(serde_json::Value::Object(fields)).map_err(|e| {
            ApiError::bad(
                "bad_json",
                format!("request body at {}: {}", e.path(), e.inner()),
            )
        })?;
    overrides_within(code, &overrides).map_err(|e| ApiError::bad("invalid_overrides", e))?;
    Ok(InvokeRequest {
        overrides,
        features,
        payload_bytes,
    })
}

#[utoipa::path(post, path = "/v1/invoke/{code}", tag = "invoke", security(("bearer" = [])),
    params(("code" = String, Path, description = "Code type name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Run at most once under this key (1-128 visible ASCII)")),
    request_body(content = Object, description = "Workload overrides within the code type's bounds and its declared feature fields (optional)"),
    responses(
        (status = 200, description = "Ran: where, how it started, usage and prediction; `x-forewarm-start`, `x-forewarm-invocation-id` and `Server-Timing` headers", body = crate::invocation::Invoked),
        (status = 400, description = "`bad_json`, `bad_body` or a field out of bounds (`invalid_*`), with the reason", body = ErrorBody), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody),
        (status = 403, description = "`forbidden`, or `region_not_allowed`: no member in the tenant's regions", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`in_progress`: the same Idempotency-Key is running (`Retry-After`)", body = ErrorBody),
        (status = 413, description = "`too_large`", body = ErrorBody),
        (status = 429, description = "`quota`: the tenant's containers are all in use (`Retry-After`)", body = ErrorBody),
        (status = 502, description = "`invocation_failed` or `internal`: it may have run", body = ErrorBody),
        (status = 503, description = "`capacity`, `start_failed`, `overloaded`, `fair_share`, `unavailable`, `store` or `no_allowed_region`: it did not run (`Retry-After` where worth a retry)", body = ErrorBody),
        (status = 504, description = "`timeout`: the code type's timeout_ms passed; its container is removed", body = ErrorBody)))]
async fn invoke(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let received = Instant::now();
    let tenant = api.tenant(&headers)?;
    let code = api.code(&tenant, &name)?;
    let InvokeRequest {
        overrides,
        features,
        payload_bytes,
    } = invoke_request(body, &code)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if valid_key(k) => Some(k.to_owned()),
            _ => {
                return Err(ApiError::bad(
                    "invalid_idempotency_key",
                    format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
                ));
            }
        },
    };
    // No key: an id of its own, for the logs and the client.
    let id = key.clone().unwrap_or_else(new_id);
    let span = tracing::info_span!("invocation", id = %id, tenant = %tenant.id, code = %name);
    let inv = Invocation {
        code,
        overrides,
        payload_bytes: payload_bytes as u64,
        features,
        received,
        admitted: received,
        forwarded: None,
        key: key.clone(),
        span: span.clone(),
    };
    let Some(key) = key else {
        // Nothing to remember.
        let mut response = run(&api, inv)
            .instrument(span)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        set_header(response.headers_mut(), INVOCATION_ID, &id);
        return Ok(response);
    };
    let running = match api.ids.begin(&tenant.id, &key, Instant::now()) {
        Begun::Run(running) => running,
        Begun::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_progress",
                format!("an invocation with Idempotency-Key {key:?} is running; ask again later"),
            )
            .retry_after(1));
        }
        Begun::Replay(answer) => return Ok(replayed(answer, &key)),
    };
    // Recorded before it runs, so a crash cannot lead to a second run; unrecorded, it must
    // not run at all.
    if let Err(e) = running.persist().await {
        api.shared.health.failed(Part::Store, &e);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store",
            format!("the node could not record Idempotency-Key {key:?} ({e}); nothing ran"),
        )
        .retry_after(1));
    }
    // Run to the end and remember the answer even if this client goes away meanwhile (its
    // retry must find the answer, not run it again).
    let answered = tokio::spawn(async move {
        let response = run(&api, inv)
            .instrument(span)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        let (mut parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let start = parts
            .headers
            .get(START_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let answer = Remembered {
            status: parts.status.as_u16(),
            start,
            body: body.to_vec(),
        };
        running.finish(answer, Instant::now()).await;
        set_header(&mut parts.headers, INVOCATION_ID, &key);
        Response::from_parts(parts, axum::body::Body::from(body))
    });
    answered.await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("invocation task: {e}"),
        )
    })
}

/// The header that names a response's invocation.
const INVOCATION_ID: &str = "x-forewarm-invocation-id";
/// The header that says how an invocation started.
const START_HEADER: &str = "x-forewarm-start";

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The answer remembered for `key`, again: nothing runs.
fn replayed(answer: Remembered, key: &str) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-forewarm-replayed", HeaderValue::from_static("true"));
    if let Some(start) = &answer.start {
        set_header(headers, START_HEADER, start);
    }
    set_header(headers, INVOCATION_ID, key);
    response
}

/// Run `inv` through the Router and answer.
async fn run(api: &Api, mut inv: Invocation) -> ApiResult<Response> {
    // Only a refusal reads the node's start time (not every request).
    let retry = || retry_after_secs(&api.shared);
    // Waiting for a slot counts against the invocation's deadline.
    let deadline =
        tokio::time::Instant::from_std(inv.received) + Duration::from_millis(inv.code.timeout_ms);
    let _slot = api
        .slots
        .acquire(&inv.code.tenant, deadline)
        .await
        .map_err(|e| {
            let code = match e {
                Refused::Node { .. } => "overloaded",
                Refused::Tenant { .. } => "fair_share",
            };
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code,
                format!("{e}; retry later"),
            )
            .retry_after(retry())
        })?;
    inv.admitted = Instant::now();
    let called = api
        .router
        .call(|reply| RouterMsg::Invoke(inv, reply), None)
        .await;
    let result = match called {
        Ok(CallResult::Success(r)) => r,
        _ => Err(InvokeError::Pool(PoolError::Stopping)),
    };
    match result {
        Ok(invoked) => {
            let word = invoked.start.as_str();
            let timing = invoked.stages.server_timing();
            let mut response = Json(invoked).into_response();
            let headers = response.headers_mut();
            headers.insert(START_HEADER, HeaderValue::from_static(word));
            set_header(headers, "server-timing", &timing);
            Ok(response)
        }
        Err(e) => {
            let (status, code) = e.http();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let error = ApiError::new(status, code, e.to_string());
            // Refused for room (quota, capacity): worth trying again once containers turn over.
            Err(match &e {
                InvokeError::Pool(PoolError::TenantQuota { .. } | PoolError::Capacity(_)) => {
                    error.retry_after(retry())
                }
                // The regions it may use were not available: worth trying again soon.
                InvokeError::NoAllowedRegion(_) => error.retry_after(1),
                _ => error,
            })
        }
    }
}

/// When a request refused for room is worth trying again, s: the node's measured container
/// start time (what it takes the room held now to turn over), at least 1.
fn retry_after_secs(shared: &NodeShared) -> u64 {
    let start_ms = crate::router::local_start_ms(shared);
    (start_ms / 1e3).ceil().max(1.0) as u64
}

#[derive(Debug, Deserialize)]
struct PredictionQuery {
    #[serde(default)]
    train: bool,
}

#[utoipa::path(get, path = "/v1/codes/{code}/prediction", tag = "codes", security(("bearer" = [])),
    params(("code" = String, Path, description = "Code type name"),
        ("train" = Option<bool>, Query, description = "Train on every sample so far first")),
    responses((status = 200, description = "Its model: profile, demand forecast, pool target, the other regions' summaries and why the next container has its size", body = Object), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 403, description = "`forbidden`: the wrong kind of token", body = ErrorBody), (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn prediction(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<PredictionQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant = api.tenant(&headers)?;
    let code = api.code(&tenant, &name)?;
    let key = code.key();
    if q.train {
        // Train on every sample accepted so far, buffered ones included.
        let _ = api
            .collector
            .call(CollectorMsg::Sync, Some(Duration::from_secs(30)))
            .await;
        let _ = api
            .predictor
            .call(
                |r| PredictorMsg::TrainNow(key.clone(), r),
                Some(Duration::from_secs(30)),
            )
            .await;
    }
    let model = model_of(&api.shared.models, &key);
    let pool = match api
        .pool
        .call(
            |r| PoolMsg::Target(key.clone(), r),
            Some(Duration::from_secs(5)),
        )
        .await
    {
        Ok(CallResult::Success(t)) => t,
        _ => None,
    };
    let region = &api.shared.config.region;
    let need = crate::router::predicted_sizing(&api.shared, &code, &key, 0, &[]).need_mib;
    let shared = api.shared.catalog.summaries(&key);
    let from_others = shared.iter().any(|m| m.region != *region && m.samples > 0);
    let why = match &model {
        None if from_others => format!(
            "no history in {region}: sized from other regions' models, next container {need:.0} MiB"
        ),
        None => format!(
            "no history yet: containers get the declared {} MiB",
            code.max_memory_mib
        ),
        Some(m) => format!(
            "{} samples: peak memory p99 {:.1} MiB{}; next container {need:.0} MiB",
            m.samples,
            m.peak_mib.p99,
            m.memory_on_input
                .as_ref()
                .map(|r| input_fit(r, &code.features))
                .unwrap_or_default()
        ),
    };
    Ok(Json(json!({
        "code": name,
        "profile": model.as_deref(),
        "need_mib": need,
        "shared": shared,
        "pool": pool,
        "why": why,
    })))
}

/// How peak memory depends on the input, as the prediction's `why` says it: `, 12.0 MiB +
/// 0.500 MiB per items (R² 0.99)` (inputs with slope 0 left out).
fn input_fit(r: &crate::predictor::Regression, features: &[String]) -> String {
    let names = std::iter::once("payload KiB").chain(features.iter().map(String::as_str));
    let slopes: Vec<String> = names
        .zip(r.coef.iter().skip(1))
        .filter(|(_, c)| **c != 0.0)
        .map(|(name, c)| format!(" + {c:.3} MiB per {name}"))
        .collect();
    format!(", {:.1} MiB{} (R² {:.2})", r.coef[0], slopes.concat(), r.r2)
}

#[utoipa::path(get, path = "/v1/pool", tag = "operators", security(("bearer" = [])),
    responses((status = 200, description = "This node's containers (a tenant sees its own), capacity and idle memory-time", body = Object), (status = 401, description = "`unauthenticated`: no token or an unknown one", body = ErrorBody), (status = 503, description = "`unavailable`: no Raft leader reachable, or the store cannot write (`Retry-After`)", body = ErrorBody)))]
async fn pool(State(api): State<Api>, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    let who = api.principal(&headers)?;
    let entries = match api
        .pool
        .call(PoolMsg::List, Some(Duration::from_secs(5)))
        .await
    {
        Ok(CallResult::Success(e)) => e,
        _ => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "pool supervisor not answering",
            ));
        }
    };
    let (_, idle) = api.shared.metrics.idle_memory();
    let (entries, idle): (Vec<_>, serde_json::Map<_, _>) = match who {
        Principal::Admin | Principal::Viewer => (
            entries,
            idle.into_iter().map(|(k, v)| (k, json!(v))).collect(),
        ),
        Principal::Tenant(t) => {
            let mine = format!("{}/", t.id);
            (
                entries.into_iter().filter(|e| e.tenant == t.id).collect(),
                idle.into_iter()
                    .filter(|(k, _)| k.starts_with(&mine))
                    .map(|(k, v)| (k, json!(v)))
                    .collect(),
            )
        }
    };
    let idle_total: f64 = idle.values().filter_map(serde_json::Value::as_f64).sum();
    let cap = api.shared.config.capacity;
    Ok(Json(json!({
        "node": api.shared.config.node_id,
        "capacity": {"memory_mib": cap.memory_mib, "containers": cap.containers},
        "containers": entries,
        // Memory held by idle containers over time, MiB × wall seconds (times the node's
        // time scale: trace seconds), per `tenant/code` and in total.
        "idle_memory_mib_s": idle,
        "idle_memory_mib_s_total": idle_total,
    })))
}

#[cfg(test)]
#[path = "api_props.rs"]
mod props;

/// Every error's body: a stable code and a sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error code (`unauthenticated`, `quota`, `region_not_allowed`, ...).
    pub error: String,
    /// What happened and, where there is one, what to do.
    pub message: String,
}

/// The API's OpenAPI document, generated from the handlers' annotations (utoipa), served at
/// `GET /openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "forewarm node API", description = "One forewarm node: tenants, code types, invocations, the cluster and its operators' views (docs/node.md)."),
    paths(
        healthz, livez, readyz, metrics, create_tenant, get_tenant, update_tenant, delete_tenant,
        rotate_token, cluster, remove_member, put_code, get_code, prediction, invoke, pool,
        get_images, put_images, crate::ui::history, crate::ui::page, crate::ui::script, openapi
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The `bearer` scheme the paths name: the admin, viewer or a tenant's token.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`authorization: Bearer TOKEN`: the admin token, the viewer token (reads of operators' views) or a tenant's token",
                    ))
                    .build(),
            ),
        );
    }
}

#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "This document", body = Object)))]
/// `GET /openapi.json`: the API described (OpenAPI 3.1), built once.
async fn openapi() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        <ApiDoc as utoipa::OpenApi>::openapi()
            .to_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"internal","message":"{e}"}}"#))
    });
    let mut response = doc.clone().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
