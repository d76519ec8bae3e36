//! Metrics: after checkouts, every service's metrics port serves only that
//! service's series (plus the process's), every family has its `# HELP`,
//! the saga's series are there, and `promtool check metrics` finds nothing
//! to say (promtool is required in CI, skipped elsewhere when missing).

use bazaar_kit::ServiceName;
use bazaar_kit::testing::{eventually, in_ci};

use crate::common::Store;
use crate::orders::shop::Shop;

/// Series any port may serve: the process's own.
fn process_wide(family: &str) -> bool {
    family.starts_with("process_") || family == "bazaar_build_info"
}

/// The family a sample line belongs to (histogram and summary suffixes
/// stripped).
fn family_of(sample: &str) -> &str {
    let name = sample.split(['{', ' ']).next().unwrap_or_default();
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Checks one port's exposition: HELP before every TYPE, only `service`'s
/// series, and the process's series.
fn check_exposition(service: &str, text: &str) {
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let family = rest.split(' ').next().unwrap_or_default();
            assert!(helped.insert(family), "{service}: {family} twice");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap_or_default();
            assert!(helped.contains(family), "{service}: no HELP for {family}");
            typed.insert(family);
        } else if !line.is_empty() {
            let family = family_of(line);
            assert!(typed.contains(family), "{service}: untyped sample {line}");
            if process_wide(family) {
                continue;
            }
            let own = format!("service=\"{service}\"");
            assert!(
                line.contains(&own),
                "{service}'s port serves another's (or an unlabelled) series: {line}"
            );
        }
    }
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "bazaar_build_info",
        "http_requests_total",
    ] {
        assert!(typed.contains(family), "{service}: no {family}\n{text}");
    }
}

/// `promtool check metrics` on `text`; `false` when promtool is missing
/// outside CI.
fn promtool_check(service: &str, text: &str) -> bool {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(!in_ci(), "promtool is required in CI: {e}");
            eprintln!("promtool missing: lint skipped");
            return false;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics on {service}'s port:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

async fn metrics_per_port(store: Store) {
    let Some(s) = Shop::start(store).await else {
        return;
    };
    let product = s.product("3.00", 2).await;
    let u = s.user();
    let ok = s.order(&u, &[(&product, 1)], "tok_visa").await;
    let declined = s.order(&u, &[(&product, 1)], "tok_chargeDeclined").await;
    let out_of_stock = s.order(&u, &[(&product, 5)], "tok_visa").await;
    for (order, status) in [
        (&ok, "confirmed"),
        (&declined, "rejected"),
        (&out_of_stock, "rejected"),
    ] {
        let id = order["id"].as_str().expect("id");
        assert_eq!(s.final_order(&u.token, id).await["status"], status);
    }

    let scrape = |name: ServiceName| {
        let url = match name {
            ServiceName::Gateway => s.p.admin_url("/metrics"),
            _ => format!("{}/metrics", s.p.service_url(name)),
        };
        let http = s.p.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await
                .expect("text")
        }
    };
    // The gauges of orders under way are refreshed every few seconds.
    let orders = eventually(20, "orders_in_saga", || async {
        let text = scrape(ServiceName::Orders).await;
        text.contains("orders_in_saga{").then_some(text)
    })
    .await;
    for wanted in [
        r#"orders_finished_total{service="orders",status="confirmed",reason="none"}"#,
        r#"orders_finished_total{service="orders",status="rejected",reason="payment_declined"}"#,
        r#"orders_finished_total{service="orders",status="rejected",reason="out_of_stock"}"#,
        "orders_saga_lifetime_seconds_bucket{",
        "orders_saga_oldest_age_seconds{",
    ] {
        assert!(orders.contains(wanted), "orders: no {wanted}\n{orders}");
    }

    let mut linted = 0;
    for name in ServiceName::ALL {
        // Every service has answered at least this.
        let health = match name {
            ServiceName::Gateway => s.p.url("/healthz"),
            _ => format!("{}/healthz", s.p.service_url(name)),
        };
        s.p.http.get(health).send().await.expect("healthz");
        let text = scrape(name).await;
        check_exposition(name.as_str(), &text);
        if promtool_check(name.as_str(), &text) {
            linted += 1;
        }
    }
    let gateway = scrape(ServiceName::Gateway).await;
    assert!(gateway.contains("gateway_upstream_duration_seconds_bucket{"));
    eprintln!("{linted} port(s) linted by promtool");
    s.p.stop().await;
}

bazaar_kit::both_stores!(Store { sqlite: Sqlite, postgres: Postgres }; [metrics_per_port]);
