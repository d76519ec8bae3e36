//! `GET /api/v1/orders/{id}/events/`: the order's status as Server-Sent
//! Events — the current one first, then each change live, closing after a
//! final status. Fed by this instance's own status changes, with a slow
//! database poll as a safety net (changes made by another instance).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use bazaar_kit::Db;
use bazaar_kit::auth::AuthUser;
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast;

use super::visible;
use crate::AppState;
use crate::domain::Status;
use crate::error::OrdersError;
use crate::store::{self, Change};

struct Feed {
    db: Db,
    id: String,
    rx: broadcast::Receiver<Change>,
    first: Option<Change>,
    last: Option<Status>,
    done: bool,
    poll: tokio::time::Interval,
}

/// One Server-Sent Event of the stream, as documented.
#[derive(utoipa::ToSchema)]
#[schema(as = OrderStatusEvent)]
#[allow(dead_code)]
pub struct StatusEvent {
    /// Always `status`.
    #[schema(schema_with = event_name_schema)]
    event: String,
    /// JSON text: `{order_id, status, reason, at}`.
    #[schema(content_media_type = "application/json")]
    data: String,
}

fn event_name_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["status"]))
        .build()
}

/// Streams the order's status changes (owner or staff; others get 404).
#[utoipa::path(get, path = "/api/v1/orders/{id}/events/", operation_id = "order_events", tag = "orders",
    params(("id" = String, Path, description = "order id (UUID)")),
    responses((status = 200, content_type = "text/event-stream", body = StatusEvent,
        description = "Server-Sent Events named `status`, the current status first, then one per change, \
            closing after a final one; `data` is JSON `{order_id, status, reason, at}`"),
              (status = 401, description = "no or bad token"),
              (status = 404, description = "no such order, or another user's")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, OrdersError> {
    // Subscribe before reading, so no change slips between the two.
    let rx = state.changes.subscribe();
    let order = visible(&state, &user, &id).await?;
    let first = Change {
        order_id: id.clone(),
        status: order.status(),
        reason: order.row.status_reason.clone(),
        at: order.row.updated_at.clone(),
    };
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        db: state.db.clone(),
        id,
        rx,
        first: Some(first),
        last: None,
        done: false,
        poll,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let change = next(&mut feed).await?;
        feed.last = Some(change.status);
        feed.done = change.status.is_final();
        Some((Ok(event(&change)), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn event(c: &Change) -> Event {
    let data = json!({"order_id": c.order_id, "status": c.status.as_str(), "reason": c.reason, "at": c.at});
    Event::default().event("status").data(data.to_string())
}

/// The next change to send, or `None` to close the stream.
async fn next(feed: &mut Feed) -> Option<Change> {
    if feed.done {
        return None;
    }
    if let Some(first) = feed.first.take() {
        return Some(first);
    }
    loop {
        let polled = tokio::select! {
            received = feed.rx.recv() => match received {
                Ok(c) if c.order_id == feed.id => {
                    if Some(c.status) != feed.last {
                        return Some(c);
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => true,
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = feed.poll.tick() => true,
        };
        if polled
            && let Ok(Some(order)) = store::get(&feed.db, &feed.id).await
            && Some(order.status()) != feed.last
        {
            return Some(Change {
                order_id: feed.id.clone(),
                status: order.status(),
                reason: order.row.status_reason.clone(),
                at: order.row.updated_at.clone(),
            });
        }
    }
}
