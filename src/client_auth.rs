//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3, §3.2.1): HTTP Basic or the request body, never both.

use crate::model::{AuthMethod, Client, ClientKind};
use crate::oauth::{ClientSecret, OAuthError, Params};
use crate::secrets::SecretHasher;
use std::sync::Arc;

use crate::client_cache::ClientCache;
use crate::clock::UnixTime;

/// How the client presented itself, as the HTTP layer found it.
#[derive(Debug)]
pub enum Presented {
    /// `Authorization: Basic`, both parts already form-decoded (§2.3.1).
    Basic {
        client_id: String,
        secret: ClientSecret,
    },
    /// No Authorization header: whatever the body carries.
    Body,
}

/// A client that proved who it is. Only [`authenticate`] builds one.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    client: Arc<Client>,
    method: AuthMethod,
}

impl AuthenticatedClient {
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn id(&self) -> &str {
        &self.client.id
    }
    pub fn method(&self) -> AuthMethod {
        self.method
    }
}

fn invalid_client() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// Authenticates the client of a back-channel request.
pub async fn authenticate(
    clients: &ClientCache,
    now: UnixTime,
    hasher: &SecretHasher,
    presented: Presented,
    params: &Params,
) -> Result<AuthenticatedClient, OAuthError> {
    let (client_id, secret, method) = match presented {
        Presented::Basic { client_id, secret } => {
            // RFC 6749 §2.3: one authentication method per request.
            if params.has("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            if params.get("client_id").is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the authenticated client",
                ));
            }
            (client_id, Some(secret), AuthMethod::ClientSecretBasic)
        }
        Presented::Body => {
            let Some(client_id) = params.get("client_id") else {
                return Err(OAuthError::invalid_client(
                    "client authentication is required",
                ));
            };
            match params.get("client_secret") {
                Some(s) => (
                    client_id.to_owned(),
                    Some(ClientSecret::new(s)),
                    AuthMethod::ClientSecretPost,
                ),
                None => (client_id.to_owned(), None, AuthMethod::None),
            }
        }
    };
    let client = clients
        .client(&client_id, now)
        .await?
        .ok_or_else(invalid_client)?;
    match (client.kind, &secret, &client.secret_hash) {
        (ClientKind::Confidential, Some(secret), Some(stored)) => {
            if !hasher.verify_client_secret(secret, stored) {
                return Err(invalid_client());
            }
        }
        (ClientKind::Public, None, _) => {}
        // A confidential client without a secret, or a public one presenting a secret.
        _ => return Err(invalid_client()),
    }
    // OIDC Core §9: a client registered for one method may not use another.
    if client.auth_method.is_some_and(|m| m != method) {
        return Err(OAuthError::invalid_client(format!(
            "this client must authenticate with {}",
            client
                .auth_method
                .map(AuthMethod::as_str)
                .unwrap_or_default()
        )));
    }
    Ok(AuthenticatedClient { client, method })
}
