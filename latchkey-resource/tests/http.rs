//! RFC 6750 §3 answers of the axum extractors and the tower layer, driven with real
//! Latchkey tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use common::Issuer;
use latchkey_resource::{Authenticated, AuthenticatedUser, BearerLayer, Validator};
use tower::ServiceExt;

fn app(v: Validator) -> Router {
    Router::new()
        .route(
            "/any",
            get(|Authenticated(c): Authenticated| async move { c.client_id().to_owned() }),
        )
        .route(
            "/user",
            get(|AuthenticatedUser(c): AuthenticatedUser| async move { c.sub().to_owned() }),
        )
        .route(
            "/write",
            get(|a: Authenticated| async move { a.sub().to_owned() })
                .route_layer(BearerLayer::new(v.clone()).require_scope("write")),
        )
        .route(
            "/layer-user",
            get(|| async { "ok" }).route_layer(BearerLayer::new(v.clone()).require_user()),
        )
        .route(
            "/handler-scope",
            get(|a: Authenticated| async move { a.require_scope("admin").map(|()| "ok") }),
        )
        .route(
            "/optional",
            get(|a: Option<Authenticated>| async move {
                a.map_or("anonymous".to_owned(), |a| a.sub().to_owned())
            }),
        )
        .layer(Extension(v))
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: String,
}

async fn call(app: &Router, path: &str, auth: &[&str]) -> Answer {
    let mut req = Request::get(path);
    for a in auth {
        req = req.header("authorization", *a);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    Answer {
        status,
        challenge,
        body,
    }
}

const EXPIRED: &str =
    r#"Bearer error="invalid_token", error_description="the access token expired""#;
const USER_REQUIRED: &str = r#"Bearer error="insufficient_scope", error_description="this resource requires a token issued to a user""#;

#[tokio::test]
async fn answers_follow_rfc_6750_section_3() {
    let iss = Issuer::start().await;
    let client = iss.client_with(|c| c.access_token_ttl = Some(60)).await;
    let (v, clock) = iss.validator();
    let app = app(v);
    let client_read = format!("Bearer {}", iss.client_token(&client, "read").await);
    let (user, _) = iss.user_token(&client, "read write").await;
    let user_rw = format!("Bearer {user}");
    let user_id = common::parts(&user).1["sub"].as_str().unwrap().to_owned();

    // (rule, path, Authorization headers, status, WWW-Authenticate)
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "§3.1: no token, no error code",
            "/any",
            vec![],
            401,
            Some("Bearer"),
        ),
        (
            "another scheme is no bearer token",
            "/any",
            vec!["Basic YWxpY2U6c2VjcmV0"],
            401,
            Some("Bearer"),
        ),
        (
            "garbage is invalid_token",
            "/any",
            vec!["Bearer abc.def.ghi"],
            401,
            Some(
                r#"Bearer error="invalid_token", error_description="the access token is malformed""#,
            ),
        ),
        (
            "two Authorization headers are invalid_request",
            "/any",
            vec![&client_read, &user_rw],
            400,
            Some(
                r#"Bearer error="invalid_request", error_description="more than one Authorization header""#,
            ),
        ),
        (
            "a client token is a valid token",
            "/any",
            vec![&client_read],
            200,
            None,
        ),
        (
            "a user token at a user route",
            "/user",
            vec![&user_rw],
            200,
            None,
        ),
        (
            "the extractor turns a client token away",
            "/user",
            vec![&client_read],
            403,
            Some(USER_REQUIRED),
        ),
        (
            "so does the layer",
            "/layer-user",
            vec![&client_read],
            403,
            Some(USER_REQUIRED),
        ),
        (
            "the layer admits a user token",
            "/layer-user",
            vec![&user_rw],
            200,
            None,
        ),
        (
            "layer: no token",
            "/layer-user",
            vec![],
            401,
            Some("Bearer"),
        ),
        (
            "layer: missing scope is insufficient_scope naming it",
            "/write",
            vec![&client_read],
            403,
            Some(
                r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="write""#,
            ),
        ),
        ("layer: scope present", "/write", vec![&user_rw], 200, None),
        (
            "handler: require_scope",
            "/handler-scope",
            vec![&user_rw],
            403,
            Some(
                r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="admin""#,
            ),
        ),
        ("optional: anonymous", "/optional", vec![], 200, None),
        (
            "optional: a bad token is still refused",
            "/optional",
            vec!["Bearer abc.def.ghi"],
            401,
            Some(
                r#"Bearer error="invalid_token", error_description="the access token is malformed""#,
            ),
        ),
    ];
    for (rule, path, auth, status, challenge) in cases {
        let a = call(&app, path, &auth).await;
        assert_eq!(a.status.as_u16(), status, "{rule}: {}", a.body);
        assert_eq!(a.challenge.as_deref(), challenge, "{rule}");
    }
    assert_eq!(call(&app, "/user", &[&user_rw]).await.body, user_id);
    assert_eq!(call(&app, "/optional", &[&user_rw]).await.body, user_id);
    assert_eq!(call(&app, "/any", &[&client_read]).await.body, client.id);

    // §3.1: an expired token is invalid_token, and the description says so, everywhere.
    clock.advance(60 + 30);
    for path in ["/any", "/user", "/layer-user", "/write", "/optional"] {
        let a = call(&app, path, &[&client_read]).await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(a.challenge.as_deref(), Some(EXPIRED), "{path}");
    }
}

