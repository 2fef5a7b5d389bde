//! The access tokens (`migrations/0008_tokens.sql`; the rules are in `crate::auth`).

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::SqlResult;
use crate::auth::{default_name, NewToken, TokenRow};

const COLUMNS: &str = "id, name, agent_id, admin, created, expires, revoked, hash";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    let hash: Vec<u8> = row.get(7)?;
    let mut fixed = [0u8; 32];
    if hash.len() == 32 {
        fixed.copy_from_slice(&hash);
    }
    Ok(TokenRow {
        id: row.get(0)?,
        name: row.get(1)?,
        agent_id: row.get(2)?,
        admin: row.get(3)?,
        created_ms: row.get(4)?,
        expires_ms: row.get(5)?,
        revoked_ms: row.get(6)?,
        hash: fixed,
    })
}

/// Inserts the token (named by default after its id) with the hash of its secret,
/// which `hash_of` makes from the id; `None` when the name is taken.
pub(super) fn create(
    tx: &Transaction<'_>,
    new: &NewToken<'_>,
    hash_of: &dyn Fn(i64) -> [u8; 32],
) -> SqlResult<Option<TokenRow>> {
    if let Some(name) = new.name {
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)")?
            .query_row([name], |r| r.get(0))?;
        if taken {
            return Ok(None);
        }
    }
    let id: i64 = tx
        .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM tokens")?
        .query_row([], |r| r.get(0))?;
    let name = match new.name {
        Some(name) => name.to_owned(),
        None => {
            // The default name, unless someone chose it for another token: then the
            // first free one after it.
            let base = default_name(new.agent_id, id);
            let mut name = base.clone();
            let mut n = 1;
            while tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)")?
                .query_row([&name], |r| r.get::<_, bool>(0))?
            {
                n += 1;
                name = format!("{base}-{n}");
            }
            name
        }
    };
    let hash = hash_of(id);
    let now = crate::backend::now_ms();
    tx.prepare_cached(
        "INSERT INTO tokens (id, name, agent_id, admin, hash, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        name,
        new.agent_id,
        new.admin,
        &hash[..],
        now,
        new.lifetime_ms.map(|ms| now + ms)
    ])?;
    token(tx, id)
}

/// Every token, oldest first.
pub(super) fn list(conn: &Connection) -> SqlResult<Vec<TokenRow>> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
    let rows = statement.query_map([], token_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The token `id`, if there is one.
pub(super) fn token(conn: &Connection, id: i64) -> SqlResult<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"))?
        .query_row([id], token_from_row)
        .optional()?)
}

/// Marks the token revoked (once); `None` when there is no such token.
pub(super) fn revoke(tx: &Transaction<'_>, id: i64) -> SqlResult<Option<TokenRow>> {
    tx.prepare_cached("UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL")?
        .execute(params![id, crate::backend::now_ms()])?;
    token(tx, id)
}
