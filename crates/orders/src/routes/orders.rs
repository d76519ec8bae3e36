//! Reading and cancelling orders.

use axum::extract::{Path, State};
use bazaar_kit::Problem;
use bazaar_kit::auth::AuthUser;
use bazaar_kit::extract::{Json, Query};
use bazaar_kit::pagination::{Page, PageRequest};
use serde::Deserialize;

use super::view::OrderView;
use super::visible;
use crate::AppState;
use crate::domain::Status;
use crate::error::OrdersError;
use crate::store::{self, Transition};

/// `?user=` (staff only) and `?status=` filters; a status that is not one
/// of [`Status`] is a 400 naming `status`.
#[derive(Deserialize)]
pub struct ListQuery {
    user: Option<String>,
    status: Option<Status>,
}

/// `GET /api/v1/orders/`: the caller's orders, newest first; staff see
/// everyone's, or one user's with `?user=`.
#[utoipa::path(get, path = "/api/v1/orders/", operation_id = "list_orders", tag = "orders",
    params(("user" = Option<String>, Query, description = "staff only: one user's orders (ignored for others)"),
           ("status" = Option<Status>, Query, description = "only orders in this status"),
           ("page" = Option<u64>, Query, description = "page number (or `last`)"),
           ("page_size" = Option<u64>, Query, description = "items per page (default 20, max 100)")),
    responses((status = 200, description = "a page of orders, newest first (no `history`)", body = Page<OrderView>),
              (status = 400, description = "a bad `status`, `page` or `page_size`"),
              (status = 401, description = "no or bad token"),
              (status = 404, description = "no such page")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    mut pr: PageRequest,
) -> Result<Json<Page<OrderView>>, OrdersError> {
    let owner = if user.is_staff {
        q.user.filter(|u| !u.is_empty())
    } else {
        Some(user.id.clone())
    };
    let status = q.status.map(|s| s.as_str());
    let (count, _) = store::list(&state.db, owner.as_deref(), status, 0, 0).await?;
    pr.resolve(count as u64)?;
    let (count, orders) =
        store::list(&state.db, owner.as_deref(), status, pr.limit(), pr.offset()).await?;
    let views = orders.iter().map(|o| OrderView::new(o, None)).collect();
    Ok(Json(pr.page(count as u64, views)))
}

/// `GET /api/v1/orders/{id}/`, with its history.
#[utoipa::path(get, path = "/api/v1/orders/{id}/", operation_id = "get_order", tag = "orders",
    params(("id" = String, Path, description = "order id (UUID)")),
    responses((status = 200, description = "the order with its `history`", body = OrderView),
              (status = 401, description = "no or bad token"),
              (status = 404, description = "no such order, or another user's")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn detail(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, OrdersError> {
    let order = visible(&state, &user, &id).await?;
    let history = store::history_of(&state.db, &id).await?;
    Ok(Json(OrderView::new(&order, Some(history))))
}

/// `POST /api/v1/orders/{id}/cancel/`: a pending, paying or confirmed order
/// becomes `cancelled`; its payment is refunded and its stock released
/// (now, or by the saga timer if an upstream is down). 409 when final.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel/", operation_id = "cancel_order", tag = "orders",
    params(("id" = String, Path, description = "order id (UUID)")),
    responses((status = 200, description = "cancelled; the order with its `history`", body = OrderView),
              (status = 401, description = "no or bad token"),
              (status = 404, description = "no such order, or another user's"),
              (status = 409, description = "already rejected or cancelled")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<OrderView>, OrdersError> {
    let order = visible(&state, &user, &id).await?;
    if !order.status().cancellable() {
        return Err(Problem::conflict(format!(
            "The order is already {}.",
            order.status().as_str()
        ))
        .into());
    }
    let reason = if order.row.user_id == user.id {
        "cancelled_by_customer"
    } else {
        "cancelled_by_staff"
    };
    let t = Transition {
        from: &[Status::Pending, Status::AwaitingPayment, Status::Confirmed],
        to: Status::Cancelled,
        reason: Some(reason),
        compensate: true,
        publish: true,
    };
    if state.saga.apply(&order, &t).await?.is_none() {
        let now = store::get(&state.db, &id)
            .await?
            .map(|o| o.status().as_str());
        return Err(Problem::conflict(format!(
            "The order is already {}.",
            now.unwrap_or_default()
        ))
        .into());
    }
    // The cancellation is committed (with `compensate` set): from here the
    // refund and release are saga steps like any other. Run them now, in a
    // task a dropped request cannot stop, and answer within 3 s whatever
    // they have reached; the timer finishes what is left.
    state
        .saga
        .drive_detached(&id, std::time::Duration::from_secs(3))
        .await;
    let order = store::get(&state.db, &id)
        .await?
        .ok_or_else(Problem::not_found)?;
    let history = store::history_of(&state.db, &id).await?;
    Ok(Json(OrderView::new(&order, Some(history))))
}
