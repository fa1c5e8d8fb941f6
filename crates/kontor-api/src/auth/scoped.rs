//! Scopes as types: a handler names the scope it needs in its signature (`Scoped<UsersWrite>`),
//! and the scope is checked while the request's parts are read — before any body is parsed. A
//! token without the scope therefore gets 403 whatever the body holds, and a handler cannot
//! forget the check.

use std::marker::PhantomData;
use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use kontor_domain::tenant::Scope;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// A scope a handler may require.
pub trait RequiredScope: Send + Sync {
    const SCOPE: Scope;
}

/// An authenticated request whose token holds the scope `S`.
#[derive(Debug)]
pub struct Scoped<S>(Authenticated, PhantomData<S>);

impl<S> Deref for Scoped<S> {
    type Target = Authenticated;

    fn deref(&self) -> &Authenticated {
        &self.0
    }
}

impl<S: RequiredScope> FromRequestParts<AppState> for Scoped<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        auth.require(S::SCOPE)?;
        Ok(Scoped(auth, PhantomData))
    }
}

macro_rules! scopes {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("The `", stringify!($name), "` scope as a type.")]
        #[derive(Debug)]
        pub struct $name;

        impl RequiredScope for $name {
            const SCOPE: Scope = Scope::$name;
        }
    )*};
}

scopes!(
    UsersRead,
    UsersWrite,
    ConnectionsRead,
    ConnectionsWrite,
    AccountsRead,
    EventsRead,
    PaymentsRead,
    PaymentsWrite,
    WebhooksManage,
);
