//! axum extractors: the claims of a request's bearer token, and the RFC 6750 rejection as a
//! response.

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::claims::Claims;
use crate::rejection::{Rejection, bearer_token};
use crate::validator::Validator;

/// The claims of the request's valid bearer token, user or client.
///
/// Uses the claims a [`BearerLayer`](crate::BearerLayer) already validated, or else
/// validates the token with the [`Validator`] found in the request extensions
/// (`.layer(Extension(validator))`). Rejects with [`Rejection`] (RFC 6750 §3).
/// `Option<Authenticated>` is `None` when the request has no Authorization header, and
/// still rejects a bad token.
///
/// ```no_run
/// use axum::{Extension, Router, routing::get};
/// use latchkey_resource::{Authenticated, Rejection, Validator};
///
/// async fn reports(auth: Authenticated) -> Result<String, Rejection> {
///     auth.require_scope("reports:read")?; // 403 insufficient_scope without it
///     Ok(format!("reports for {}", auth.sub()))
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let validator = Validator::new("https://auth.example.com", "https://api.example.com")?;
/// let app: Router = Router::new()
///     .route("/reports", get(reports))
///     .layer(Extension(validator));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Authenticated(pub Claims);

/// The claims of a valid bearer token with a user behind it. A client_credentials token
/// is turned away with 403 `insufficient_scope` ([`Rejection::UserRequired`]): the one-line
/// way to keep machine clients out of user data.
///
/// Finds its validator like [`Authenticated`].
///
/// ```no_run
/// use latchkey_resource::AuthenticatedUser;
///
/// async fn me(AuthenticatedUser(claims): AuthenticatedUser) -> String {
///     format!("hello, user {}", claims.sub())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct AuthenticatedUser(pub Claims);

impl Deref for Authenticated {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Deref for AuthenticatedUser {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

async fn claims_of(parts: &mut Parts) -> Result<Claims, Rejection> {
    if let Some(claims) = parts.extensions.get::<Claims>() {
        return Ok(claims.clone());
    }
    let validator = parts
        .extensions
        .get::<Validator>()
        .cloned()
        .ok_or(Rejection::MissingValidator)?;
    let token = bearer_token(&parts.headers)?;
    let claims = validator.validate(token).await.map_err(|e| {
        tracing::debug!(reason = %e, "bearer token refused");
        Rejection::from(e)
    })?;
    parts.extensions.insert(claims.clone());
    Ok(claims)
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        claims_of(parts).await.map(Authenticated)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) && parts.extensions.get::<Claims>().is_none()
        {
            return Ok(None);
        }
        claims_of(parts).await.map(|c| Some(Authenticated(c)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthenticatedUser {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        let claims = claims_of(parts).await?;
        claims.require_user()?;
        Ok(AuthenticatedUser(claims))
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}
