//! Notifications: one email per event over a real SMTP conversation (a
//! sink written for the test), retries with backoff, `failed` with the
//! error kept, duplicate deliveries absorbed, state surviving a restart,
//! and the list API through the gateway. SQLite and PostgreSQL.

mod api;
use crate::common;
pub(crate) mod smtp_sink;
mod through_identity;

use std::time::Duration;

use api::{get_list, list_requires_a_token, list_shows_own_newest_first_and_staff_may_filter};
use bazaar_kit::db::Db;
use bazaar_kit::events::{Bus, Envelope, inbox, outbox};
use bazaar_kit::{Config, ServiceContext, ServiceName};
use bazaar_notifications::store::{self, NotificationRow};
use common::{Store, TestPlatform};
use serde_json::{Value, json};
use smtp_sink::{Mode, SmtpSink};
use through_identity::{
    new_user_sees_welcome_and_others_do_not, order_confirmed_after_checkout,
    registration_sends_one_welcome_email_over_smtp,
};

/// Reloads the test configuration with extra `[notifications]` keys (the
/// kit reads service sections from the layered sources, so they go
/// through a TOML file like an operator's would).
fn with_notifications(config: &mut Config, keys: &str) {
    let path = config.data_dir.join("notifications-test.toml");
    std::fs::write(&path, format!("[notifications]\n{keys}\n")).expect("write toml");
    let mut loaded = Config::load(Some(&path)).expect("config loads");
    loaded.data_dir = config.data_dir.clone();
    loaded.log_level = config.log_level.clone();
    loaded.database_url = config.database_url.clone();
    for name in ServiceName::ALL {
        *loaded.service_mut(name) = config.service(name).clone();
    }
    *config = loaded;
}

fn smtp_keys(sink: &SmtpSink, extra: &str) -> String {
    format!(
        "email_backend = \"smtp\"\nemail_host = \"127.0.0.1\"\nemail_port = {}\n\
         email_timeout_secs = 5\nretry_base_ms = 50\nretry_max_ms = 400\npoll_interval_ms = 50\n{extra}",
        sink.addr.port()
    )
}

async fn platform(store: Store, keys: String) -> Option<TestPlatform> {
    common::start_with(store, move |c| with_notifications(c, &keys)).await
}

/// A second handle on the notifications database of a running platform.
async fn notifications_db(p: &TestPlatform) -> Db {
    let url = p.config.database_url(ServiceName::Notifications);
    Db::connect(
        &url,
        &bazaar_notifications::MIGRATIONS,
        Duration::from_secs(5),
    )
    .await
    .expect("notifications db")
}

/// Publishes `event` as a producer would: through an outbox (here the
/// notifications service's own, whose relay feeds the platform's bus).
async fn publish(db: &Db, event: &Envelope) {
    let mut tx = db.pool().begin().await.expect("tx");
    outbox::enqueue(&mut tx, event).await.expect("enqueue");
    tx.commit().await.expect("commit");
}

fn user_registered(username: &str) -> (String, String, Envelope) {
    let user_id = uuid::Uuid::now_v7().to_string();
    let email = format!("{username}@example.com");
    let event = Envelope::new(
        "user.registered",
        1,
        ServiceName::Identity,
        json!({"user_id": user_id, "username": username, "email": email}),
    );
    (user_id, email, event)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Waits until the event's notification reaches `status`.
async fn wait_status(db: &Db, event_id: &str, status: &str) -> NotificationRow {
    common::eventually(
        20,
        &format!("notification of {event_id} {status}"),
        || async {
            let rows = store::by_event(db, event_id).await.expect("query");
            rows.into_iter().find(|r| r.status == status)
        },
    )
    .await
}

async fn welcome_over_smtp_once_per_event(store: Store) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let Some(p) = platform(store, smtp_keys(&sink, "")).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let (_, ada_email, ada) = user_registered(&unique("ada"));
    let (_, bob_email, bob) = user_registered(&unique("bob"));
    publish(&db, &ada).await;
    publish(&db, &bob).await;
    for (event, email) in [(&ada, &ada_email), (&bob, &bob_email)] {
        let row = wait_status(&db, &event.id, "sent").await;
        assert_eq!(row.kind, "welcome");
        assert_eq!(&row.to_address, email);
        assert!(row.sent_at.is_some());
        assert_eq!(row.attempts, 1);
        // Sent means the server said 250: exactly one message, addressed right.
        let got = sink.messages_to(email);
        assert_eq!(got.len(), 1, "one welcome email for {email}");
        let username = event.data["username"].as_str().expect("username");
        assert_eq!(
            got[0].header("Subject").as_deref(),
            Some(format!("Welcome to Bazaar, {username}!").as_str())
        );
        assert_eq!(got[0].header("To").as_deref(), Some(email.as_str()));
        assert_eq!(got[0].mail_from, "no-reply@bazaar.localhost");
        assert!(got[0].data.contains("multipart/alternative"));
    }
    assert_eq!(sink.messages().len(), 2);
    p.stop().await;
}

