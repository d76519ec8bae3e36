//! `POST /api/v1/orders/`: validate, price from the catalog, store, start
//! the saga. Honours `Idempotency-Key`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use bazaar_kit::ServiceName;
use bazaar_kit::auth::AuthUser;
use bazaar_kit::client::CallOptions;
use bazaar_kit::db::{now_rfc3339, unique_violation};
use bazaar_kit::extract::{Json, parse_json};
use serde_json::Value;

use super::traced;
use super::view::OrderView;
use crate::AppState;
use crate::domain::request::{CreateOrder, Draft};
use crate::domain::{Status, canonical_json};
use crate::error::OrdersError;
use crate::store::{self, Change, LineRow, Order, OrderRow, idempotency};
use bazaar_proto::catalog::v1::catalog_client::CatalogClient;
use bazaar_proto::catalog::v1::{LookupProductsRequest, Product};

/// Creates an order in `pending` and starts its checkout. With an
/// `Idempotency-Key`, the same key and body replay the first response.
#[utoipa::path(post, path = "/api/v1/orders/", operation_id = "create_order", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1–255 visible ASCII characters; the same key and body from the same user replay the first response")),
    request_body = CreateOrder,
    responses((status = 201, description = "created in `pending` (or a replay of the first response)", body = OrderView,
                  headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
              (status = 400, description = "invalid items, token or address, unknown products, or a bad Idempotency-Key"),
              (status = 401, description = "no or bad token"),
              (status = 409, description = "a request with this Idempotency-Key is in progress"),
              (status = 422, description = "this Idempotency-Key was used with a different body"),
              (status = 502, description = "the catalog gave an unexpected answer"),
              (status = 503, description = "the catalog is unavailable; nothing was stored")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, OrdersError> {
    let key = idempotency_key(&headers)?;
    let request = canonical_json(&body);
    if let Some(key) = &key
        && let Some(record) = idempotency::find(&state.db, &user.id, key).await?
    {
        return replay(record, &request);
    }
    let parsed: CreateOrder = parse_json(body.to_string().as_bytes())?;
    let draft = parsed.validate().map_err(Problem::validation)?;
    let order = price(&state, &headers, &user, &draft).await?;
    let view = serde_json::to_string(&OrderView::new(&order, None)).map_err(Problem::internal)?;

    let mut tx = state.db.pool().begin().await?;
    store::insert(&mut tx, &order).await?;
    if let Some(key) = &key {
        let record = idempotency::Record {
            request: request.clone(),
            status_code: 201,
            response: view.clone(),
        };
        if let Err(e) = idempotency::insert(&mut tx, &user.id, key, &record).await {
            tx.rollback().await?;
            if unique_violation(&e).is_none() {
                return Err(e.into());
            }
            // A concurrent request with this key won; answer as it did.
            return match idempotency::find(&state.db, &user.id, key).await? {
                Some(record) => replay(record, &request),
                None => Err(Problem::conflict(
                    "A request with this Idempotency-Key is in progress.",
                )
                .into()),
            };
        }
    }
    tx.commit().await?;
    state.saga.apply_created(Change {
        order_id: order.row.id.clone(),
        status: Status::Pending,
        reason: None,
        at: order.row.created_at.clone(),
    });
    state.saga.kick(order.row.id.clone());
    Ok(json_response(StatusCode::CREATED, view, false))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Ok(Some(k.trim().to_string())),
        _ => Err(Problem::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters.",
        )),
    }
}

fn replay(record: idempotency::Record, request: &str) -> Result<Response, OrdersError> {
    if record.request != request {
        return Err(Problem::unprocessable(
            "This Idempotency-Key was already used with a different request body.",
        )
        .into());
    }
    let status = StatusCode::from_u16(record.status_code as u16).unwrap_or(StatusCode::CREATED);
    Ok(json_response(status, record.response, true))
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The order with the catalog's current names and prices; unknown products
/// are a 400 naming them; catalog down is a 503 and nothing is stored.
async fn price(
    state: &AppState,
    headers: &HeaderMap,
    user: &AuthUser,
    draft: &Draft,
) -> Result<Order, OrdersError> {
    let ids: Vec<&str> = draft.lines.iter().map(|(id, _)| id.as_str()).collect();
    let call = traced(
        headers,
        CallOptions::idempotent().timeout(state.catalog_timeout),
    );
    let request = LookupProductsRequest {
        ids: ids.iter().map(|id| (*id).to_string()).collect(),
    };
    let lookup =
        state
            .client
            .grpc(
                ServiceName::Catalog,
                &call,
                request,
                |channel, request| async move {
                    CatalogClient::new(channel).lookup_products(request).await
                },
            )
            .await
            .map_err(|e| match e {
                bazaar_kit::client::ClientError::Timeout { service } => {
                    bazaar_kit::client::ClientError::Unavailable {
                        service,
                        detail: "timed out".into(),
                    }
                }
                other => other,
            })?;
    let known: BTreeMap<String, Product> = lookup
        .products
        .into_iter()
        .filter_map(|p| {
            let id = uuid::Uuid::parse_str(&p.id).ok()?.to_string();
            Some((id, p))
        })
        .collect();
    let unknown: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| !known.contains_key(*id))
        .collect();
    if !unknown.is_empty() {
        return Err(Problem::field(
            "items",
            format!("Unknown product(s): {}.", unknown.join(", ")),
        )
        .into());
    }
    let mut lines = Vec::with_capacity(draft.lines.len());
    let mut currency: Option<&str> = None;
    for (id, quantity) in &draft.lines {
        let p = &known[id];
        if currency.is_some_and(|c| c != p.currency) {
            return Err(Problem::field(
                "items",
                "All products of an order must share one currency.",
            )
            .into());
        }
        currency = Some(&p.currency);
        lines.push(LineRow {
            product_id: id.clone(),
            name: p.name.clone(),
            unit_price_cents: p.price_cents,
            quantity: *quantity,
            line_total_cents: p.price_cents.saturating_mul(*quantity),
        });
    }
    let now = now_rfc3339();
    let row = OrderRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        status: Status::Pending.as_str().into(),
        status_reason: None,
        total_cents: lines.iter().map(|l| l.line_total_cents).sum(),
        currency: currency.unwrap_or("USD").to_string(),
        payment_token: draft.payment_token.clone(),
        shipping_address: serde_json::to_string(&draft.address).map_err(Problem::internal)?,
        compensate: 0,
        attempts: 0,
        charge_attempts: 0,
        created_at: now.clone(),
        updated_at: now,
    };
    Ok(Order { row, lines })
}
