//! Users: create, list, show, change, disable, delete, passwords.

use crate::msg::{Key, Msg};
use serde::Deserialize;

use crate::model::{Language, NewUser, Password, Role, User, UserFilter, UserState};

use super::audit::Outcome;
use super::{Actor, Error, Result, Service};

/// Fields for a new user.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(default)]
    pub otp_required: bool,
    #[serde(default)]
    pub role: Option<Role>,
    /// Optional: a user without a password cannot log in until one is set.
    #[serde(default)]
    pub password: Option<Password>,
    /// Mail the user an enrollment link right away (as `POST /users/{username}/invitations`
    /// would); the answer's `invitation` says whether it went out.
    #[serde(default)]
    pub invite: bool,
}

/// A change to a user; absent fields stay as they are. An empty `phone` or `email` clears it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<Language>,
    pub otp_required: Option<bool>,
    pub role: Option<Role>,
    pub state: Option<UserState>,
}

/// A page of users.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

pub const MAX_PAGE: i64 = 500;

/// Usernames: 1-64 characters, letters, digits and `. _ - @`, starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<()> {
    let ok_len = (1..=64).contains(&name.chars().count());
    let ok_first = name.chars().next().is_some_and(char::is_alphanumeric);
    let ok_chars = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err(Error::Invalid(Msg::new(Key::UsernameFormat)))
    }
}

fn validate_email(email: &str) -> Result<()> {
    if email.is_empty() {
        return Ok(());
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(Msg::new(Key::EmailFormat)))
    }
}

/// Phone numbers: digits with optional leading `+` and separators (space, `-`, `/`, `(`, `)`).
fn validate_phone(phone: &str) -> Result<()> {
    if phone.is_empty() {
        return Ok(());
    }
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let valid = (4..=20).contains(&digits)
        && phone.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '/' | '(' | ')') || (c == '+' && i == 0)
        });
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(Msg::new(Key::PhoneFormat)))
    }
}

fn validate_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(Error::Invalid(
            Msg::new(Key::TextField).arg("field", field).arg("max", max),
        ));
    }
    Ok(())
}

impl Service {
    pub(crate) fn validate_password(&self, password: &str) -> Result<()> {
        let min = self.config.auth.min_password_length;
        let len = password.chars().count();
        if len < min || len > 1024 {
            return Err(Error::Invalid(
                Msg::new(Key::PasswordLength).arg("min", min),
            ));
        }
        Ok(())
    }

    /// Looks a user up by name or fails with `not_found`.
    pub async fn user_named(&self, username: &str) -> Result<User> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Creates a user. Creating an admin is a sensitive change. With `invite`, the user is
    /// mailed an enrollment link at once (see [`Self::create_user_invited`]).
    pub async fn create_user(&self, actor: &Actor, req: CreateUser) -> Result<User> {
        Ok(self.create_user_invited(actor, req).await?.0)
    }