#[tokio::test]
async fn an_unreachable_issuer_is_503_not_invalid_token() {
    let mut iss = Issuer::start().await;
    let client = iss.app_client().await;
    let token = format!("Bearer {}", iss.client_token(&client, "read").await);
    let (v, _) = iss.validator();
    iss.stop().await;
    let app = app(v.clone());
    let layered = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(BearerLayer::new(v));
    for (app, path) in [(&app, "/any"), (&layered, "/")] {
        let a = call(app, path, &[&token]).await;
        assert_eq!(a.status, 503, "{path}");
        assert_eq!(a.challenge, None, "{path}");
    }
}

#[tokio::test]
async fn an_extractor_without_a_validator_is_a_500() {
    let app: Router = Router::new().route("/", get(|_: Authenticated| async { "ok" }));
    assert_eq!(call(&app, "/", &["Bearer abc.def.ghi"]).await.status, 500);
}

#[tokio::test]
async fn the_layer_alone_feeds_the_extractors() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (v, _) = iss.validator();
    let app: Router = Router::new()
        .route(
            "/",
            get(|Authenticated(c): Authenticated| async move { c.client_id().to_owned() }),
        )
        .layer(BearerLayer::new(v));
    let token = format!("Bearer {}", iss.client_token(&client, "read").await);
    let a = call(&app, "/", &[&token]).await;
    assert_eq!((a.status.as_u16(), a.body), (200, client.id));
    assert_eq!(
        call(&app, "/", &[]).await.challenge.as_deref(),
        Some("Bearer")
    );
}

#[tokio::test]
async fn an_inner_layer_with_another_validator_validates_again() {
    let iss = Issuer::start().await;
    let client = iss.app_client().await;
    let (outer, _) = iss.validator();
    let (inner, _) = iss.validator_for("https://api.other.example");
    let app: Router = Router::new()
        .route(
            "/",
            get(|| async { "ok" }).route_layer(BearerLayer::new(inner)),
        )
        .layer(BearerLayer::new(outer));
    let token = format!("Bearer {}", iss.client_token(&client, "read").await);
    let a = call(&app, "/", &[&token]).await;
    assert_eq!(
        a.status, 401,
        "the outer layer's audience does not satisfy the inner one"
    );
    assert_eq!(
        a.challenge.as_deref(),
        Some(
            r#"Bearer error="invalid_token", error_description="the token is meant for another audience""#
        )
    );
}
