//! Who is acting, and the two authorisation rules every admin operation starts with: "is an
//! admin" and "re-authenticated recently" (for sensitive changes).

use crate::clock::UnixTime;
use crate::model::UserId;
use crate::msg::{Key, Msg};

use super::{Error, Result};

/// The acting party of an operation, with where the request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: Principal,
    /// Source address of the request (`127.0.0.1`), or `cli` for the local operator.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The local operator using the CLI on the server's own database: full rights, since whoever
    /// can run it can read the database and the key file anyway.
    Operator,
    /// An admin logged in to the API with a session.
    Admin {
        id: UserId,
        username: String,
        /// Elevated rights for sensitive changes until this time (0: none).
        reauth_until: UnixTime,
    },
    /// A user acting on their own account through a link that proves who they are (an
    /// enrollment link). No admin rights.
    SelfService { username: String },
}

impl Actor {
    /// The local operator (CLI).
    pub fn operator() -> Actor {
        Actor {
            principal: Principal::Operator,
            source: "cli".to_owned(),
        }
    }

    /// The name the audit log records.
    pub fn audit_name(&self) -> String {
        match &self.principal {
            Principal::Operator => "cli:operator".to_owned(),
            Principal::Admin { username, .. } => format!("user:{username}"),
            Principal::SelfService { username } => format!("self:{username}"),
        }
    }

    /// Sensitive changes (OTP requirement, phone, e-mail, removing devices, creating admins or
    /// application keys) need a password re-entered within the last few minutes.
    pub fn require_reauth(&self, now: UnixTime) -> Result<()> {
        match &self.principal {
            Principal::Operator => Ok(()),
            Principal::Admin { reauth_until, .. } if *reauth_until > now => Ok(()),
            Principal::Admin { .. } => Err(Error::ReauthRequired),
            Principal::SelfService { .. } => Err(Error::Forbidden(Msg::new(Key::NotAdmin))),
        }
    }

    /// The admin's own user id, if the actor is a logged-in admin.
    pub fn admin_id(&self) -> Option<UserId> {
        match &self.principal {
            Principal::Admin { id, .. } => Some(*id),
            Principal::Operator | Principal::SelfService { .. } => None,
        }
    }
}
