//! What this service consumes: `user.registered` and the final order
//! events. Each handler renders the email and records a pending
//! notification through the kit's transaction, so the notification and the
//! inbox row commit together: a redelivered event finds its inbox row and
//! creates nothing.

mod contracts;
pub mod directory;

use std::sync::Arc;

use bazaar_kit::client::ServiceClient;
use bazaar_kit::events::{Envelope, Handler, HandlerError, Subscription};
use bazaar_kit::{ServiceContext, ServiceName};
use futures::future::BoxFuture;
use sqlx::AnyConnection;

use self::directory::Directory;
use crate::domain::render::{LineContext, OrderContext, Templates, WelcomeContext};
use crate::domain::{Kind, Rendered, reason_in_words};
use crate::store::{self, NewNotification, Recipient};
use contracts::{OrderEvent, UserRegistered};

/// The consumer name (inbox key, broker queue).
pub const CONSUMER: &str = "notifications";

/// Event types this service publishes: none.
pub const PUBLISHED: &[&str] = &[];

/// Event types this service consumes.
pub const TYPES: &[&str] = &[
    "user.registered",
    "order.confirmed",
    "order.rejected",
    "order.cancelled",
];

/// The event handler of this service, for `Service::with_events` (and for
/// tests that apply an event by hand through the kit's inbox): it asks
/// identity for users it has no copy of and wakes the sender through `wake`.
pub fn handler(
    ctx: &ServiceContext,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<NotificationHandler> {
    let templates = Templates::load().map_err(|e| anyhow::anyhow!("email templates: {e}"))?;
    let identity = ServiceClient::new(ServiceName::Notifications, ctx.config.clone());
    Ok(NotificationHandler::new(
        Arc::new(templates),
        Directory::new(identity),
        wake,
    ))
}

/// Turns events into pending notifications.
#[derive(Clone)]
pub struct NotificationHandler {
    templates: Arc<Templates>,
    directory: Directory,
    wake: Arc<tokio::sync::Notify>,
}

impl NotificationHandler {
    /// A handler rendering with `templates`, asking `directory` for users
    /// it has no address of, and waking the sender through `wake`.
    pub fn new(
        templates: Arc<Templates>,
        directory: Directory,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            templates,
            directory,
            wake,
        }
    }

    /// The subscription to hand to `Service::with_events`.
    pub fn subscription(self) -> Subscription {
        Subscription::new(CONSUMER, TYPES, self)
    }

    fn render(&self, kind: Kind, ctx: &impl serde::Serialize) -> Result<Rendered, HandlerError> {
        self.templates
            .render(kind, ctx)
            .map_err(|e| HandlerError::new(format!("template {}: {e}", kind.as_str())))
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.id))]
    async fn welcome(&self, event: &Envelope, tx: &mut AnyConnection) -> Result<(), HandlerError> {
        let data: UserRegistered = event.data_as()?;
        let recipient = Recipient {
            username: data.username,
            email: data.email,
        };
        store::upsert_recipient(tx, &data.user_id, &recipient).await?;
        let email = self.render(
            Kind::Welcome,
            &WelcomeContext {
                username: recipient.username.clone(),
            },
        )?;
        self.record(
            tx,
            event,
            Kind::Welcome,
            &data.user_id,
            &recipient.email,
            &email,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.id, kind = kind.as_str()))]
    async fn order(
        &self,
        event: &Envelope,
        kind: Kind,
        tx: &mut AnyConnection,
    ) -> Result<(), HandlerError> {
        let data: OrderEvent = event.data_as()?;
        let known = match store::recipient(tx, &data.user_id).await? {
            Some(r) => Some(r),
            None => {
                let found = self.directory.lookup(&data.user_id).await?;
                if let Some(r) = &found {
                    store::upsert_recipient(tx, &data.user_id, r).await?;
                }
                found
            }
        };
        // The order's own email (when orders sends one) wins: it is the
        // freshest; otherwise the local copy or identity's answer.
        let to = match (
            data.email.as_deref().filter(|e| !e.trim().is_empty()),
            &known,
        ) {
            (Some(email), _) => email.to_string(),
            (None, Some(r)) => r.email.clone(),
            (None, None) => {
                return Err(HandlerError::new(format!(
                    "no email address known for user {}",
                    data.user_id
                )));
            }
        };
        let username = known.map_or_else(|| "there".to_string(), |r| r.username);
        let ctx = OrderContext {
            username,
            order_ref: data
                .order_id
                .split('-')
                .next()
                .unwrap_or_default()
                .to_string(),
            order_id: data.order_id.clone(),
            reason: reason_in_words(data.status_reason.as_deref()),
            lines: data
                .items
                .iter()
                .map(|l| LineContext {
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price.to_string(),
                    line_total: l.line_total.to_string(),
                })
                .collect(),
            total: data.total.to_string(),
            currency: data.currency.clone(),
        };
        let email = self.render(kind, &ctx)?;
        self.record(tx, event, kind, &data.user_id, &to, &email)
            .await
    }

    async fn record(
        &self,
        tx: &mut AnyConnection,
        event: &Envelope,
        kind: Kind,
        user_id: &str,
        to: &str,
        email: &Rendered,
    ) -> Result<(), HandlerError> {
        let new = NewNotification {
            event_id: &event.id,
            kind,
            user_id,
            to,
            email,
        };
        match store::insert(tx, &new).await? {
            Some(id) => tracing::info!(notification_id = %id, "notification recorded"),
            None => tracing::info!("notification already recorded for this event"),
        }
        self.wake.notify_one();
        Ok(())
    }
}

impl Handler for NotificationHandler {
    fn handle<'a>(
        &'a self,
        event: &'a Envelope,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match Kind::for_event(&event.event_type) {
                Some(Kind::Welcome) => self.welcome(event, tx).await,
                Some(kind) => self.order(event, kind, tx).await,
                None => Ok(()),
            }
        })
    }
}
