//! Use cases behind the admin CLI: clients (secret shown once), users, keys.

use uuid::Uuid;

use crate::clock::UnixTime;
use crate::keys::{self, KeyError, KeyState};
use crate::model::{AuthMethod, Client, ClientKind, Profile, User, validate_redirect_uri};
use crate::oauth::{ClientSecret, GrantType, KeyAlg, Password, ScopeSet};
use crate::secrets::{self, SecretHasher};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request itself is wrong (bad value, unknown id): nothing was changed.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => AdminError::Conflict("it already exists".into()),
            e => AdminError::Store(e),
        }
    }
}

/// What `client create` asks for.
#[derive(Debug, Default)]
pub struct NewClient {
    pub name: String,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scope: Option<String>,
    pub resources: Vec<String>,
    pub access_token_ttl: Option<i64>,
    /// Overrides of the configured refresh-token idle and absolute lifetimes.
    pub refresh_idle_ttl: Option<i64>,
    pub refresh_absolute_ttl: Option<i64>,
    pub first_party: bool,
    pub auth_method: Option<AuthMethod>,
}

pub async fn create_client(
    store: &dyn Store,
    hasher: &SecretHasher,
    req: NewClient,
    key_retention: i64,
    now: UnixTime,
) -> Result<(Client, Option<ClientSecret>), AdminError> {
    let invalid = |m: String| AdminError::Invalid(m);
    if req.name.trim().is_empty() {
        return Err(invalid("--name must not be empty".into()));
    }
    let kind = if req.public {
        ClientKind::Public
    } else {
        ClientKind::Confidential
    };
    let mut grant_types = req.grant_types.clone();
    if grant_types.is_empty() {
        grant_types = match kind {
            ClientKind::Public => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            ClientKind::Confidential => vec![GrantType::ClientCredentials],
        };
    }
    grant_types.sort();
    grant_types.dedup();
    for g in &grant_types {
        if g.confidential_only() && kind == ClientKind::Public {
            return Err(invalid(format!("a public client cannot use the {g} grant")));
        }
    }
    let redirected = grant_types
        .iter()
        .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::Implicit));
    if redirected && req.redirect_uris.is_empty() {
        return Err(invalid(
            "authorization_code and implicit need at least one --redirect-uri".into(),
        ));
    }
    for uri in req
        .redirect_uris
        .iter()
        .chain(&req.post_logout_redirect_uris)
    {
        // A URI has no whitespace (RFC 3986 §2); the URL parser would drop or encode it,
        // and the store keeps lists space-separated, so "https://a/cb evil" would come
        // back as two URIs, one never checked.
        if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!("{uri:?} must not contain whitespace")));
        }
        validate_redirect_uri(uri).map_err(invalid)?;
    }
    for r in &req.resources {
        let ok = url::Url::parse(r).is_ok_and(|u| u.fragment().is_none())
            && !r.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(invalid(format!(
                "--resource {r:?} must be an absolute URI without a fragment"
            )));
        }
    }
    let scopes = match &req.scope {
        Some(s) => {
            ScopeSet::parse(s).map_err(|_| invalid("--scope has an invalid character".into()))?
        }
        None => default_scopes(&grant_types),
    };
    let ttl = req.access_token_ttl.unwrap_or(3600);
    // A key must outlive every token it signed.
    let max = key_retention;
    if ttl <= 0 || ttl > max {
        return Err(invalid(format!(
            "--access-token-ttl must be between 1 and {max} seconds"
        )));
    }
    for (flag, v) in [
        ("--refresh-idle-ttl", req.refresh_idle_ttl),
        ("--refresh-absolute-ttl", req.refresh_absolute_ttl),
    ] {
        if v.is_some_and(|v| v <= 0 || v > 10 * 365 * 86400) {
            return Err(invalid(format!(
                "{flag} must be a positive number of seconds"
            )));
        }
    }
    let auth_method = match (kind, req.auth_method) {
        (ClientKind::Public, None | Some(AuthMethod::None)) => Some(AuthMethod::None),
        (ClientKind::Public, Some(m)) => {
            return Err(invalid(format!(
                "a public client cannot use {}",
                m.as_str()
            )));
        }
        (ClientKind::Confidential, Some(AuthMethod::None)) => {
            return Err(invalid(
                "a confidential client needs a secret-based --auth-method".into(),
            ));
        }
        (ClientKind::Confidential, m) => m,
    };
    // 128 random bits; a leading letter or digit keeps ids easy to pass on a command line.
    let id = loop {
        let id = secrets::random_b64(16).map_err(|e| invalid(e.to_string()))?;
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            break id;
        }
    };
    let secret = match kind {
        ClientKind::Confidential => Some(ClientSecret::new(
            secrets::random_token().map_err(|e| invalid(e.to_string()))?,
        )),
        ClientKind::Public => None,
    };
    let client = Client {
        id,
        name: req.name.trim().to_owned(),
        kind,
        secret_hash: secret.as_ref().map(|s| hasher.hash_client_secret(s)),
        auth_method,
        grant_types,
        redirect_uris: req.redirect_uris,
        post_logout_redirect_uris: req.post_logout_redirect_uris,
        scopes,
        resources: req.resources,
        access_token_ttl: ttl,
        refresh_idle_ttl: req.refresh_idle_ttl,
        refresh_absolute_ttl: req.refresh_absolute_ttl,
        first_party: req.first_party,
        created_at: now,
    };
    store.insert_client(&client).await?;
    Ok((client, secret))
}