async fn refusing_server_is_retried_until_it_accepts(store: Store) {
    let sink = SmtpSink::start(Mode::RefuseFirst(2)).await;
    let Some(p) = platform(store, smtp_keys(&sink, "max_attempts = 5")).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let (_, email, event) = user_registered(&unique("cy"));
    publish(&db, &event).await;
    let row = wait_status(&db, &event.id, "sent").await;
    assert_eq!(row.attempts, 3, "two refusals, then accepted");
    assert_eq!(row.last_error, None);
    assert_eq!(sink.refused(), 2);
    assert_eq!(sink.messages_to(&email).len(), 1, "arrives exactly once");
    p.stop().await;
}

async fn always_refusing_server_ends_failed_with_the_error(store: Store) {
    let sink = SmtpSink::start(Mode::AlwaysRefuse).await;
    let Some(p) = platform(store, smtp_keys(&sink, "max_attempts = 3")).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let (_, _, event) = user_registered(&unique("di"));
    publish(&db, &event).await;
    let row = wait_status(&db, &event.id, "failed").await;
    assert_eq!(row.attempts, 3);
    let error = row.last_error.expect("error kept");
    assert!(
        error.contains("451") || error.contains("Greylisted"),
        "{error}"
    );
    assert_eq!(row.sent_at, None);
    assert_eq!(sink.attempts(), 3, "no attempt beyond max_attempts");
    assert!(sink.messages().is_empty());
    p.stop().await;
}

async fn duplicate_delivery_gives_one_notification_and_one_email(store: Store) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let Some(p) = platform(store, smtp_keys(&sink, "")).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let (_, email, event) = user_registered(&unique("eve"));
    // The same envelope applied twice through the consumer's real path...
    let ctx = ServiceContext::new(
        ServiceName::Notifications,
        p.config.clone(),
        Bus::embedded(),
    );
    let sub = bazaar_notifications::events::handler(&ctx, Default::default())
        .expect("handler")
        .subscription();
    let first = inbox::apply(&db, &sub, &event).await.expect("first");
    let second = inbox::apply(&db, &sub, &event).await.expect("second");
    assert_eq!(first, inbox::Outcome::Applied);
    assert_eq!(second, inbox::Outcome::Duplicate);
    // ...and once more through the bus, as a broker redelivery would.
    publish(&db, &event).await;
    common::eventually(10, "redelivery consumed", || async {
        let published: Option<String> =
            sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                .bind(&event.id)
                .fetch_one(db.pool())
                .await
                .expect("outbox row");
        published.map(|_| ())
    })
    .await;
    wait_status(&db, &event.id, "sent").await;
    assert_eq!(
        store::by_event(&db, &event.id).await.expect("rows").len(),
        1
    );
    assert_eq!(sink.messages_to(&email).len(), 1);
    p.stop().await;
}

async fn order_emails_carry_lines_totals_and_reasons(store: Store) {
    let mailbox = unique("orders-");
    let keys = format!(
        "email_backend = \"memory\"\nmemory_mailbox = \"{mailbox}\"\npoll_interval_ms = 50"
    );
    let Some(p) = platform(store, keys).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let (user_id, email, registered) = user_registered(&unique("flo"));
    publish(&db, &registered).await;
    wait_status(&db, &registered.id, "sent").await;
    let order_id = uuid::Uuid::now_v7().to_string();
    let order = |kind: &str, reason: Value| {
        Envelope::new(
            kind,
            1,
            ServiceName::Orders,
            json!({
                "order_id": order_id, "user_id": user_id, "status": kind.trim_start_matches("order."),
                "status_reason": reason, "total": "21.00", "currency": "USD",
                "items": [
                    {"product_id": "p1", "name": "Earl Grey <loose>", "unit_price": "4.50", "quantity": 2, "line_total": "9.00"},
                    {"product_id": "p2", "name": "Mug", "unit_price": "12.00", "quantity": 1, "line_total": "12.00"}
                ]
            }),
        )
    };
    let rejected = order("order.rejected", json!("payment_declined"));
    publish(&db, &rejected).await;
    let row = wait_status(&db, &rejected.id, "sent").await;
    assert_eq!(row.kind, "order_rejected");
    assert_eq!(row.to_address, email, "address from the local copy");
    assert!(
        row.body_text.contains("your payment was declined"),
        "{}",
        row.body_text
    );
    assert!(
        row.body_text
            .contains("2 x Earl Grey <loose> at 4.50 USD = 9.00 USD")
    );
    assert!(row.body_text.contains("Total: 21.00 USD"));
    assert!(row.body_html.contains("Earl Grey &lt;loose&gt;"));

    let confirmed = order("order.confirmed", Value::Null);
    publish(&db, &confirmed).await;
    let row = wait_status(&db, &confirmed.id, "sent").await;
    assert_eq!(row.kind, "order_confirmed");
    assert!(
        row.subject
            .contains(order_id.split('-').next().expect("ref"))
    );

    let got = bazaar_notifications::email::memory::mailbox(&mailbox);
    assert_eq!(got.len(), 3, "welcome, rejected, confirmed");
    assert!(got.iter().all(|m| m.to == email));
    p.stop().await;
}

