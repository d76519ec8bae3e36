//! Identity end to end, through the gateway as a client sees it, on SQLite
//! and PostgreSQL: registration rules, login, refresh rotation and reuse
//! detection, logout, users/me, staff list and detail, forged tokens,
//! key rotation, service tokens, throttling and `bazaar createsuperuser`.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bazaar_kit::ServiceName;
use common::{Store, TestPlatform};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("jwt part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

async fn post(p: &TestPlatform, path: &str, body: Value) -> reqwest::Response {
    p.http
        .post(p.url(path))
        .json(&body)
        .send()
        .await
        .expect("post")
}

async fn get_as(p: &TestPlatform, path: &str, token: &str) -> reqwest::Response {
    p.http
        .get(p.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("get")
}

async fn assert_401(p: &TestPlatform, token: &str, what: &str) {
    let r = get_as(p, "/api/v1/users/me/", token).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    assert!(
        challenge.is_some_and(|c| c.starts_with("Bearer")),
        "{what}: WWW-Authenticate"
    );
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
}

async fn errors_of(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("problem");
    body["errors"].clone()
}

macro_rules! both_stores {
    ($scenario:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let p = common::start(Store::Sqlite).await.expect("platform");
            $scenario(&p).await;
            p.stop().await;
        }
        #[tokio::test]
        async fn $postgres() {
            let Some(p) = common::start(Store::Postgres).await else {
                return;
            };
            $scenario(&p).await;
            p.stop().await;
        }
    };
}

async fn registration(p: &TestPlatform) {
    let r = post(
        p,
        "/api/v1/auth/register/",
        json!({
            "username": "Alice", "email": "Alice@Example.COM",
            "password": "Correct-Horse-99", "is_staff": true, "id": "x"
        }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = r.json().await.expect("user");
    let keys: Vec<&String> = user.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["date_joined", "email", "id", "is_staff", "username"]);
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "Alice@example.com", "domain normalised");
    assert_eq!(user["is_staff"], false, "is_staff in the body is ignored");
    assert!(uuid::Uuid::parse_str(user["id"].as_str().expect("id")).is_ok());

    // Case-insensitive uniqueness, reported per field.
    let errors = errors_of(
        post(
            p,
            "/api/v1/auth/register/",
            json!({
                "username": "aLICE", "email": "other@example.com", "password": "Correct-Horse-99"
            }),
        )
        .await,
    )
    .await;
    assert_eq!(
        errors["username"][0],
        "A user with that username already exists."
    );
    let errors = errors_of(
        post(
            p,
            "/api/v1/auth/register/",
            json!({
                "username": "alice2", "email": "ALICE@example.com", "password": "Correct-Horse-99"
            }),
        )
        .await,
    )
    .await;
    assert_eq!(errors["email"][0], "A user with that email already exists.");
    assert!(errors.get("username").is_none());

    // Django's field rules, all reported at once.
    let errors = errors_of(
        post(
            p,
            "/api/v1/auth/register/",
            json!({
                "username": "bad name!", "email": "not-an-email", "password": "123"
            }),
        )
        .await,
    )
    .await;
    assert!(
        errors["username"][0]
            .as_str()
            .expect("msg")
            .starts_with("Enter a valid username")
    );
    assert_eq!(errors["email"][0], "Enter a valid email address.");
    let pw: Vec<&str> = errors["password"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        pw.contains(&"This password is too short. It must contain at least 8 characters."),
        "{pw:?}"
    );
    assert!(pw.contains(&"This password is entirely numeric."), "{pw:?}");
    assert!(pw.contains(&"This password is too common."), "{pw:?}");
    for (username, password, message) in [
        ("carol", "password1", "This password is too common."),
        ("dave", "9283746501", "This password is entirely numeric."),
        (
            "margaret_smith",
            "margaret_smith1",
            "The password is too similar to the username.",
        ),
        ("x".repeat(151).as_str(), "Correct-Horse-99", ""),
    ] {
        let errors = errors_of(post(p, "/api/v1/auth/register/", json!({
            "username": username, "email": format!("{}@example.com", &username[..1]), "password": password
        })).await).await;
        if message.is_empty() {
            assert!(
                errors["username"][0].as_str().expect("msg").contains("150"),
                "{errors}"
            );
        } else {
            assert!(
                errors["password"]
                    .as_array()
                    .expect("list")
                    .contains(&json!(message)),
                "{username}: {errors}"
            );
        }
    }
    let errors =
        errors_of(post(p, "/api/v1/auth/register/", json!({"username": "eve"})).await).await;
    assert_eq!(errors["email"][0], "This field is required.");

    // user.registered went to the outbox with the insert.
    let db = bazaar_identity::accounts::admin::open(&p.config)
        .await
        .expect("db");
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM outbox WHERE event_type = 'user.registered'")
            .fetch_all(db.pool())
            .await
            .expect("outbox");
    db.close().await;
    assert_eq!(rows.len(), 1, "exactly one event for one registration");
    let data: Value = serde_json::from_str(&rows[0].0).expect("data");
    assert_eq!(
        data,
        json!({"user_id": user["id"], "username": "Alice", "email": "Alice@example.com"})
    );
}
both_stores!(registration, registration_sqlite, registration_postgres);

async fn tokens_and_sessions(p: &TestPlatform) {
    let u = p.register_and_login("bob").await;
    // simplejwt's shape and the claims the SPEC requires.
    let r = p.login("BOB", &u.password).await;
    assert_eq!(r.status(), StatusCode::OK, "login is case-insensitive");
    let body: Value = r.json().await.expect("body");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let access = body["access"].as_str().expect("access");
    let header = decode_part(access, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    let claims = decode_part(access, 1);
    assert_eq!(claims["iss"], "bazaar-identity");
    assert_eq!(claims["aud"], "bazaar-api");
    assert_eq!(claims["sub"], json!(u.id));
    assert_eq!(claims["username"], "bob");
    assert_eq!(claims["is_staff"], false);
    assert_eq!(claims["token_type"], "access");
    assert!(claims["jti"].is_string());
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!(lifetime > 0 && lifetime <= 900, "{lifetime}");

    let r = get_as(p, "/api/v1/users/me/", access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("me");
    assert_eq!(me["username"], "bob");

    // Wrong credentials: 401, never saying which part was wrong.
    for (name, pw) in [("bob", "Wrong-Password-1"), ("nobody", "Wrong-Password-1")] {
        let r = p.login(name, pw).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // RFC 6749 §5.2's error shape on the token endpoint.
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["pragma"], "no-cache");
        let b: Value = r.json().await.expect("oauth error");
        assert_eq!(b["error"], "invalid_grant");
        assert_eq!(
            b["error_description"],
            "No active account found with the given credentials"
        );
    }
    let r = get_as(p, "/api/v1/users/me/", "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = p
        .http
        .get(p.url("/api/v1/users/me/"))
        .send()
        .await
        .expect("anon");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");

    // Rotation: a refresh gives a new pair; the old refresh token is dead,
    // and presenting it again revokes the whole family.
    let r1 = post(
        p,
        "/api/v1/auth/token/refresh/",
        json!({"refresh": u.refresh}),
    )
    .await;
    assert_eq!(r1.status(), StatusCode::OK);
    let pair: Value = r1.json().await.expect("pair");
    let keys: Vec<&String> = pair.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let second = pair["refresh"].as_str().expect("refresh").to_string();
    assert_ne!(second, u.refresh);
    assert_eq!(
        get_as(p, "/api/v1/users/me/", pair["access"].as_str().expect("a"))
            .await
            .status(),
        200
    );
    let reuse = post(
        p,
        "/api/v1/auth/token/refresh/",
        json!({"refresh": u.refresh}),
    )
    .await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED, "reuse refused");
    let stolen = post(p, "/api/v1/auth/token/refresh/", json!({"refresh": second})).await;
    assert_eq!(
        stolen.status(),
        StatusCode::UNAUTHORIZED,
        "reuse revoked the whole family"
    );
    let junk = post(
        p,
        "/api/v1/auth/token/refresh/",
        json!({"refresh": "not-a-token"}),
    )
    .await;
    assert_eq!(junk.status(), StatusCode::UNAUTHORIZED);

    // Another session is untouched by that family's revocation; logout ends it.
    let r = p.login("bob", &u.password).await;
    let session: Value = r.json().await.expect("body");
    let refresh = session["refresh"].as_str().expect("refresh");
    let r = post(p, "/api/v1/auth/logout/", json!({"refresh": refresh})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = post(
        p,
        "/api/v1/auth/token/refresh/",
        json!({"refresh": refresh}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "logged-out token is revoked"
    );
    let r = post(p, "/api/v1/auth/logout/", json!({"refresh": refresh})).await;
    assert_eq!(
        r.status(),
        StatusCode::NO_CONTENT,
        "logging out twice is harmless"
    );
    let r = post(p, "/api/v1/auth/logout/", json!({"refresh": "unknown"})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
both_stores!(tokens_and_sessions, tokens_sqlite, tokens_postgres);

async fn users_and_profile(p: &TestPlatform) {
    let carol = p.register_and_login("carol").await;
    let dan = p.register_and_login("dan").await;
    let staff = p.staff_user("root").await;

    // Detail: self yes, someone else 404 (existence not leaked), staff yes.
    let r = get_as(p, &format!("/api/v1/users/{}/", carol.id), &carol.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get_as(p, &format!("/api/v1/users/{}/", dan.id), &carol.access).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "IDOR is a 404");
    let r = get_as(
        p,
        "/api/v1/users/00000000-0000-0000-0000-000000000000/",
        &carol.access,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = get_as(p, &format!("/api/v1/users/{}/", dan.id), &staff.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("user");
    assert_eq!(body["username"], "dan");

    // List: staff only, paginated, ?search= on username or email.
    let r = get_as(p, "/api/v1/users/", &carol.access).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = get_as(p, "/api/v1/users/?page_size=2", &staff.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.expect("page");
    assert_eq!(page["count"], 3);
    assert_eq!(page["results"].as_array().expect("results").len(), 2);
    assert!(page["next"].as_str().expect("next").contains("page=2"));
    assert_eq!(page["previous"], Value::Null);
    let r = get_as(p, "/api/v1/users/?search=DA", &staff.access).await;
    let page: Value = r.json().await.expect("page");
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["username"], "dan");
    let r = get_as(p, "/api/v1/users/?search=%25", &staff.access).await;
    let page: Value = r.json().await.expect("page");
    assert_eq!(page["count"], 0, "LIKE wildcards are escaped");
    let r = get_as(p, "/api/v1/users/?page=9", &staff.access).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // PATCH me: email (validated, unique), username/is_staff ignored.
    let patch = |body: Value| {
        p.http
            .patch(p.url("/api/v1/users/me/"))
            .bearer_auth(&carol.access)
            .json(&body)
            .send()
    };
    let r = patch(json!({"email": "Carol.New@Example.org", "is_staff": true, "username": "x"}))
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("me");
    assert_eq!(me["email"], "Carol.New@example.org");
    assert_eq!(me["is_staff"], false);
    assert_eq!(me["username"], "carol");
    let errors = errors_of(
        patch(json!({"email": "DAN@example.com"}))
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(errors["email"][0], "A user with that email already exists.");
    let errors = errors_of(patch(json!({"email": "nope"})).await.expect("patch")).await;
    assert_eq!(errors["email"][0], "Enter a valid email address.");
    let errors = errors_of(patch(json!({"password": "short"})).await.expect("patch")).await;
    assert!(errors["password"].is_array());

    // A password change ends every session (refresh tokens revoked).
    let r = patch(json!({"password": "Brand-New-Secret-7"}))
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(
        p,
        "/api/v1/auth/token/refresh/",
        json!({"refresh": carol.refresh}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "refresh revoked by password change"
    );
    assert_eq!(
        p.login("carol", &carol.password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        p.login("carol", "Brand-New-Secret-7").await.status(),
        StatusCode::OK
    );
}
both_stores!(users_and_profile, users_sqlite, users_postgres);

async fn signing_key(p: &TestPlatform) -> (String, EncodingKey) {
    let db = bazaar_identity::accounts::admin::open(&p.config)
        .await
        .expect("db");
    let key = bazaar_identity::signing::keys::signing_key(&db)
        .await
        .expect("key");
    db.close().await;
    key
}

fn sign(kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

async fn forged_tokens(p: &TestPlatform) {
    let u = p.register_and_login("frank").await;
    let (kid, key) = signing_key(p).await;
    let t = now();
    let good = json!({"iss": "bazaar-identity", "aud": "bazaar-api", "sub": u.id, "exp": t + 120,
        "iat": t, "jti": "j1", "token_type": "access", "username": "frank", "is_staff": false});
    // The forging helper itself makes tokens the platform accepts...
    let ok = sign(&kid, &key, &good);
    assert_eq!(
        get_as(p, "/api/v1/users/me/", &ok).await.status(),
        StatusCode::OK
    );

    // ...so each refusal below is about the one thing changed.
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    assert_401(p, &sign(&kid, &key, &with("exp", json!(t - 60))), "expired").await;
    assert_401(
        p,
        &sign(&kid, &key, &with("aud", json!("someone-else"))),
        "wrong aud",
    )
    .await;
    assert_401(
        p,
        &sign(&kid, &key, &with("aud", json!("bazaar-internal"))),
        "service aud",
    )
    .await;
    assert_401(
        p,
        &sign(&kid, &key, &with("iss", json!("evil-issuer"))),
        "wrong iss",
    )
    .await;
    assert_401(
        p,
        &sign(&kid, &key, &with("token_type", json!("service"))),
        "service token type",
    )
    .await;
    assert_401(
        p,
        &sign(&kid, &key, &with("nbf", json!(t + 600))),
        "not yet valid",
    )
    .await;

    // Tampered payload, original signature.
    let mut parts: Vec<String> = u.access.split('.').map(str::to_string).collect();
    let mut claims = decode_part(&u.access, 1);
    claims["is_staff"] = json!(true);
    parts[1] = b64json(&claims);
    assert_401(p, &parts.join("."), "tampered payload").await;
    assert_401(p, &format!("{}.{}", parts[0], parts[1]), "two segments").await;
    assert_401(p, "garbage", "garbage").await;

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64json(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64json(&good)
    );
    assert_401(p, &none, "alg none").await;

    // HS256 signed with the public key (algorithm confusion), both as the
    // raw key bytes and as the JWK text.
    let jwks: Value = p
        .http
        .get(p.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let x = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == json!(kid))
        .expect("signing key published")["x"]
        .as_str()
        .expect("x")
        .to_string();
    let raw = URL_SAFE_NO_PAD.decode(&x).expect("x");
    for secret in [raw.as_slice(), x.as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let hs =
            jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(secret)).expect("hs256");
        assert_401(p, &hs, "HS256 with the public key").await;
    }

    // A key identity never issued, claiming identity's kid.
    let foreign = bazaar_identity::signing::keys::generate(t, Some(t)).expect("key");
    let foreign_key =
        EncodingKey::from_ed_der(&STANDARD.decode(&foreign.private_pkcs8).expect("der"));
    assert_401(
        p,
        &sign(&kid, &foreign_key, &good),
        "foreign key, known kid",
    )
    .await;
    assert_401(
        p,
        &sign(&foreign.kid, &foreign_key, &good),
        "foreign key, unknown kid",
    )
    .await;
}
both_stores!(forged_tokens, forged_sqlite, forged_postgres);

/// Runs the real binary against the running platform's identity database.
fn bazaar_cmd(p: &TestPlatform, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bazaar"));
    cmd.args(args)
        .current_dir(p.data_dir())
        .env(
            "BAZAAR_IDENTITY_DATABASE_URL",
            p.config.database_url(ServiceName::Identity),
        )
        .env("BAZAAR_LOG_LEVEL", "warn")
        .env_remove("BAZAAR_CONFIG");
    cmd
}

async fn key_rotation(p: &TestPlatform) {
    let u = p.register_and_login("grace").await;
    let old_kid = decode_part(&u.access, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    let jwks: Value = p
        .http
        .get(p.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let published: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect();
    assert!(published.contains(&old_kid));
    assert_eq!(
        published.len(),
        2,
        "active key plus the pre-published next key"
    );
    for k in jwks["keys"].as_array().expect("keys") {
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert_eq!(k["alg"], "EdDSA");
        assert!(k.get("d").is_none(), "never a private part");
    }

    let out = tokio::task::spawn_blocking({
        let mut cmd = bazaar_cmd(p, &["keys", "rotate"]);
        move || cmd.output()
    })
    .await
    .expect("join")
    .expect("bazaar keys rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // New logins are signed by the new key (which verifiers already had).
    let r = p.login("grace", &u.password).await;
    let body: Value = r.json().await.expect("tokens");
    let new_access = body["access"].as_str().expect("access").to_string();
    let new_kid = decode_part(&new_access, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    assert_ne!(new_kid, old_kid);
    assert!(
        published.contains(&new_kid),
        "the next key was already published"
    );
    assert_eq!(
        get_as(p, "/api/v1/users/me/", &new_access).await.status(),
        StatusCode::OK
    );
    // Tokens of the old key stay valid until they expire.
    assert_eq!(
        get_as(p, "/api/v1/users/me/", &u.access).await.status(),
        StatusCode::OK
    );
    let jwks: Value = p
        .http
        .get(p.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()) && kids.len() == 3,
        "{kids:?}"
    );

    // Once the overlap window has passed (simulated by back-dating the
    // retirement), the old key is unpublished and its tokens refused.
    let db = bazaar_identity::accounts::admin::open(&p.config)
        .await
        .expect("db");
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
        .bind(now() - bazaar_identity::signing::keys::OVERLAP_SECS - 1)
        .bind(&old_kid)
        .execute(db.pool())
        .await
        .expect("backdate");
    db.close().await;
    let jwks: Value = p
        .http
        .get(p.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert!(
        !jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == json!(old_kid))
    );
    // Identity reloads its keys every 2 s.
    common::eventually(10, "old key's token refused by identity", || async {
        let r = p
            .http
            .get(format!(
                "{}/api/v1/users/me",
                p.service_url(ServiceName::Identity)
            ))
            .bearer_auth(&u.access)
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
}
both_stores!(key_rotation, rotation_sqlite, rotation_postgres);

async fn service_tokens(p: &TestPlatform) {
    let u = p.register_and_login("heidi").await;
    let secret = |s: ServiceName| p.config.client_secret(s).expect("secret").expose().clone();
    let token_for = |s: ServiceName| {
        let body = json!({"grant_type": "client_credentials", "client_id": s.as_str(), "client_secret": secret(s)});
        async move { post(p, "/api/v1/auth/service-token/", body).await }
    };
    let r = token_for(ServiceName::Notifications).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("body");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert!(
        body["scope"]
            .as_str()
            .expect("scope")
            .split(' ')
            .any(|s| s == "identity:read")
    );
    let notif = body["access_token"].as_str().expect("token").to_string();
    let claims = decode_part(&notif, 1);
    assert_eq!(claims["sub"], "service:notifications");
    assert_eq!(claims["aud"], "bazaar-internal");
    assert_eq!(claims["token_type"], "service");

    let r = token_for(ServiceName::Orders).await;
    let body: Value = r.json().await.expect("body");
    let scopes: Vec<&str> = body["scope"].as_str().expect("scope").split(' ').collect();
    for s in [
        "catalog:read",
        "catalog:reserve",
        "payments:charge",
        "payments:refund",
    ] {
        assert!(scopes.contains(&s), "{scopes:?}");
    }
    let orders = body["access_token"].as_str().expect("token").to_string();

    // Form-encoded works too; wrong secret / unknown client → 401; bad grant → 400.
    let r = p
        .http
        .post(p.url("/api/v1/auth/service-token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id=payments&client_secret={}",
            secret(ServiceName::Payments)
        ))
        .send()
        .await
        .expect("form");
    assert_eq!(r.status(), StatusCode::OK);
    for (id, sec) in [
        ("orders", "wrong".to_string()),
        ("mallory", "x".into()),
        ("orders", secret(ServiceName::Catalog)),
    ] {
        let r = post(
            p,
            "/api/v1/auth/service-token/",
            json!({"grant_type": "client_credentials", "client_id": id, "client_secret": sec}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{id}");
    }
    let r = post(
        p,
        "/api/v1/auth/service-token/",
        json!({"grant_type": "password", "client_id": "orders", "client_secret": "x"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // GetUser on identity's internal gRPC port: scope identity:read only.
    let get_user = |token: Option<String>| {
        let url = p.config.grpc_urls(ServiceName::Identity).remove(0);
        let id = u.id.clone();
        async move {
            use bazaar_proto::identity::v1::{GetUserRequest, identity_client::IdentityClient};
            let channel = tonic::transport::Channel::from_shared(url)
                .expect("url")
                .connect()
                .await
                .expect("identity's internal port");
            let mut request = tonic::Request::new(GetUserRequest { id });
            if let Some(t) = token {
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {t}").parse().expect("meta"),
                );
            }
            IdentityClient::new(channel).get_user(request).await
        }
    };
    let user = get_user(Some(notif.clone()))
        .await
        .expect("notifications may look users up")
        .into_inner();
    assert_eq!(
        (
            user.id.as_str(),
            user.username.as_str(),
            user.email.as_str(),
            user.is_staff
        ),
        (u.id.as_str(), "heidi", "heidi@example.com", false)
    );
    let code = |r: Result<_, tonic::Status>| r.map(|_| ()).expect_err("refused").code();
    assert_eq!(
        code(get_user(Some(orders.clone())).await),
        tonic::Code::PermissionDenied,
        "orders lacks identity:read"
    );
    assert_eq!(
        code(get_user(Some(u.access.clone())).await),
        tonic::Code::Unauthenticated,
        "a user token is not a service token"
    );
    assert_eq!(code(get_user(None).await), tonic::Code::Unauthenticated);
    // A service token is not a user token either.
    assert_401(p, &notif, "service token on a user route").await;
    // And /internal/ is never routed by the gateway, nor served by identity.
    for url in [
        p.url(&format!("/internal/users/{}", u.id)),
        format!(
            "{}/internal/users/{}",
            p.service_url(ServiceName::Identity),
            u.id
        ),
    ] {
        let r = p
            .http
            .get(&url)
            .bearer_auth(&notif)
            .send()
            .await
            .expect("http");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{url}");
    }

    // Discovery.
    let r = p
        .http
        .get(p.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("oidc");
    let doc: Value = r.json().await.expect("doc");
    // The issuer is the URL the document is served under.
    let issuer = doc["issuer"].as_str().expect("issuer");
    assert_eq!(
        format!("{issuer}/.well-known/openid-configuration"),
        p.url("/.well-known/openid-configuration")
    );
    assert!(doc["authorization_endpoint"].is_string());
    assert!(
        doc["jwks_uri"]
            .as_str()
            .expect("uri")
            .ends_with("/.well-known/jwks.json")
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
}
both_stores!(
    service_tokens,
    service_tokens_sqlite,
    service_tokens_postgres
);

async fn createsuperuser_cli(p: &TestPlatform) {
    let run = |args: &[&str], env: Option<&str>, stdin: Option<&str>| {
        let mut cmd = bazaar_cmd(p, args);
        if let Some(pw) = env {
            cmd.env("BAZAAR_SUPERUSER_PASSWORD", pw);
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let input = stdin.unwrap_or_default().to_string();
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = cmd.spawn().expect("spawn bazaar");
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(input.as_bytes())
                    .expect("write");
                child.wait_with_output().expect("output")
            })
            .await
            .expect("join")
        }
    };
    let out = run(
        &[
            "createsuperuser",
            "--noinput",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
        ],
        Some("Boss-Password-77"),
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Superuser created successfully."));
    let out = run(
        &[
            "createsuperuser",
            "--noinput",
            "--username",
            "BOSS",
            "--email",
            "b2@example.com",
        ],
        Some("x"),
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("That username is already taken."));

    // Interactive: mismatch, then a common password refused, then accepted.
    let input = "ivy\nivy@example.com\nOne-Pass-111\nTwo-Pass-222\npassword\npassword\nn\nIvy-Good-Pass-9\nIvy-Good-Pass-9\n";
    let out = run(&["createsuperuser"], None, Some(input)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error: Your passwords didn't match."),
        "{stderr}"
    );
    assert!(stderr.contains("This password is too common."), "{stderr}");

    // Both log in through the gateway, as staff.
    for (name, pw) in [("boss", "Boss-Password-77"), ("ivy", "Ivy-Good-Pass-9")] {
        let r = p.login(name, pw).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        let tokens: Value = r.json().await.expect("tokens");
        assert_eq!(
            decode_part(tokens["access"].as_str().expect("a"), 1)["is_staff"],
            true
        );
        let r = get_as(p, "/api/v1/users/", tokens["access"].as_str().expect("a")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}
both_stores!(
    createsuperuser_cli,
    createsuperuser_sqlite,
    createsuperuser_postgres
);

/// Throttling per username and per IP, and the counters survive a restart.
async fn throttling(store: Store) {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_path_buf();
    let Some(p) = common::start_with(store, |c| c.data_dir = data.clone()).await else {
        return;
    };
    let db_url = p.config.database_url.clone();
    let u = p.register_and_login("judy").await;
    for i in 0..5 {
        let r = p.login("judy", "Wrong-Password-1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let r = p.login("JUDY", &u.password).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 900, "{retry}");
    let body: Value = r.json().await.expect("oauth error");
    assert_eq!(body["error"], "temporarily_unavailable");
    // Another user from the same IP is not locked by judy's failures.
    let other = p.register_and_login("ken").await;
    assert_eq!(
        p.login("ken", &other.password).await.status(),
        StatusCode::OK
    );
    p.stop().await;

    // Restarted on the same databases: judy is still locked.
    let p = common::start_with(store, |c| {
        c.data_dir = data.clone();
        c.database_url = db_url.clone();
    })
    .await
    .expect("restart");
    let r = p.login("judy", &u.password).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "throttle survives a restart"
    );

    // Per IP: many usernames from one client; a spoofed X-Forwarded-For
    // does not help (identity trusts only the hop the gateway added).
    let mut throttled = false;
    for i in 0..40 {
        let r = p
            .http
            .post(p.url("/api/v1/auth/token/"))
            .header("x-forwarded-for", format!("10.0.0.{i}"))
            .json(&json!({"username": format!("ghost{i}"), "password": "Wrong-Password-1"}))
            .send()
            .await
            .expect("login");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            // 30 failures per IP, judy's 5 included.
            assert_eq!(i, 25, "IP limit is 30 failures");
            assert!(r.headers().contains_key("retry-after"));
            throttled = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(throttled, "per-IP throttle");
    p.stop().await;
}

#[tokio::test]
async fn throttling_sqlite() {
    throttling(Store::Sqlite).await;
}

#[tokio::test]
async fn throttling_postgres() {
    throttling(Store::Postgres).await;
}