/// Clients that sign users in get the OIDC scopes by default; others none.
fn default_scopes(grants: &[GrantType]) -> ScopeSet {
    let user_facing = grants.iter().any(|g| {
        matches!(
            g,
            GrantType::AuthorizationCode | GrantType::Implicit | GrantType::Password
        )
    });
    let mut s = String::new();
    if user_facing {
        s.push_str("openid profile email");
        if grants.contains(&GrantType::RefreshToken) {
            s.push_str(" offline_access");
        }
    }
    ScopeSet::parse(&s).unwrap_or_default()
}

pub async fn client(store: &dyn Store, id: &str) -> Result<Client, AdminError> {
    store
        .client(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client with id {id:?}")))
}

pub async fn delete_client(store: &dyn Store, id: &str, now: UnixTime) -> Result<(), AdminError> {
    if store.delete_client(id, now).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no client with id {id:?}")))
    }
}

/// What `user create` asks for.
#[derive(Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub profile: Profile,
}

/// Shortest password accepted (NIST SP 800-63B §5.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

fn check_password(p: &Password, max_bytes: usize) -> Result<(), AdminError> {
    if p.secret().chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if p.secret().len() > max_bytes {
        return Err(AdminError::Invalid(format!(
            "the password must have at most {max_bytes} bytes"
        )));
    }
    Ok(())
}

pub async fn create_user(
    store: &dyn Store,
    req: NewUser,
    password: Password,
    max_password_bytes: usize,
    now: UnixTime,
) -> Result<User, AdminError> {
    let username = req.username.trim().to_owned();
    if username.is_empty() || username.len() > 255 || username.chars().any(char::is_control) {
        return Err(AdminError::Invalid(
            "--username must be 1-255 printable characters".into(),
        ));
    }
    // Users are looked up by id or username; a username shaped like an id would be ambiguous.
    if Uuid::parse_str(&username).is_ok() {
        return Err(AdminError::Invalid(
            "--username must not look like a user id (a UUID)".into(),
        ));
    }
    check_password(&password, max_password_bytes)?;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))?
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let user = User {
        id: Uuid::new_v4(),
        username: username.clone(),
        password_hash: hash,
        profile: req.profile,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    match store.insert_user(&user).await {
        Err(StoreError::Conflict { .. }) => Err(AdminError::Conflict(format!(
            "a user named {username:?} already exists"
        ))),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(user),
    }
}

/// A user by id or, failing that, by username.
pub async fn user(store: &dyn Store, id_or_name: &str) -> Result<User, AdminError> {
    let found = match Uuid::parse_str(id_or_name) {
        Ok(id) => store.user(id).await?,
        Err(_) => None,
    };
    let found = match found {
        Some(u) => Some(u),
        None => store.user_by_username(id_or_name).await?,
    };
    found.ok_or_else(|| AdminError::NotFound(format!("no user {id_or_name:?}")))
}

pub async fn delete_user(
    store: &dyn Store,
    id_or_name: &str,
    now: UnixTime,
) -> Result<(), AdminError> {
    let u = user(store, id_or_name).await?;
    store.delete_user(u.id, now).await?;
    Ok(())
}

pub async fn set_password(
    store: &dyn Store,
    id_or_name: &str,
    password: Password,
    max_bytes: usize,
    now: UnixTime,
) -> Result<(), AdminError> {
    check_password(&password, max_bytes)?;
    let u = user(store, id_or_name).await?;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))?
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    store.set_password(u.id, &hash, now).await?;
    Ok(())
}

pub async fn set_disabled(
    store: &dyn Store,
    id_or_name: &str,
    disabled: bool,
    now: UnixTime,
) -> Result<User, AdminError> {
    let u = user(store, id_or_name).await?;
    store.set_disabled(u.id, disabled, now).await?;
    user(store, &u.id.to_string()).await
}

/// One row of `keys list`.
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: &'static str,
    pub state: &'static str,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_until: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<UnixTime>,
}

pub async fn list_keys(
    store: &dyn Store,
    now: UnixTime,
    retention: i64,
) -> Result<Vec<KeyInfo>, AdminError> {
    let records = store.keys().await?;
    let states = keys::states(&records, now, retention);
    Ok(records
        .iter()
        .zip(states)
        .map(|(r, s)| KeyInfo {
            kid: r.kid.clone(),
            alg: r.alg.as_str(),
            state: s.as_str(),
            created_at: r.created_at,
            activates_at: r.activates_at,
            published_until: match s {
                KeyState::Retiring { until } => Some(until),
                KeyState::Next | KeyState::Active | KeyState::Retired => None,
            },
            retired_at: r.retired_at,
        })
        .collect())
}

pub async fn rotate_keys(
    store: &dyn Store,
    alg: KeyAlg,
    now: UnixTime,
    staged_lead: Option<i64>,
) -> Result<KeyInfo, AdminError> {
    let rec = keys::rotate(store, alg, now, staged_lead).await?;
    Ok(KeyInfo {
        kid: rec.kid,
        alg: rec.alg.as_str(),
        state: if staged_lead.is_some() {
            "next"
        } else {
            "active"
        },
        created_at: rec.created_at,
        activates_at: rec.activates_at,
        published_until: None,
        retired_at: None,
    })
}

pub async fn retire_key(
    store: &dyn Store,
    kid: &str,
    alg: KeyAlg,
    now: UnixTime,
    retention: i64,
) -> Result<(), AdminError> {
    if keys::retire(store, kid, alg, now, retention).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!(
            "no published key with kid {kid:?}"
        )))
    }
}