async fn pending_emails_survive_a_restart(store: Store) {
    // The first platform's SMTP server keeps answering 451: attempts fail
    // transiently and the notification stays pending.
    let refusing = SmtpSink::start(Mode::AlwaysRefuse).await;
    let own_dir = tempfile::tempdir().expect("tmp");
    let mut db_url = None;
    if store == Store::Sqlite {
        db_url = Some(format!(
            "sqlite://{}/notifications.db",
            own_dir.path().display()
        ));
    }
    let keys = smtp_keys(&refusing, "max_attempts = 1000");
    let url = db_url.clone();
    let Some(p) = common::start_with(store, move |c| {
        with_notifications(c, &keys);
        if let Some(url) = url {
            c.notifications.database_url = Some(bazaar_kit::Secret::new(url));
        }
    })
    .await
    else {
        return;
    };
    let db_url = p.config.database_url(ServiceName::Notifications);
    let db = notifications_db(&p).await;
    let (_, email, event) = user_registered(&unique("gus"));
    publish(&db, &event).await;
    common::eventually(20, "a failed attempt recorded", || async {
        let rows = store::by_event(&db, &event.id).await.expect("rows");
        rows.into_iter()
            .find(|r| r.attempts >= 1 && r.status == "pending" && r.last_error.is_some())
    })
    .await;
    p.stop().await;
    drop(refusing);

    // Restarted against a working server, the same database: it is sent.
    let sink = SmtpSink::start(Mode::Accept).await;
    let keys = smtp_keys(&sink, "");
    let url = db_url.clone();
    let p = common::start_with(store, move |c| {
        with_notifications(c, &keys);
        c.notifications.database_url = Some(bazaar_kit::Secret::new(url));
    })
    .await
    .expect("restarts");
    let row = wait_status(&db, &event.id, "sent").await;
    assert!(row.attempts >= 2);
    assert_eq!(sink.messages_to(&email).len(), 1);
    assert_eq!(
        store::by_event(&db, &event.id).await.expect("rows").len(),
        1
    );
    p.stop().await;
    drop(own_dir);
}

/// A user whose `user.registered` never reached notifications still gets
/// an order's email: the address comes from identity's `GetUser` RPC.
async fn order_email_for_a_user_notifications_never_heard_of(store: Store) {
    let mailbox = unique("directory-");
    let keys = format!(
        "email_backend = \"memory\"\nmemory_mailbox = \"{mailbox}\"\npoll_interval_ms = 50"
    );
    let Some(p) = platform(store, keys).await else {
        return;
    };
    let db = notifications_db(&p).await;
    let user = p.register_and_login(&unique("gus")).await;
    let user_id = user.id.clone();
    // Whatever copy the registration event left is gone, as if the event
    // had been dead-lettered.
    common::eventually(20, "recipient copy", || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recipients WHERE user_id = $1")
            .bind(&user_id)
            .fetch_one(db.pool())
            .await
            .expect("count");
        (n == 1).then_some(())
    })
    .await;
    sqlx::query("DELETE FROM recipients WHERE user_id = $1")
        .bind(&user_id)
        .execute(db.pool())
        .await
        .expect("forget the copy");
    let event = Envelope::new(
        "order.rejected",
        1,
        ServiceName::Orders,
        json!({
            "order_id": uuid::Uuid::now_v7().to_string(), "user_id": user_id,
            "status": "rejected", "status_reason": "out_of_stock", "total": "3.00",
            "currency": "USD", "items": [
                {"product_id": "p1", "name": "Tea", "unit_price": "3.00", "quantity": 1, "line_total": "3.00"}
            ]
        }),
    );
    publish(&db, &event).await;
    let row = wait_status(&db, &event.id, "sent").await;
    assert_eq!(
        row.to_address,
        format!("{}@example.com", user.username),
        "address from identity"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recipients WHERE user_id = $1")
        .bind(&user_id)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(n, 1, "identity's answer is kept as the local copy");
    p.stop().await;
}

bazaar_kit::both_stores!(Store { sqlite: Sqlite, postgres: Postgres }; [
    welcome_over_smtp_once_per_event,
    refusing_server_is_retried_until_it_accepts,
    always_refusing_server_ends_failed_with_the_error,
    duplicate_delivery_gives_one_notification_and_one_email,
    order_emails_carry_lines_totals_and_reasons,
    pending_emails_survive_a_restart,
    list_requires_a_token,
    list_shows_own_newest_first_and_staff_may_filter,
    registration_sends_one_welcome_email_over_smtp,
    new_user_sees_welcome_and_others_do_not,
    order_confirmed_after_checkout,
    order_email_for_a_user_notifications_never_heard_of,
]);

// Exactly-once emails over the Redis Streams broker.
bazaar_kit::both_stores!(Store { postgres_redis: PostgresRedis }; [
    welcome_over_smtp_once_per_event,
    duplicate_delivery_gives_one_notification_and_one_email,
    order_confirmed_after_checkout,
]);
