//! Hardware tokens in stock (the inventory) and the imports they came from. Kept apart from
//! users' tokens: a token in stock belongs to nobody; assigning it moves a copy into `tokens`.

use serde::{Deserialize, Serialize};

use super::{Serial, TokenId, TokenKind};
use crate::clock::UnixTime;

text_enum!(
    /// Where a token in the inventory is: `in_stock` until assigned, `retired` when taken out.
    InventoryState { InStock = "in_stock", Assigned = "assigned", Retired = "retired" }
);

/// A token in the inventory. `Debug` leaves out the sealed seed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct InventoryToken {
    pub id: i64,
    pub serial: Serial,
    pub kind: TokenKind,
    #[serde(serialize_with = "algorithm_ser")]
    pub algorithm: tessera_otp::HashAlgorithm,
    pub digits: u32,
    pub period: u64,
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    /// HOTP: the next counter the device will use.
    pub counter: i64,
    /// TOTP: the device clock's known offset, in steps.
    pub drift: i64,
    pub manufacturer: String,
    pub model: String,
    pub not_before: Option<UnixTime>,
    pub not_after: Option<UnixTime>,
    pub state: InventoryState,
    pub import_id: Option<i64>,
    /// The user's token made from it, once assigned.
    pub token_id: Option<TokenId>,
    pub assigned_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for InventoryToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InventoryToken")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn algorithm_ser<S: serde::Serializer>(
    a: &tessera_otp::HashAlgorithm,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

/// A token to put in stock.
#[derive(Clone)]
pub struct NewInventoryToken {
    pub serial: Serial,
    pub kind: TokenKind,
    pub algorithm: tessera_otp::HashAlgorithm,
    pub digits: u32,
    pub period: u64,
    pub sealed_secret: Vec<u8>,
    pub counter: i64,
    pub drift: i64,
    pub manufacturer: String,
    pub model: String,
    pub not_before: Option<UnixTime>,
    pub not_after: Option<UnixTime>,
}

impl std::fmt::Debug for NewInventoryToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInventoryToken")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// One import as recorded: who, when, which file (its SHA-256), what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRecord {
    pub id: i64,
    pub actor: String,
    pub format: String,
    pub file_sha256: String,
    pub created_at: UnixTime,
    pub imported: i64,
    pub updated: i64,
    pub existing: i64,
    pub skipped: i64,
    /// The report (JSON): skips with their reasons, warnings. Never secrets.
    pub report: String,
}

/// What to list of the inventory.
#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    /// Part of the serial, manufacturer or model (ignoring case).
    pub search: String,
    pub state: Option<InventoryState>,
    pub kind: Option<TokenKind>,
    /// The maker exactly as stored (empty: any).
    pub manufacturer: String,
}
