//! Catalog end to end, through the gateway as a client sees it (and the
//! internal gRPC reservation API straight at the catalog, as orders calls it):
//! every filter, ordering and pagination edge, validation errors,
//! permissions, the read cache, and stock that is never oversold — on
//! SQLite and PostgreSQL.

use crate::common;
use crate::tokens;

use bazaar_kit::ServiceName;
use common::{Store, TestPlatform};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokens::Issuer;

struct Ctx {
    p: TestPlatform,
    staff: String,
    user: String,
    orders: String,
    issuer: Issuer,
}

async fn start(store: Store) -> Option<Ctx> {
    let issuer = Issuer::start().await;
    let url = issuer.url.clone();
    let p = common::start_with(store, move |c| c.identity.url = Some(url)).await?;
    Some(Ctx {
        staff: issuer.user("admin", true),
        user: issuer.user("shopper", false),
        orders: issuer.service("orders", "catalog:read catalog:reserve payments:charge"),
        issuer,
        p,
    })
}

impl Ctx {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.p.url(path)
        };
        let mut req = self.p.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    async fn post_staff(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(&self.staff), Some(body))
            .await
    }

    async fn category(&self, name: &str, slug: &str) {
        let (s, b) = self
            .post_staff("/api/v1/categories/", json!({"name": name, "slug": slug}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    async fn product(
        &self,
        sku: &str,
        name: &str,
        desc: &str,
        price: &str,
        cat: &str,
        stock: i64,
    ) -> Value {
        let (s, b) = self
            .post_staff(
                "/api/v1/products/",
                json!({"sku": sku, "name": name, "description": desc, "price": price,
                       "category": cat, "stock": stock}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// Calls catalog's internal gRPC API as orders does, given the call as
    /// the contract's operations (`/internal/...`-style names kept as
    /// labels), and answers in the shape the assertions read: an HTTP-like
    /// status (200, 409 for a rejected reservation, 401/403/400 for the
    /// gRPC codes) and the answer as JSON (field errors from the status's
    /// `google.rpc.BadRequest` details).
    async fn internal_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        use bazaar_proto::catalog::v1 as pb;
        use tonic_types::StatusExt as _;
        let url = self.p.config.grpc_urls(ServiceName::Catalog).remove(0);
        let channel = tonic::transport::Channel::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("catalog's internal port");
        let mut client = pb::catalog_client::CatalogClient::new(channel);
        fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            if let Some(t) = token {
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {t}").parse().expect("meta"),
                );
            }
            request
        }
        let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let answer: Result<(StatusCode, Value), tonic::Status> = match path {
            "/internal/products/lookup" => {
                let ids = body["ids"]
                    .as_array()
                    .map(|a| a.iter().map(str_of).collect())
                    .unwrap_or_default();
                client
                    .lookup_products(request(pb::LookupProductsRequest { ids }, token))
                    .await
                    .map(|r| {
                        let products: Vec<Value> = r
                            .into_inner()
                            .products
                            .into_iter()
                            .map(|p| json!({"id": p.id, "sku": p.sku, "name": p.name, "price": p.price,
                                            "price_cents": p.price_cents, "currency": p.currency, "stock": p.stock}))
                            .collect();
                        (StatusCode::OK, json!({ "products": products }))
                    })
            }
            "/internal/reservations" => {
                let items = body["items"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|l| pb::ReserveLine {
                                product_id: str_of(&l["product_id"]),
                                quantity: l["quantity"].as_i64().unwrap_or_default(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let message = pb::ReserveRequest {
                    order_id: str_of(&body["order_id"]),
                    items,
                };
                client.reserve(request(message, token)).await.map(|r| {
                    let r = r.into_inner();
                    match r.status() {
                        pb::reserve_response::Status::Reserved => (
                            StatusCode::OK,
                            json!({"order_id": r.order_id, "status": "reserved"}),
                        ),
                        _ => (
                            StatusCode::CONFLICT,
                            json!({"order_id": r.order_id, "status": "rejected",
                                   "reason": r.reason, "product_ids": r.product_ids}),
                        ),
                    }
                })
            }
            other => {
                let rest = other
                    .strip_prefix("/internal/reservations/")
                    .expect("a reservation path");
                let (order_id, action) = rest.split_once('/').expect("id/action");
                let message = pb::ReservationRef {
                    order_id: order_id.to_string(),
                };
                let answer = match action {
                    "commit" => client.commit(request(message, token)).await,
                    "release" => client.release(request(message, token)).await,
                    _ => panic!("unknown action {action}"),
                };
                answer.map(|r| {
                    let r = r.into_inner();
                    (
                        StatusCode::OK,
                        json!({"order_id": r.order_id, "status": r.status}),
                    )
                })
            }
        };
        match answer {
            Ok(ok) => ok,
            Err(status) => {
                let code = match status.code() {
                    tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                    tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                    tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                    tonic::Code::NotFound => StatusCode::NOT_FOUND,
                    tonic::Code::Aborted => StatusCode::CONFLICT,
                    other => panic!("{path}: unexpected {other:?}: {status:?}"),
                };
                let mut errors = serde_json::Map::new();
                if let Some(bad) = status.get_details_bad_request() {
                    for v in bad.field_violations {
                        errors.insert(v.field, json!([v.description]));
                    }
                }
                (
                    code,
                    json!({"status": code.as_u16(), "detail": status.message(), "errors": errors}),
                )
            }
        }
    }
}

fn skus(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| p["sku"].as_str().expect("sku").to_string())
        .collect()
}

fn assert_field_error(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
    assert_eq!(body["status"], 400, "{body}");
    assert!(
        body["errors"][field]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "expected errors.{field} in {body}"
    );
}

async fn crud_validation_and_permissions(c: &Ctx) {
    use reqwest::Method as M;
    // Categories: public list, staff-only create.
    let cat = json!({"name": "Tea", "slug": "tea"});
    let (s, b) = c
        .send(M::POST, "/api/v1/categories/", None, Some(cat.clone()))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, _) = c
        .send(
            M::POST,
            "/api/v1/categories/",
            Some(&c.user),
            Some(cat.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = c.post_staff("/api/v1/categories/", cat.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (b["name"].as_str(), b["slug"].as_str()),
        (Some("Tea"), Some("tea"))
    );
    let (s, b) = c.post_staff("/api/v1/categories/", cat).await;
    assert_field_error(s, &b, "slug");
    let (s, b) = c
        .post_staff("/api/v1/categories/", json!({"name": "Home & Garden"}))
        .await;
    assert_eq!(
        (s, b["slug"].as_str()),
        (StatusCode::CREATED, Some("home-garden"))
    );
    let (s, b) = c
        .post_staff("/api/v1/categories/", json!({"slug": "x"}))
        .await;
    assert_field_error(s, &b, "name");
    let (s, b) = c.get("/api/v1/categories/").await;
    assert_eq!((s, b["count"].as_u64()), (StatusCode::OK, Some(2)));

    // Products: 401 without a token (with the Bearer challenge), 403 for users.
    let body =
        json!({"sku": "TEA-1", "name": "Oolong", "price": "19.99", "category": "tea", "stock": 3});
    let r =
        c.p.http
            .post(c.p.url("/api/v1/products/"))
            .json(&body)
            .send()
            .await
            .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (s, _) = c
        .send(
            M::POST,
            "/api/v1/products/",
            Some("not-a-jwt"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = c
        .send(
            M::POST,
            "/api/v1/products/",
            Some(&c.orders),
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a service token is not a user token"
    );
    let (s, b) = c
        .send(
            M::POST,
            "/api/v1/products/",
            Some(&c.user),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");

    let (s, created) = c.post_staff("/api/v1/products/", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let keys: Vec<&str> = created
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "category",
            "created_at",
            "currency",
            "description",
            "id",
            "name",
            "price",
            "sku",
            "stock",
            "updated_at"
        ]
    );
    assert_eq!(created["price"], "19.99");
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["category"], "tea");
    assert_eq!(created["stock"], 3);
    assert_eq!(created["description"], "");
    let (s, detail) = c.get(&format!("/api/v1/products/{id}/")).await;
    assert_eq!((s, &detail), (StatusCode::OK, &created));
    let (s, b) = c.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(
        (s, b["id"].as_str()),
        (StatusCode::OK, Some(id.as_str())),
        "no trailing slash works too"
    );
    let (s, b) = c
        .get("/api/v1/products/0190b5a0-0000-7000-8000-000000000000/")
        .await;
    assert_eq!(
        (s, b["status"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );

    // Validation: every rule names its field.
    let mk = |patch: Value| {
        let mut b = json!({"sku": "TEA-2", "name": "Sencha", "price": "5.00", "category": "tea", "stock": 1});
        for (k, v) in patch.as_object().expect("patch") {
            b[k] = v.clone();
        }
        b
    };
    for (patch, field) in [
        (json!({"sku": "TEA-1"}), "sku"),
        (json!({"sku": "bad sku"}), "sku"),
        (json!({"price": "1.999"}), "price"),
        (json!({"price": "0"}), "price"),
        (json!({"price": "0.00"}), "price"),
        (json!({"price": "-5.00"}), "price"),
        (json!({"price": "abc"}), "price"),
        (json!({"price": true}), "price"),
        (json!({"stock": -1}), "stock"),
        (json!({"stock": "many"}), "stock"),
        (json!({"category": "nope"}), "category"),
        (json!({"name": ""}), "name"),
        (json!({"currency": "EUR"}), "currency"),
    ] {
        let (s, b) = c.post_staff("/api/v1/products/", mk(patch.clone())).await;
        assert_field_error(s, &b, field);
    }
    let (s, b) = c.post_staff("/api/v1/products/", json!({})).await;
    for f in ["sku", "name", "price", "category"] {
        assert_field_error(s, &b, f);
    }
    // A price as a JSON number is accepted, as DRF's DecimalField does.
    let (s, b) = c
        .post_staff("/api/v1/products/", mk(json!({"price": 5.5})))
        .await;
    assert_eq!(
        (s, b["price"].as_str()),
        (StatusCode::CREATED, Some("5.50")),
        "{b}"
    );

    // Writes are visible at once, even with the cache warm (no stale read).
    let path = format!("/api/v1/products/{id}/");
    for _ in 0..2 {
        assert_eq!(c.get(&path).await.1["price"], "19.99");
        assert_eq!(
            c.get("/api/v1/products/?category=tea&ordering=price")
                .await
                .1["results"][1]["price"],
            "19.99"
        );
    }
    for (method, token, expect) in [
        (M::PATCH, None, StatusCode::UNAUTHORIZED),
        (M::PATCH, Some(&c.user), StatusCode::FORBIDDEN),
        (M::PUT, None, StatusCode::UNAUTHORIZED),
        (M::PUT, Some(&c.user), StatusCode::FORBIDDEN),
        (M::DELETE, None, StatusCode::UNAUTHORIZED),
        (M::DELETE, Some(&c.user), StatusCode::FORBIDDEN),
    ] {
        let (s, _) = c
            .send(
                method.clone(),
                &path,
                token.map(String::as_str),
                Some(json!({"price": "1.00"})),
            )
            .await;
        assert_eq!(s, expect, "{method} {token:?}");
    }
    let (s, b) = c
        .send(
            M::PATCH,
            &path,
            Some(&c.staff),
            Some(json!({"price": "24.50", "stock": 7})),
        )
        .await;
    assert_eq!(
        (s, b["price"].as_str(), b["stock"].as_i64()),
        (StatusCode::OK, Some("24.50"), Some(7)),
        "{b}"
    );
    assert_eq!(b["name"], "Oolong", "PATCH leaves other fields alone");
    assert_eq!(c.get(&path).await.1["price"], "24.50");
    assert_eq!(
        c.get("/api/v1/products/?category=tea&ordering=price")
            .await
            .1["results"][1]["price"],
        "24.50"
    );
    let (s, b) = c
        .send(
            M::PATCH,
            &path,
            Some(&c.staff),
            Some(json!({"price": "1.001"})),
        )
        .await;
    assert_field_error(s, &b, "price");
    let (s, b) = c
        .send(
            M::PATCH,
            &path,
            Some(&c.staff),
            Some(json!({"sku": "TEA-2"})),
        )
        .await;
    assert_field_error(s, &b, "sku");
    // PUT replaces: required fields must all be there.
    let (s, b) = c
        .send(
            M::PUT,
            &path,
            Some(&c.staff),
            Some(json!({"name": "Only a name"})),
        )
        .await;
    assert_field_error(s, &b, "sku");
    let full = json!({"sku": "TEA-1", "name": "Oolong Supreme", "description": "Roasted.", "price": "30", "category": "tea", "stock": 2});
    let (s, b) = c.send(M::PUT, &path, Some(&c.staff), Some(full)).await;
    assert_eq!(
        (s, b["name"].as_str(), b["price"].as_str()),
        (StatusCode::OK, Some("Oolong Supreme"), Some("30.00")),
        "{b}"
    );
    assert_eq!(c.get(&path).await.1["name"], "Oolong Supreme");
    let (s, _) = c
        .send(
            M::PATCH,
            "/api/v1/products/missing/",
            Some(&c.staff),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // DELETE.
    let (s, b) = c.send(M::DELETE, &path, Some(&c.staff), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(c.get(&path).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        c.send(M::DELETE, &path, Some(&c.staff), None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn filters_orderings_pagination(c: &Ctx) {
    c.category("Coffee", "coffee").await;
    c.category("Cups", "cups").await;
    let rows = [
        (
            "C-1",
            "Arabica Beans",
            "Fruity single origin from Ethiopia.",
            "12.00",
            "coffee",
            10,
        ),
        (
            "C-2",
            "Robusta Beans",
            "Strong and earthy.",
            "8.50",
            "coffee",
            0,
        ),
        (
            "C-3",
            "Decaf Beans",
            "Swiss water process, smooth.",
            "15.00",
            "coffee",
            4,
        ),
        (
            "U-1",
            "Espresso Cup",
            "Porcelain, holds a double shot.",
            "6.00",
            "cups",
            20,
        ),
        (
            "U-2",
            "Travel Mug",
            "Keeps coffee hot for hours.",
            "22.00",
            "cups",
            0,
        ),
    ];
    for (sku, name, desc, price, cat, stock) in rows {
        c.product(sku, name, desc, price, cat, stock).await;
    }
    let list = |q: &str| format!("/api/v1/products/?{q}");
    let check = |q: &'static str, expect: &'static [&'static str]| async move {
        let (s, b) = c.get(&list(q)).await;
        assert_eq!(s, StatusCode::OK, "{q}: {b}");
        assert_eq!(skus(&b), expect, "{q}");
        assert_eq!(b["count"].as_u64(), Some(expect.len() as u64), "{q}");
    };
    // Each filter alone, then combined.
    check("category=coffee&ordering=price", &["C-2", "C-1", "C-3"]).await;
    check("category=cups&ordering=price", &["U-1", "U-2"]).await;
    check("search=beans&ordering=name", &["C-1", "C-3", "C-2"]).await;
    check("search=BEAN&ordering=name", &["C-1", "C-3", "C-2"]).await;
    check("search=coffee&ordering=name", &["U-2"]).await; // description
    check("search=smooth%20decaf", &["C-3"]).await;
    check("search=nothing-like-this", &[]).await;
    check("min_price=12&ordering=price", &["C-1", "C-3", "U-2"]).await;
    check("max_price=12.00&ordering=price", &["U-1", "C-2", "C-1"]).await;
    check("min_price=8.5&max_price=12&ordering=price", &["C-2", "C-1"]).await;
    check("in_stock=true&ordering=price", &["U-1", "C-1", "C-3"]).await;
    check("in_stock=false&ordering=price", &["C-2", "U-2"]).await;
    check(
        "category=coffee&in_stock=true&max_price=13&search=beans",
        &["C-1"],
    )
    .await;
    // Every ordering.
    check("ordering=price", &["U-1", "C-2", "C-1", "C-3", "U-2"]).await;
    check("ordering=-price", &["U-2", "C-3", "C-1", "C-2", "U-1"]).await;
    check("ordering=name", &["C-1", "C-3", "U-1", "C-2", "U-2"]).await;
    check("ordering=-name", &["U-2", "C-2", "U-1", "C-3", "C-1"]).await;
    check("ordering=created_at", &["C-1", "C-2", "C-3", "U-1", "U-2"]).await;
    check("ordering=-created_at", &["U-2", "U-1", "C-3", "C-2", "C-1"]).await;
    check("", &["U-2", "U-1", "C-3", "C-2", "C-1"]).await; // default: newest first

    // Invalid filter values: 400 naming the parameter.
    for (q, field) in [
        ("min_price=abc", "min_price"),
        ("max_price=1.234", "max_price"),
        ("min_price=-1", "min_price"),
        ("in_stock=maybe", "in_stock"),
        ("ordering=stock", "ordering"),
        ("ordering=-sku", "ordering"),
        ("category=no-such-category", "category"),
        ("min_price=20&max_price=10", "min_price"),
    ] {
        let (s, b) = c.get(&list(q)).await;
        assert_field_error(s, &b, field);
        assert_eq!(b["instance"], "/api/v1/products/", "{b}");
    }

    // Pagination: links are absolute, keep the filters, and stop at the ends.
    let (s, b) = c.get(&list("ordering=price&page_size=2")).await;
    assert_eq!((s, b["count"].as_u64()), (StatusCode::OK, Some(5)));
    assert_eq!(skus(&b), ["U-1", "C-2"]);
    assert_eq!(b["previous"], Value::Null);
    let next = b["next"].as_str().expect("next").to_string();
    assert!(
        next.starts_with("http://") && next.contains("page=2") && next.contains("ordering=price"),
        "{next}"
    );
    let (_, b2) = c.get(&next).await;
    assert_eq!(skus(&b2), ["C-1", "C-3"]);
    let prev = b2["previous"].as_str().expect("previous");
    assert!(!prev.contains("page="), "{prev}");
    let (_, b3) = c.get(b2["next"].as_str().expect("next")).await;
    assert_eq!(
        (skus(&b3), &b3["next"]),
        (vec!["U-2".to_string()], &Value::Null)
    );
    assert!(b3["previous"].as_str().expect("prev").contains("page=2"));
    // A page that is no positive integer is a 400 naming the parameter;
    // one past the end (however large) is a 404.
    for (q, param) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=-1", "page_size"),
    ] {
        let (s, b) = c.get(&list(q)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b}");
        assert!(b["errors"][param].is_array(), "{q}: {b}");
    }
    for q in [
        "page=4&page_size=2",
        "page=2",
        "page=18446744073709551615",
        "page=99999999999999999999999",
    ] {
        let (s, b) = c.get(&list(q)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{q}: {b}");
        assert_eq!(b["detail"], "Invalid page.", "{q}");
    }
    let (s, b) = c.get(&list("page=last&page_size=2&ordering=price")).await;
    assert_eq!((s, skus(&b)), (StatusCode::OK, vec!["U-2".to_string()]));
    // An empty result still has page 1.
    let (s, b) = c.get(&list("search=zzzz")).await;
    assert_eq!(
        (s, b["count"].as_u64(), &b["next"]),
        (StatusCode::OK, Some(0), &Value::Null)
    );

    // page_size is at most 100.
    let futures: Vec<_> = (0..101)
        .map(|i| c.product_owned(format!("BULK-{i:03}")))
        .collect();
    futures::future::join_all(futures).await;
    let (_, b) = c.get(&list("category=cups&page_size=100")).await;
    assert_eq!(b["count"].as_u64(), Some(103));
    assert_eq!(b["results"].as_array().map(Vec::len), Some(100));
    assert!(b["next"].as_str().expect("next").contains("page_size=100"));
    let (_, b) = c.get(&list("category=cups")).await;
    assert_eq!(
        b["results"].as_array().map(Vec::len),
        Some(20),
        "default page size"
    );
    let (_, b) = c.get(&list("category=cups&page_size=100&page=2")).await;
    assert_eq!(b["results"].as_array().map(Vec::len), Some(3));
}

impl Ctx {
    async fn product_owned(&self, sku: String) {
        self.product(
            &sku,
            &format!("Bulk mug {sku}"),
            "Stoneware.",
            "9.99",
            "cups",
            1,
        )
        .await;
    }
}

async fn reservations(c: &Ctx) {
    c.category("Limited", "limited").await;
    let id = c
        .product("LTD-1", "Limited Print", "Signed.", "99.00", "limited", 10)
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let other = c
        .product("LTD-2", "Poster", "Rolled.", "20.00", "limited", 5)
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let one =
        |order: &str| json!({"order_id": order, "items": [{"product_id": id, "quantity": 1}]});

    // Auth: service token with the right scope only; never via the gateway.
    let (s, _) = c
        .internal_post("/internal/reservations", None, one("o-x"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = c
        .internal_post("/internal/reservations", Some(&c.staff), one("o-x"))
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a user token is not a service token"
    );
    let weak = c.issuer.service("notifications", "identity:read");
    let (s, b) = c
        .internal_post("/internal/reservations", Some(&weak), one("o-x"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let reader = c.issuer.service("gateway", "catalog:read");
    let (s, _) = c
        .internal_post("/internal/reservations", Some(&reader), one("o-x"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r =
        c.p.http
            .post(c.p.url("/internal/reservations"))
            .bearer_auth(&c.orders)
            .json(&one("o-x"))
            .send()
            .await
            .expect("gw");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (s, b) = c
        .internal_post(
            "/internal/reservations",
            Some(&c.orders),
            json!({"order_id": "o-bad", "items": []}),
        )
        .await;
    assert_field_error(s, &b, "items");

    // Lookup.
    let (s, b) = c
        .internal_post(
            "/internal/products/lookup",
            Some(&c.orders),
            json!({"ids": [id, "unknown"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["products"].as_array().map(Vec::len), Some(1));
    let p = &b["products"][0];
    assert_eq!(
        (
            p["price"].as_str(),
            p["price_cents"].as_i64(),
            p["stock"].as_i64()
        ),
        (Some("99.00"), Some(9900), Some(10))
    );
    assert_eq!(
        (p["sku"].as_str(), p["currency"].as_str()),
        (Some("LTD-1"), Some("USD"))
    );
    let (s, _) = c
        .internal_post("/internal/products/lookup", Some(&weak), json!({"ids": []}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Warm the cache, then 50 parallel reservations of one unit against 10.
    assert_eq!(
        c.get(&format!("/api/v1/products/{id}/")).await.1["stock"],
        10
    );
    let calls: Vec<_> = (0..50)
        .map(|i| {
            c.internal_post(
                "/internal/reservations",
                Some(&c.orders),
                one(&format!("order-{i}")),
            )
        })
        .collect();
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let rejected: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!((ok, rejected.len()), (10, 40), "{results:?}");
    let (_, r) = rejected[0];
    assert_eq!(
        (r["status"].as_str(), r["reason"].as_str()),
        (Some("rejected"), Some("out_of_stock"))
    );
    assert_eq!(r["product_ids"], json!([id]));
    assert_eq!(
        c.get(&format!("/api/v1/products/{id}/")).await.1["stock"],
        0,
        "no stale cached stock"
    );
    let (_, b) = c
        .get("/api/v1/products/?category=limited&in_stock=true")
        .await;
    assert_eq!(skus(&b), ["LTD-2"]);

    // The same reservation retried 5 times counts once.
    let retry = json!({"order_id": "retry-1", "items": [{"product_id": other, "quantity": 2}]});
    for _ in 0..5 {
        let (s, b) = c
            .internal_post("/internal/reservations", Some(&c.orders), retry.clone())
            .await;
        assert_eq!(
            (s, b["status"].as_str(), b["order_id"].as_str()),
            (StatusCode::OK, Some("reserved"), Some("retry-1")),
            "{b}"
        );
    }
    assert_eq!(
        c.get(&format!("/api/v1/products/{other}/")).await.1["stock"],
        3
    );

    // All or nothing.
    let mixed = json!({"order_id": "mixed", "items": [
        {"product_id": other, "quantity": 1}, {"product_id": id, "quantity": 1}]});
    let (s, b) = c
        .internal_post("/internal/reservations", Some(&c.orders), mixed)
        .await;
    assert_eq!((s, &b["product_ids"]), (StatusCode::CONFLICT, &json!([id])));
    assert_eq!(
        c.get(&format!("/api/v1/products/{other}/")).await.1["stock"],
        3
    );

    // Commit and release, idempotent.
    for _ in 0..2 {
        let (s, b) = c
            .internal_post(
                "/internal/reservations/retry-1/commit",
                Some(&c.orders),
                json!({}),
            )
            .await;
        assert_eq!(
            (s, b["status"].as_str()),
            (StatusCode::OK, Some("committed")),
            "{b}"
        );
    }
    let (s, _) = c
        .internal_post(
            "/internal/reservations/mixed/commit",
            Some(&c.orders),
            json!({}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a rejected reservation cannot be committed"
    );
    let (s, _) = c
        .internal_post(
            "/internal/reservations/never/commit",
            Some(&c.orders),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for order in ["retry-1", "retry-1", "mixed", "never"] {
        let url = format!("/internal/reservations/{order}/release");
        let (s, b) = c.internal_post(&url, Some(&c.orders), json!({})).await;
        assert_eq!(
            (s, b["status"].as_str()),
            (StatusCode::OK, Some("released")),
            "{order}: {b}"
        );
    }
    assert_eq!(
        c.get(&format!("/api/v1/products/{other}/")).await.1["stock"],
        5,
        "released once"
    );
    let (s, b) = c
        .internal_post(
            "/internal/reservations/order-0/release",
            Some(&c.orders),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = c
        .internal_post(
            "/internal/reservations/order-0/release",
            Some(&weak),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, b) = c.get(&format!("/api/v1/products/{id}/")).await;
    let freed = b["stock"].as_i64().expect("stock");
    // order-0 either held a unit (now back) or was rejected (no-op).
    assert!(freed <= 1, "{b}");

    // Cache hits and misses are counted in /metrics.
    let metrics =
        c.p.http
            .get(format!("{}/metrics", c.p.service_url(ServiceName::Catalog)))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
    assert!(
        metrics.contains("catalog_cache_total{service=\"catalog\",result=\"hit\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("catalog_cache_total{service=\"catalog\",result=\"miss\"}"));
}

#[tokio::test]
async fn catalog_crud_validation_permissions_sqlite() {
    let c = start(Store::Sqlite).await.expect("sqlite");
    crud_validation_and_permissions(&c).await;
    c.p.stop().await;
}

#[tokio::test]
async fn catalog_crud_validation_permissions_postgres() {
    let Some(c) = start(Store::Postgres).await else {
        return;
    };
    crud_validation_and_permissions(&c).await;
    c.p.stop().await;
}

#[tokio::test]
async fn catalog_filters_orderings_pagination_sqlite() {
    let c = start(Store::Sqlite).await.expect("sqlite");
    filters_orderings_pagination(&c).await;
    c.p.stop().await;
}

#[tokio::test]
async fn catalog_filters_orderings_pagination_postgres() {
    let Some(c) = start(Store::Postgres).await else {
        return;
    };
    filters_orderings_pagination(&c).await;
    c.p.stop().await;
}

#[tokio::test]
async fn catalog_reservations_never_oversell_sqlite() {
    let c = start(Store::Sqlite).await.expect("sqlite");
    reservations(&c).await;
    c.p.stop().await;
}

#[tokio::test]
async fn catalog_reservations_never_oversell_postgres() {
    let Some(c) = start(Store::Postgres).await else {
        return;
    };
    reservations(&c).await;
    c.p.stop().await;
}