    /// [`Self::create_user`], with what became of the invitation: `None` when none was asked
    /// for, else whether it was mailed. A failed invitation never undoes the user: the admin can
    /// send it again.
    pub async fn create_user_invited(
        &self,
        actor: &Actor,
        req: CreateUser,
    ) -> Result<(User, Option<Result<super::InvitationSent>>)> {
        let username = req.username.trim().to_owned();
        validate_username(&username)?;
        validate_text("display_name", &req.display_name, 200)?;
        validate_email(req.email.trim())?;
        validate_phone(req.phone.trim())?;
        let role = req.role.unwrap_or(Role::User);
        if role == Role::Admin {
            actor.require_reauth(self.clock.now())?;
        }
        let password_hash = match &req.password {
            Some(p) => {
                self.validate_password(p.expose())?;
                Some(self.hasher.hash(p.expose()).await?)
            }
            None => None,
        };
        let new = NewUser {
            display_name: req.display_name.trim().to_owned(),
            email: req.email.trim().to_owned(),
            phone: req.phone.trim().to_owned(),
            // No number, no SMS: the same as after `user set --phone ""`.
            sms_enabled: !req.phone.trim().is_empty(),
            language: req.language.unwrap_or(self.config.server.default_language),
            otp_required: req.otp_required,
            role,
            password_hash,
            username,
        };
        let user = match self.store.insert_user(&new, self.clock.now()).await {
            Ok(u) => u,
            Err(crate::store::StoreError::Conflict) => {
                return Err(Error::Conflict(
                    Msg::new(Key::UserExists).arg("name", &new.username),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            actor,
            "user.add",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!(
                "role {}, otp_required {}{}",
                user.role,
                user.otp_required,
                if user.password_hash.is_some() {
                    ", password set"
                } else {
                    ""
                }
            ),
        )
        .await?;
        let invitation = if req.invite {
            Some(self.invite_new_user(actor, &user).await)
        } else {
            None
        };
        Ok((user, invitation))
    }

    /// A page of the users whose name, display name or e-mail contains `search` and who match
    /// `filter` (e.g. those without a working device), by name.
    pub async fn list_users(
        &self,
        _actor: &Actor,
        search: &str,
        filter: UserFilter,
        limit: i64,
        offset: i64,
    ) -> Result<UserPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let offset = offset.max(0);
        let (users, total) = self
            .store
            .list_users(search.trim(), filter, self.clock.now(), limit, offset)
            .await?;
        Ok(UserPage {
            users,
            total,
            limit,
            offset,
        })
    }

    /// Changes a user. Changing the OTP requirement, phone, e-mail or role needs a fresh
    /// re-authentication. Removing the phone number also stops SMS delivery to the user.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        changes: UserChanges,
    ) -> Result<User> {
        Ok(self.update_user_invited(actor, username, changes).await?.0)
    }

    /// [`Self::update_user`], with what became of the automatic invitation the change caused
    /// (`None`: none was due).
    pub async fn update_user_invited(
        &self,
        actor: &Actor,
        username: &str,
        changes: UserChanges,
    ) -> Result<(User, Option<Result<super::InvitationSent>>)> {
        let before = self.user_named(username).await?;
        let mut user = before.clone();
        let mut changed: Vec<String> = Vec::new();
        let mut sensitive = false;
        if let Some(v) = changes.display_name {
            let v = v.trim().to_owned();
            validate_text("display_name", &v, 200)?;
            if v != user.display_name {
                user.display_name = v;
                changed.push("display_name".into());
            }
        }
        if let Some(v) = changes.email {
            let v = v.trim().to_owned();
            validate_email(&v)?;
            if v != user.email {
                changed.push(if v.is_empty() {
                    "email cleared".into()
                } else {
                    "email".into()
                });
                user.email = v;
                sensitive = true;
            }
        }
        if let Some(v) = changes.phone {
            let v = v.trim().to_owned();
            validate_phone(&v)?;
            if v != user.phone {
                if v.is_empty() {
                    // Removing the number ends SMS delivery for this user (SPEC F3).
                    user.sms_enabled = false;
                    changed.push("phone cleared, SMS disabled".into());
                } else {
                    user.sms_enabled = true;
                    changed.push("phone".into());
                }
                user.phone = v;
                sensitive = true;
            }
        }
        if let Some(v) = changes.language
            && v != user.language
        {
            user.language = v;
            changed.push(format!("language {v}"));
        }
        if let Some(v) = changes.otp_required
            && v != user.otp_required
        {
            user.otp_required = v;
            changed.push(format!("otp_required {v}"));
            sensitive = true;
        }
        if let Some(v) = changes.role
            && v != user.role
        {
            user.role = v;
            changed.push(format!("role {v}"));
            sensitive = true;
        }
        if let Some(v) = changes.state
            && v != user.state
        {
            user.state = v;
            changed.push(format!("state {v}"));
        }
        if changed.is_empty() {
            return Ok((before, None));
        }
        let now = self.clock.now();
        if sensitive && let Err(e) = actor.require_reauth(now) {
            self.audit(
                actor,
                "user.set",
                format!("user:{}", before.username),
                &before.username,
                Outcome::Failure,
                format!("re-authentication required for: {}", changed.join(", ")),
            )
            .await?;
            return Err(e);
        }
        self.guard_last_admin(&before, &user).await?;
        if actor.admin_id() == Some(before.id) && user.state == UserState::Disabled {
            return Err(Error::Invalid(Msg::new(Key::DisableSelf)));
        }
        user.updated_at = now;
        if !self.store.update_user(&user).await? {
            return Err(Error::NotFound("user"));
        }
        if user.state == UserState::Disabled {
            self.store.delete_sessions_of(user.id).await?;
        }
        self.audit(
            actor,
            "user.set",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            changed.join(", "),
        )
        .await?;
        let invitation = self.after_user_update(actor, &before, &user).await;
        Ok((user, invitation))
    }

    /// Refuses a change that would leave no active admin able to log in.
    async fn guard_last_admin(&self, before: &User, after: &User) -> Result<()> {
        let was_admin = before.role == Role::Admin
            && before.state == UserState::Active
            && before.password_hash.is_some();
        let still_admin = after.role == Role::Admin
            && after.state == UserState::Active
            && after.password_hash.is_some();
        if was_admin && !still_admin && self.store.count_active_admins().await? <= 1 {
            return Err(Error::Invalid(Msg::new(Key::LastAdmin)));
        }
        Ok(())
    }

    /// Deletes a user with all tokens, secrets and sessions. The audit keeps the event.
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        if actor.admin_id() == Some(user.id) {
            return Err(Error::Invalid(Msg::new(Key::DeleteSelf)));
        }
        let mut gone = user.clone();
        gone.state = UserState::Disabled;
        self.guard_last_admin(&user, &gone).await?;
        let tokens = self.store.tokens_of(user.id).await?.len();
        if !self.store.delete_user(user.id).await? {
            return Err(Error::NotFound("user"));
        }
        self.audit(
            actor,
            "user.delete",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("{tokens} token(s) deleted with the user"),
        )
        .await?;
        Ok(())
    }

