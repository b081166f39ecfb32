//! The protocol's vocabulary: errors, parameters, identifiers, scopes, PKCE.
//! Nothing here knows HTTP frameworks or databases.

pub mod error;
pub mod params;
pub mod pkce;
pub mod types;

pub use error::{ErrorKind, OAuthError};
pub use params::Params;
pub use types::*;
