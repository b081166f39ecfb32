//! A tower layer that admits only requests with a valid bearer token (and, if asked, the
//! right scopes and a user behind it), answering everything else per RFC 6750 §3.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::claims::Claims;
use crate::rejection::{Rejection, bearer_token};
use crate::validator::Validator;

/// Validates the bearer token of every request before the inner service sees it.
///
/// A request that passes reaches the inner service with its [`Claims`] in the request
/// extensions (read them with the [`Authenticated`](crate::Authenticated) extractor or
/// `Extension<Claims>`). Any other request is answered by the layer with the
/// [`Rejection`]'s status and `WWW-Authenticate` challenge and an empty body; the inner
/// service never runs.
///
/// Works with any `tower::Service<http::Request<_>>` whose response body implements
/// `Default` (axum, hyper, tonic services). Stacked layers with the same validator
/// validate once and only add their requirements.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use latchkey_resource::{Authenticated, BearerLayer, Validator};
///
/// # fn app(validator: Validator) -> Router {
/// Router::new()
///     // user tokens with the "orders:write" scope only
///     .route("/orders", get(|| async { "orders" })
///         .route_layer(BearerLayer::new(validator.clone()).require_user().require_scope("orders:write")))
///     // any valid token, user or client
///     .route("/health/deep", get(|Authenticated(claims): Authenticated| async move { claims.client_id().to_owned() }))
///     .layer(BearerLayer::new(validator))
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct BearerLayer {
    validator: Validator,
    require: Arc<Requirements>,
}

#[derive(Clone, Debug, Default)]
struct Requirements {
    scopes: Vec<String>,
    user: bool,
}

/// Marks claims as validated by one validator, so stacked layers validate once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ValidatedBy(usize);

impl BearerLayer {
    /// Admits any request whose bearer token `validator` accepts.
    pub fn new(validator: Validator) -> Self {
        BearerLayer {
            validator,
            require: Arc::new(Requirements::default()),
        }
    }

    /// Also requires `scope`; without it the answer is 403 `insufficient_scope` naming it.
    /// Call again for each further scope required.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.require).scopes.push(scope.into());
        self
    }

    /// Also requires a user behind the token: client_credentials tokens get 403
    /// `insufficient_scope`.
    pub fn require_user(mut self) -> Self {
        Arc::make_mut(&mut self.require).user = true;
        self
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            inner,
            validator: self.validator.clone(),
            require: self.require.clone(),
        }
    }
}

/// The service [`BearerLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct BearerService<S> {
    inner: S,
    validator: Validator,
    require: Arc<Requirements>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready is the one called (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let require = self.require.clone();
        Box::pin(async move {
            match admit(&validator, &require, &mut req).await {
                Ok(()) => inner.call(req).await,
                Err(rejection) => {
                    tracing::debug!(reason = %rejection, status = rejection.status().as_u16(), "bearer request refused");
                    Ok(rejection.to_response())
                }
            }
        })
    }
}

async fn admit<B>(
    validator: &Validator,
    require: &Requirements,
    req: &mut Request<B>,
) -> Result<(), Rejection> {
    let by = ValidatedBy(validator.id());
    let known = req.extensions().get::<ValidatedBy>() == Some(&by);
    let claims = match req.extensions().get::<Claims>() {
        Some(c) if known => c.clone(),
        _ => {
            let token = bearer_token(req.headers())?;
            validator.validate(token).await?
        }
    };
    if require.user {
        claims.require_user()?;
    }
    for scope in &require.scopes {
        claims.require_scope(scope)?;
    }
    let ext = req.extensions_mut();
    ext.insert(claims);
    ext.insert(by);
    Ok(())
}