    /// On a fresh installation (no active admin), creates the admin `admin` with a random
    /// password and returns it, to be shown once. Does nothing otherwise.
    pub async fn create_first_admin(&self) -> Result<Option<(String, Password)>> {
        if self.store.count_active_admins().await? > 0
            || self.store.user_by_name("admin").await?.is_some()
        {
            return Ok(None);
        }
        let password = Password::new(crate::crypto::random_readable(20)?);
        let actor = Actor {
            principal: super::Principal::Operator,
            source: "first-start".into(),
        };
        let user = self
            .create_user(
                &actor,
                CreateUser {
                    username: "admin".into(),
                    display_name: "Administrator".into(),
                    role: Some(Role::Admin),
                    password: Some(password.clone()),
                    ..CreateUser::default()
                },
            )
            .await?;
        Ok(Some((user.username, password)))
    }

    /// Sets a user's password (admin or operator). Ends the user's sessions.
    pub async fn set_password(&self, actor: &Actor, username: &str, password: &str) -> Result<()> {
        let mut user = self.user_named(username).await?;
        self.validate_password(password)?;
        if user.role == Role::Admin {
            actor.require_reauth(self.clock.now())?;
        }
        user.password_hash = Some(self.hasher.hash(password).await?);
        user.updated_at = self.clock.now();
        if !self.store.update_user(&user).await? {
            return Err(Error::NotFound("user"));
        }
        self.store.delete_sessions_of(user.id).await?;
        self.audit(
            actor,
            "user.passwd",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "password set",
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a", "alice.smith@example.com", "Jörg-1", "x_y"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " alice",
            ".alice",
            "al ice",
            "a/b",
            &"x".repeat(65),
            "a\u{0}",
        ] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_phones() {
        assert!(validate_email("a@b.de").is_ok());
        assert!(validate_email("").is_ok());
        for bad in ["a", "a@b", "@b.de", "a@.de", "a b@c.de", "a@b@c.de"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_phone("+49 (30) 123-4567").is_ok());
        for bad in ["12", "+49 30 12a", "49+301234", "+"] {
            assert!(validate_phone(bad).is_err(), "{bad}");
        }
    }
}
