//! A short-lived cache of users and their tokens for the validation hot path.
//!
//! An entry lives for the rest of the current second. It never decides anything alone: accepting
//! a code is still the conditional update in the database, which also refuses a token that is no
//! longer active or is throttled. What staleness can do, at most for that second: a token added,
//! a user disabled or a password changed on another node (or by the CLI) takes effect up to a
//! second later on this one. Failures drop the user's entry, so throttling state is re-read.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;
use crate::model::{Token, TokenId, User};

/// A user, their tokens, and the second they were read.
type Entry = (User, Vec<Token>, UnixTime);

#[derive(Debug, Default)]
pub(crate) struct UserCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// Above this many entries the cache is emptied (it refills within a second).
const MAX_ENTRIES: usize = 100_000;

impl UserCache {
    pub(crate) fn get(&self, username: &str, now: UnixTime) -> Option<(User, Vec<Token>)> {
        let entries = self.entries.lock().ok()?;
        let (user, tokens, at) = entries.get(&username.to_lowercase())?;
        (*at == now).then(|| (user.clone(), tokens.clone()))
    }

    pub(crate) fn put(&self, user: &User, tokens: &[Token], now: UnixTime) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                user.username.to_lowercase(),
                (user.clone(), tokens.to_vec(), now),
            );
        }
    }

    pub(crate) fn forget(&self, username: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&username.to_lowercase());
        }
    }

    /// Records an accepted counter or step, so the next request of this second starts there.
    pub(crate) fn advanced(&self, username: &str, token: TokenId, matched: i64) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some((_, tokens, _)) = entries.get_mut(&username.to_lowercase())
            && let Some(t) = tokens.iter_mut().find(|t| t.id == token)
        {
            t.next_counter = t.next_counter.max(matched.saturating_add(1));
            // The accept cleared the token's failures (the next claim must see that count).
            t.fail_count = 0;
            t.throttled_until = 0;
        }
    }
}
