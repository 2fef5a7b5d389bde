//! The connections of one PostgreSQL store: a small pool, transactions that retry
//! the conflicts PostgreSQL asks a client to retry, and the events of each write.
//!
//! - **The URL.** `postgresql://` or `postgres://`, as libpq takes it. Two parameters
//!   are the store's own and are taken out before the rest goes to the driver:
//!   `pool_size` (connections kept, 1 to 256; default 8) and `sslrootcert` (a PEM file
//!   of the certificate authorities to trust, besides the system's); `sslmode` also
//!   takes libpq's `verify-ca` and `verify-full` (see [`tls`]).
//! - **The pool.** A call takes an idle connection, or opens one when fewer than
//!   `pool_size` are open, or waits — within its busy timeout — for one to come back.
//!   A read never waits for a connection a write holds (SPEC §8): past `pool_size` it
//!   opens one more for each connection writes use, closed when it comes back.
//!   A connection that failed (the server restarted, the network dropped) is not put
//!   back: the next call opens a fresh one, so a store carries on by itself once the
//!   server is back.
//! - **Writes** run in one transaction at READ COMMITTED. Rows are locked as they are
//!   read for a change (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED` for claims), so
//!   writers of different tasks run side by side. A transaction that PostgreSQL
//!   aborts as a deadlock or serialization failure is run again from the start, until
//!   the busy timeout. Its events are inserted by its last statement, which takes
//!   their seqs from the feed's one row and holds it until the commit: seqs grow with
//!   commit order.
//! - **Counts.** Each pooled connection takes a shard of the counts of its own as it
//!   opens ([`take_shard`]), so that writers of one agent never wait for each other's
//!   row of counts; readers sum the shards.
//! - **Statements** are planned once per connection. Those sent with a `BEGIN` or a
//!   `COMMIT` go by the simple protocol, as `EXECUTE` of a statement the connection
//!   prepared with `PREPARE` the first time it ran it ([`Tx::named`]); the others are
//!   prepared by the extended protocol.
//! - **Time.** Each write reads the database's clock once, as it begins; every time
//!   it stores (task times, lease times, event times) is that one.
//! - **Fork.** A call in a process forked from the one that opened the store is a
//!   `storage` error and touches nothing (the parent's sockets are not the child's).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Row, SimpleQueryMessage, SimpleQueryRow, Statement};
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Fail, PgResult};
use crate::error::{Error, Result};
use crate::history::EventKind;

/// Connections kept open by default.
const DEFAULT_POOL_SIZE: usize = 8;

/// How often a transaction that PostgreSQL aborted as a conflict is tried again.
const RETRIES: u32 = 20;

/// How long after the lock timeout was set a statement of a write may be sent without
/// setting it again (see [`Tx::refresh_lock_timeout`]): the most a write may wait past
/// its busy timeout.
const TIMEOUT_SLACK: Duration = Duration::from_millis(20);

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The parts of a store URL: the driver's configuration and the store's own settings.
pub(super) struct Url {
    pub config: postgres::Config,
    pub pool_size: usize,
    pub root_cert: Option<String>,
    /// Whether the server's certificate is verified: with `sslmode=verify-ca` or
    /// `verify-full`, or when `sslrootcert` is given (a file, or `system`: the system's
    /// authorities alone), as libpq does; never over a Unix socket or with
    /// `sslmode=disable`.
    pub verify: bool,
    /// The URL without its password, for messages.
    pub shown: String,
}

/// Whether `text` names a PostgreSQL database rather than a file.
pub(crate) fn is_url(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

impl Url {
    /// Parses a store URL; an `invalid_input` error names what is wrong.
    pub(super) fn parse(text: &str) -> Result<Url> {
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let mut kept = Vec::new();
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut root_cert = None;
        let mut verify = false;
        let mut require = false;
        let mut disabled = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "pool_size" => {
                    pool_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=256).contains(n))
                        .ok_or_else(|| {
                            Error::invalid(format!(
                                "the URL's pool_size must be a whole number from 1 to 256, got {value:?}"
                            ))
                        })?;
                }
                // libpq 16's "system": the system's authorities only, and checked.
                "sslrootcert" if value == "system" => verify = true,
                "sslrootcert" => root_cert = Some(percent_decode(value)),
                // The driver knows disable, prefer and require; the verifying modes are
                // require with the certificate checked, and allow (plain text first,
                // TLS if the server insists) is taken as prefer, which asks for TLS
                // first: never less protected than what was asked.
                "sslmode" if value == "verify-ca" || value == "verify-full" => {
                    verify = true;
                    require = true;
                }
                "sslmode" if value == "allow" => kept.push("sslmode=prefer"),
                "sslmode" if value == "disable" => {
                    disabled = true;
                    kept.push(pair);
                }
                _ => kept.push(pair),
            }
        }
        // A check of the certificate needs TLS: the verifying modes and
        // sslrootcert=system are require with the certificate checked.
        if require || (verify && !disabled && !kept.iter().any(|p| p.starts_with("sslmode="))) {
            kept.push("sslmode=require");
        }
        let driver = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let shown = hide_password(text);
        let config: postgres::Config = driver.parse().map_err(|e: postgres::Error| {
            // The driver's error says only "invalid connection string"; its source says
            // what (an unknown parameter, a value it does not take).
            let why = match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            };
            Error::invalid(format!(
                "the PostgreSQL URL {shown} is not valid ({why}); write it as \
                 postgresql://user[:password]@host[:port]/database[?sslmode=require]"
            ))
        })?;
        let mut config = config;
        // No host: the server's socket on this machine, where libpq would look for it
        // (Debian's folder, then the one PostgreSQL builds default to).
        // (A hostaddr is a TCP address, and names the server by itself.)
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host("/var/run/postgresql").host("/tmp");
        }
        // As libpq: a Unix socket is never encrypted, whatever sslmode says, and with
        // sslmode=disable the certificate options are not looked at.
        let sockets_only = config.get_hostaddrs().is_empty()
            && !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| !matches!(host, postgres::config::Host::Tcp(_)));
        if sockets_only {
            config.ssl_mode(postgres::config::SslMode::Disable);
        }
        if disabled || sockets_only {
            verify = false;
            root_cert = None;
        }
        Ok(Url {
            config,
            pool_size,
            verify: verify || root_cert.is_some(),
            root_cert,
            shown,
        })
    }
}

/// `%XX` escapes decoded (a path in a URL parameter).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with `user:password@` shown as `user:***@`.
pub(crate) fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the path or the query; its user info at its last `@`.
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{name}:***@{host}")
        }
        _ => authority.to_owned(),
    };
    // A password may also be a parameter of the query.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The TLS of every connection: rustls (TLS 1.2 and 1.3), used as the URL's `sslmode`
/// says (`prefer` by default, `require`, `verify-ca`, `verify-full`, `disable`). As with
/// libpq, `prefer` and `require` encrypt without checking the server's certificate
/// unless `sslrootcert` is given; `verify-ca` and `verify-full`, or a `sslrootcert`,
/// check it against the system's certificate authorities and that file, and the name
/// of the host.
fn tls(root_cert: Option<&str>, verify: bool) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::storage(format!("TLS cannot be set up: {e}")))?;
    if !verify {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(config));
    }
    // The system's authorities are read once per process, not at every open.
    static SYSTEM_ROOTS: std::sync::OnceLock<rustls::RootCertStore> = std::sync::OnceLock::new();
    let mut roots = SYSTEM_ROOTS
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            roots
        })
        .clone();
    if let Some(path) = root_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Error::storage(format!(
                "the URL's sslrootcert {path:?} cannot be read ({e}); give the path of a PEM file"
            ))
        })?;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem).flatten() {
            if roots.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(Error::storage(format!(
                "the URL's sslrootcert {path:?} holds no PEM certificate"
            )));
        }
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificate check of `sslmode=prefer` and `require` without `sslrootcert`: none,
/// as libpq's (the connection is encrypted, the server not authenticated); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The columns of a row, from either protocol: a prepared statement's typed row or a
/// simple query's row of text.
pub(super) trait Columns {
    /// Column `i` as text; `None` for NULL.
    fn text(&self, i: usize) -> PgResult<Option<String>>;

    /// Column `i`, a whole number.
    fn number(&self, i: usize) -> PgResult<i64>;

    /// Column `i`, which the schema never leaves NULL.
    fn required(&self, i: usize) -> PgResult<String> {
        self.text(i)?.ok_or_else(|| {
            Fail::Rule(Error::Internal(format!(
                "column {i} came back NULL, which the schema does not allow"
            )))
        })
    }
}

impl Columns for Row {
    fn text(&self, i: usize) -> PgResult<Option<String>> {
        Ok(self.try_get(i)?)
    }

    fn number(&self, i: usize) -> PgResult<i64> {
        Ok(self.try_get(i)?)
    }
}

impl Columns for SimpleQueryRow {
    fn text(&self, i: usize) -> PgResult<Option<String>> {
        Ok(self.get(i).map(str::to_owned))
    }

    fn number(&self, i: usize) -> PgResult<i64> {
        self.required(i)?
            .parse()
            .map_err(|_| Fail::Rule(Error::Internal(format!("column {i} is not a whole number"))))
    }
}

/// An event of a write, inserted when the write commits.
pub(super) struct Pending {
    agent_id: String,
    task_id: Option<String>,
    kind: EventKind,
    actor: Option<String>,
    data: String,
}

/// One connection and the statements it has prepared: for the extended protocol
/// (`statements`), and by name for the simple one (`named`, see [`Tx::named`]).
pub(super) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// The name of each statement prepared with `PREPARE`, by its SQL.
    named: HashMap<String, String>,
}

impl Conn {
    fn new(client: Client) -> Conn {
        Conn {
            client,
            statements: HashMap::new(),
            named: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> PgResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// The name under which `sql` is prepared on this connection; the first time, it
    /// is prepared (`PREPARE`, in a round trip of its own). A `PREPARE` is not undone
    /// by a rollback, so the name is kept as soon as the server has it.
    fn prepared(&mut self, sql: &str) -> PgResult<&str> {
        if !self.named.contains_key(sql) {
            let name = format!("agent_backlog_{}", self.named.len() + 1);
            self.client
                .batch_execute(&format!("PREPARE {name} AS {sql}"))?;
            self.named.insert(sql.to_owned(), name);
        }
        Ok(&self.named[sql])
    }
}

/// The most values a statement run by [`Tx::named`] is prepared with: a batch's
/// statements (one row of values per event) are written out instead, so that a
/// connection prepares only the few shapes a worker's writes take.
const MOST_NAMED_VALUES: usize = 64;

/// `sql` with each `$n` replaced by `values[n - 1]`, in one pass (a value that
/// contains `$` is not looked into).
fn inline(sql: &str, values: &[String]) -> String {
    let mut out = String::with_capacity(sql.len() + values.iter().map(String::len).sum::<usize>());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        match rest[at + 1..at + 1 + digits].parse::<usize>() {
            Ok(n) if (1..=values.len()).contains(&n) => out.push_str(&values[n - 1]),
            _ => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// The database's clock as a write transaction began, in milliseconds: `now()` is
/// the transaction's start, the same for every statement of it.
const NOW_MS: &str = "SELECT floor(extract(epoch FROM now()) * 1000)::bigint";

/// The transaction's time in milliseconds, in SQL (the value of [`Tx::now_ms`]).
pub(super) const NOW_MS_SQL: &str = "floor(extract(epoch FROM now()) * 1000)::bigint";

/// A task time (RFC 3339, UTC, whole seconds) of the transaction's `now()`, in SQL: the
/// text [`Tx::now`] gives in Rust.
pub(super) const NOW_TEXT: &str =
    "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

/// A call's work on one connection. A write's transaction begins with its first
/// statement, in the same round trip ([`Tx::begin_with`]); its last statements run with
/// the commit ([`Tx::defer`]).
pub(super) struct Tx<'a> {
    conn: &'a mut Conn,
    /// Whether this is a write (a transaction begun by its first statement).
    write: bool,
    /// When the write's busy timeout ends: each of its round trips waits for a row
    /// lock at most until then (SPEC §8), however long it waited for its connection.
    deadline: Instant,
    /// When the transaction's lock timeout was last set.
    timeout_set: Instant,
    begun: bool,
    /// Whether the commit was sent (after which a failure leaves its outcome unknown).
    committing: bool,
    /// Set when the write committed in its own last round trip: whether it had events.
    done: Option<bool>,
    now_ms: i64,
    events: Vec<Pending>,
    deferred: Vec<String>,
}

impl<'a> Tx<'a> {
    fn new(conn: &'a mut Conn, write: bool, deadline: Instant) -> Tx<'a> {
        Tx {
            conn,
            write,
            deadline,
            timeout_set: Instant::now(),
            begun: false,
            committing: false,
            done: None,
            now_ms: 0,
            events: Vec::new(),
            deferred: Vec::new(),
        }
    }
}

impl Tx<'_> {
    /// Begins the write's transaction, unless it has begun.
    fn ensure(&mut self) -> PgResult<()> {
        if self.write && !self.begun {
            self.begin_with("")?;
        }
        Ok(())
    }

    /// Runs `sql` (statements with their values as [`literal`]s; its rows are those of
    /// its last statement that returned some), beginning the write's transaction in the
    /// same round trip when it has not begun.
    pub(super) fn begin_with(&mut self, sql: &str) -> PgResult<Vec<SimpleQueryRow>> {
        let mut each = self.begin_with_each(sql)?;
        // A COMMIT after the statement that returned rows returns none.
        Ok(match each.iter().rposition(|rows| !rows.is_empty()) {
            Some(last) => each.swap_remove(last),
            None => Vec::new(),
        })
    }

    /// Runs `sql` as [`Tx::begin_with`] does; returns the rows of each of its
    /// statements, in order.
    pub(super) fn begin_with_each(&mut self, sql: &str) -> PgResult<Vec<Vec<SimpleQueryRow>>> {
        let first = self.write && !self.begun;
        let text = if first {
            let now = self.named(NOW_MS, &[])?;
            format!("BEGIN; {}; {now}; {sql}", self.lock_timeout())
        } else if self.write {
            format!("{}; {sql}", self.lock_timeout())
        } else {
            sql.to_owned()
        };
        // Marked before it is sent: a failure in the middle leaves a transaction to
        // roll back.
        self.begun |= first;
        let messages = self.conn.client.simple_query(&text)?;
        // The BEGIN, the lock timeout and the clock's statement are not the caller's.
        let own = match (first, self.write) {
            (true, _) => 3,
            (false, true) => 1,
            (false, false) => 0,
        };
        let mut statement = 0;
        let mut each = Vec::new();
        let mut current = Vec::new();
        for message in messages {
            match message {
                SimpleQueryMessage::Row(row) if first && statement == 2 => {
                    self.now_ms = row.get(0).and_then(|t| t.parse().ok()).ok_or_else(|| {
                        Fail::Rule(Error::Internal("PostgreSQL did not tell its time".into()))
                    })?;
                }
                SimpleQueryMessage::Row(row) => current.push(row),
                SimpleQueryMessage::CommandComplete(_) => {
                    if statement >= own {
                        each.push(std::mem::take(&mut current));
                    }
                    statement += 1;
                }
                _ => {}
            }
        }
        Ok(each)
    }

    /// `sql` (one statement, its values `$1`, `$2`… given as SQL text in `values`:
    /// [`literal`]s and numbers) as a statement for [`Tx::begin_with`] and
    /// [`Tx::defer`]: `EXECUTE` of the statement prepared on this connection, so that
    /// the server plans it once per connection rather than at every call; written out
    /// instead when it has more than [`MOST_NAMED_VALUES`] values. Each `$n` of `sql`
    /// should carry its type (`$1::text`).
    pub(super) fn named(&mut self, sql: &str, values: &[String]) -> PgResult<String> {
        if values.len() > MOST_NAMED_VALUES {
            return Ok(inline(sql, values));
        }
        let name = self.conn.prepared(sql)?;
        Ok(if values.is_empty() {
            format!("EXECUTE {name}")
        } else {
            format!("EXECUTE {name}({})", values.join(", "))
        })
    }

    /// Runs `sql` as [`Tx::begin_with`] does and commits in the same round trip; the
    /// write is then done, with events (`evented`, told afterwards by
    /// [`Tx::committed`]) recorded by `sql` itself.
    pub(super) fn begin_and_commit(&mut self, sql: &str) -> PgResult<Vec<SimpleQueryRow>> {
        self.committing = true;
        let rows = self.begin_with(&format!("{sql};\nCOMMIT"))?;
        self.done = Some(false);
        Ok(rows)
    }

    /// Records whether the write that [`Tx::begin_and_commit`] committed had events.
    pub(super) fn committed(&mut self, evented: bool) {
        self.done = Some(evented);
    }

    /// Runs `sql` and returns its rows.
    pub(super) fn query(&mut self, sql: &str, params: Params<'_>) -> PgResult<Vec<Row>> {
        self.ensure()?;
        self.refresh_lock_timeout()?;
        let s = self.conn.statement(sql)?;
        Ok(self.conn.client.query(&s, params)?)
    }

    /// Runs `sql`, which returns at most one row.
    pub(super) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> PgResult<Option<Row>> {
        self.ensure()?;
        self.refresh_lock_timeout()?;
        let s = self.conn.statement(sql)?;
        Ok(self.conn.client.query_opt(&s, params)?)
    }

    /// Runs `sql`, which returns exactly one row.
    pub(super) fn query_one(&mut self, sql: &str, params: Params<'_>) -> PgResult<Row> {
        self.ensure()?;
        self.refresh_lock_timeout()?;
        let s = self.conn.statement(sql)?;
        Ok(self.conn.client.query_one(&s, params)?)
    }

    /// Runs `sql` and returns the number of rows it changed.
    pub(super) fn execute(&mut self, sql: &str, params: Params<'_>) -> PgResult<u64> {
        self.ensure()?;
        self.refresh_lock_timeout()?;
        let s = self.conn.statement(sql)?;
        Ok(self.conn.client.execute(&s, params)?)
    }

    /// Runs `sql` (with its values as [`literal`]s) at the commit, in its round trip,
    /// before the events: for a write's last statements, whose outcome nothing waits for.
    pub(super) fn defer(&mut self, sql: String) {
        self.deferred.push(sql);
    }

    /// The database's clock as the write began, in milliseconds.
    pub(super) fn now_ms(&mut self) -> PgResult<i64> {
        self.ensure()?;
        Ok(self.now_ms)
    }

    /// The write's time as the contract writes task times.
    pub(super) fn now(&mut self) -> PgResult<String> {
        Ok(crate::backend::seconds(self.now_ms()?))
    }

    /// Records an event of this write (SPEC §14); it is inserted, with its seq, as the
    /// write commits.
    pub(super) fn event(
        &mut self,
        agent_id: &str,
        task_id: Option<&str>,
        kind: EventKind,
        actor: Option<&str>,
        data: &serde_json::Value,
    ) {
        self.events.push(Pending {
            agent_id: agent_id.to_owned(),
            task_id: task_id.map(str::to_owned),
            kind,
            actor: actor.map(str::to_owned),
            data: data.to_string(),
        });
    }

    /// Commits: inserts the write's events with the next seqs of the feed, in one
    /// statement that holds the feed's row until the commit, and commits, in one round
    /// trip (a simple query of two statements, so the values are written as literals:
    /// [`literal`]). Returns whether there were events.
    fn commit(&mut self) -> PgResult<bool> {
        if let Some(evented) = self.done {
            return Ok(evented);
        }
        if !self.begun && self.deferred.is_empty() && self.events.is_empty() {
            // Nothing was read or written: there is no transaction to end.
            return Ok(false);
        }
        self.ensure()?;
        let mut sql: Vec<String> = std::mem::take(&mut self.deferred);
        let evented = !self.events.is_empty();
        if evented {
            sql.push(self.events_sql()?);
        }
        sql.push("COMMIT".to_owned());
        sql.insert(0, self.lock_timeout());
        self.committing = true;
        self.conn.client.batch_execute(&sql.join(";\n"))?;
        Ok(evented)
    }

    /// The statement that lets this round trip of the write wait for a row lock only
    /// for what is left of its busy timeout (at least a millisecond: then any wait
    /// fails at once, as busy). Sent in the round trip's own message.
    fn lock_timeout(&mut self) -> String {
        let now = Instant::now();
        self.timeout_set = now;
        let left = self.deadline.saturating_duration_since(now);
        let ms = left.as_millis().clamp(1, i32::MAX as u128);
        format!("SET LOCAL lock_timeout = {ms}")
    }

    /// Before a statement of a write sent on its own (the extended protocol, which
    /// cannot carry a `SET` in its message): the lock timeout set last lets a wait that
    /// starts now end past the busy timeout by the time gone since it was set. Past
    /// [`TIMEOUT_SLACK`] (after a wait, in practice), it is set again first.
    fn refresh_lock_timeout(&mut self) -> PgResult<()> {
        if self.write && self.timeout_set.elapsed() > TIMEOUT_SLACK {
            let set = self.lock_timeout();
            self.conn.client.batch_execute(&set)?;
        }
        Ok(())
    }

    /// The statement that inserts the write's events with the next seqs of the feed.
    fn events_sql(&mut self) -> PgResult<String> {
        let events = std::mem::take(&mut self.events);
        let n = events.len();
        let mut values = vec![self.now_ms.to_string()];
        let mut rows = Vec::with_capacity(n);
        for (i, e) in events.iter().enumerate() {
            let at = values.len();
            rows.push(format!(
                "({}, ${}::text, ${}::text, ${}::text, ${}::text, ${}::text)",
                i + 1,
                at + 1,
                at + 2,
                at + 3,
                at + 4,
                at + 5
            ));
            values.extend([
                literal(Some(&e.agent_id)),
                literal(e.task_id.as_deref()),
                literal(Some(e.kind.as_str())),
                literal(e.actor.as_deref()),
                literal(Some(&e.data)),
            ]);
        }
        let sql = format!(
            "WITH f AS (UPDATE feed SET seq = seq + {n} WHERE one = 1 RETURNING seq)
             INSERT INTO events (seq, at, agent_id, task_id, type, actor, data)
             SELECT (SELECT seq FROM f) - {n} + e.n, $1::bigint, e.agent_id, e.task_id, e.type, e.actor, e.data
             FROM (VALUES {rows}) AS e (n, agent_id, task_id, type, actor, data)",
            rows = rows.join(", "),
        );
        self.named(&sql, &values)
    }
}

/// A text value as an SQL literal: quotes doubled inside single quotes, which is the
/// whole of quoting with `standard_conforming_strings` on (set on every connection;
/// backslashes are then plain characters). The core has refused NUL characters.
pub(super) fn literal(value: Option<&str>) -> String {
    match value {
        Some(text) => format!("'{}'::text", text.replace('\'', "''")),
        None => "NULL::text".to_owned(),
    }
}

/// A connection lent to a call: given back, as failed, if the call panics (a panic is
/// caught at the C and Python boundaries and the store stays usable), so that the
/// pool's counts stay right.
struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    write: bool,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn, false, self.write);
        }
    }
}

#[derive(Default)]
struct State {
    idle: Vec<Conn>,
    open: usize,
    /// How many of the open connections writes are using.
    writing: usize,
    closed: bool,
}

/// See the module docs.
pub(super) struct Pool {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    pub shown: String,
    size: usize,
    busy_timeout: Duration,
    state: Mutex<State>,
    freed: Condvar,
    pid: u32,
}

/// Whether the connection was lost (the server restarted, the network failed): a
/// pooled connection may have been broken while it was idle. A server that shuts down
/// or restarts ends its sessions with an error of its own (class 57P: "terminating
/// connection due to administrator command"), a failed link is class 08.
fn lost(fail: &Fail) -> bool {
    match fail {
        Fail::Db(e) => {
            e.is_closed()
                || e.as_db_error().is_none()
                || e.code().is_some_and(|c| {
                    let code = c.code();
                    code.starts_with("57P") || code.starts_with("08")
                })
        }
        Fail::Rule(_) => false,
    }
}

/// Whether PostgreSQL asks for the transaction to be run again.
fn retryable(fail: &Fail) -> bool {
    match fail {
        Fail::Db(e) => matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
        ),
        Fail::Rule(_) => false,
    }
}

/// How many shards the counts have (migrations/0002_counts_by_session.sql).
const SHARDS: i32 = 64;

/// The first key of the session advisory locks that hold the shards: shard `k` is
/// held by the session that holds `(SHARD_LOCKS, k)`.
const SHARD_LOCKS: i32 = 0x4142_5348;

/// Gives the session a shard of the counts of its own: the first one no other session
/// holds, kept until the session ends. With every shard held, it shares one, chosen by
/// its process ID: its counts stay right, it only waits for the sharer's row locks.
fn take_shard(mut client: Client) -> Result<Client> {
    client
        .batch_execute(&format!(
            "SELECT set_config('agent_backlog.shard', coalesce(
                 (SELECT k FROM generate_series(0, {last}) AS k
                  WHERE pg_try_advisory_lock({SHARD_LOCKS}, k) LIMIT 1),
                 pg_backend_pid() % {SHARDS})::text, false)",
            last = SHARDS - 1
        ))
        .map_err(|e| Error::from(Fail::Db(e)))?;
    Ok(client)
}

impl Pool {
    /// A pool for `url`; opens no connection yet.
    pub(super) fn new(url: Url, busy_timeout: Duration) -> Result<Pool> {
        let mut config = url.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("agent-backlog");
        }
        Ok(Pool {
            tls: tls(url.root_cert.as_deref(), url.verify)?,
            config,
            shown: url.shown,
            size: url.pool_size,
            busy_timeout,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            pid: std::process::id(),
        })
    }

    /// Opens a new connection to the server, outside the pool (the listener's).
    pub(super) fn connect(&self) -> Result<Client> {
        let mut client = self
            .config
            .connect(self.tls.clone())
            .map_err(|e| super::connect_error(&self.shown, e))?;
        // The connection's own lock timeout, for what runs outside a write's transaction
        // (migrations); a write sets its transaction's from what is left of its busy
        // timeout ([`Tx::lock_timeout`]).
        let ms = self.busy_timeout.as_millis().clamp(1, i32::MAX as u128);
        client
            .batch_execute(&format!(
                "SET lock_timeout = {ms}; SET standard_conforming_strings = on"
            ))
            .map_err(|e| Error::from(Fail::Db(e)))?;
        Ok(client)
    }

    fn usable(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::storage(
                "this store was opened by the parent process; open the store again in the \
                 forked child",
            ));
        }
        if lock(&self.state).closed {
            return Err(Error::storage("the store is closed; open it again"));
        }
        Ok(())
    }

    /// Takes a connection for a write or a read: an idle one, a new one, or the next one
    /// given back before `deadline`. A read never waits for a connection a write holds
    /// (SPEC §8: reads never wait for a writer): past `pool_size`, it may open one more
    /// for each connection writes are using, let go when it comes back.
    fn take(&self, deadline: Instant, write: bool) -> Result<Conn> {
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return Err(Error::storage("the store is closed; open it again"));
            }
            if let Some(conn) = state.idle.pop() {
                state.writing += usize::from(write);
                return Ok(conn);
            }
            let cap = if write {
                self.size
            } else {
                self.size + state.writing
            };
            if state.open < cap {
                state.open += 1;
                state.writing += usize::from(write);
                drop(state);
                return match self.connect().and_then(take_shard) {
                    Ok(client) => Ok(Conn::new(client)),
                    Err(e) => {
                        let mut state = lock(&self.state);
                        state.open -= 1;
                        state.writing -= usize::from(write);
                        drop(state);
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || crate::nowait::cancelled() {
                crate::nowait::note_given_up();
                return Err(Error::storage(format!(
                    "every connection of the store's pool ({}) was in use for longer than the \
                     busy timeout; retry, raise pool_size in the URL, or open the store with a \
                     longer busy_timeout",
                    self.size
                )));
            }
            state = self
                .freed
                .wait_timeout(state, left.min(Duration::from_millis(50)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Gives a connection back, or lets it go when it failed, the store is closed, or
    /// it was one a read opened past `pool_size`.
    fn give_back(&self, conn: Conn, healthy: bool, write: bool) {
        let mut state = lock(&self.state);
        state.writing -= usize::from(write);
        let kept = healthy && !state.closed && !conn.client.is_closed() && state.open <= self.size;
        if kept {
            state.idle.push(conn);
        } else {
            state.open -= 1;
        }
        drop(state);
        if kept {
            self.freed.notify_one();
        } else {
            // A place to open a connection: a waiting read may take it where a waiting
            // write may not, so every waiter looks.
            self.freed.notify_all();
        }
    }

    /// Runs `f` on a pooled connection, for a write (or a migration) or a read.
    fn with_conn<T>(
        &self,
        deadline: Instant,
        write: bool,
        f: impl FnOnce(&mut Conn) -> PgResult<T>,
    ) -> Result<T> {
        self.usable()?;
        if crate::nowait::active() {
            // Every call on a server waits for the network: an event loop hands it to
            // a thread.
            return Err(crate::nowait::would_wait());
        }
        let mut lent = Lent {
            pool: self,
            conn: Some(self.take(deadline, write)?),
            write,
        };
        let result = f(lent.conn.as_mut().expect("the connection is lent"));
        let conn = lent.conn.take().expect("the connection is lent");
        let broken = matches!(&result, Err(fail) if lost(fail));
        self.give_back(conn, !broken, write);
        if broken {
            // The server went away (a restart, most often): the idle connections are
            // from before, so none is handed out again; the next call connects anew.
            self.drop_idle();
        }
        result.map_err(Error::from)
    }

    /// Lets every idle connection go.
    fn drop_idle(&self) {
        let idle = {
            let mut state = lock(&self.state);
            state.open -= state.idle.len();
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        self.freed.notify_all();
    }

    /// Runs `f` in a write transaction, again from the start when PostgreSQL aborts it
    /// as a conflict; returns its value and whether it recorded events.
    pub(super) fn write<T>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> PgResult<T>,
    ) -> Result<(T, bool)> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut tries = 0;
        let mut reconnected = false;
        loop {
            let mut again = false;
            let mut reconnect = false;
            let result = self.with_conn(deadline, true, |conn| {
                let mut tx = Tx::new(conn, true, deadline);
                let done = f(&mut tx).and_then(|value| Ok((value, tx.commit()?)));
                if let Err(fail) = &done {
                    if tx.begun && tx.done.is_none() && !tx.conn.client.is_closed() {
                        let _ = tx.conn.client.batch_execute("ROLLBACK");
                    }
                    again = retryable(fail);
                    // Lost before its commit was sent, the write did nothing: once, it
                    // runs again on a new connection.
                    reconnect = lost(fail) && !tx.committing;
                }
                done
            });
            if reconnect && !reconnected {
                reconnected = true;
                continue;
            }
            if again && tries < RETRIES && Instant::now() < deadline {
                tries += 1;
                std::thread::sleep(Duration::from_millis(1 << tries.min(5)));
                continue;
            }
            return result;
        }
    }

    /// Runs `f` outside a transaction: for a read of one statement.
    pub(super) fn read<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> PgResult<T>) -> Result<T> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut broken = false;
        let result = self.with_conn(deadline, false, |conn| {
            let done = f(&mut Tx::new(conn, false, deadline));
            broken = matches!(&done, Err(fail) if lost(fail));
            done
        });
        if broken {
            // A connection broken while idle: once more, on a new one.
            return self.with_conn(deadline, false, |conn| {
                f(&mut Tx::new(conn, false, deadline))
            });
        }
        result
    }

    /// Runs `f` in a read-only transaction: one snapshot.
    pub(super) fn snapshot<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> PgResult<T>) -> Result<T> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut broken = false;
        let mut once = |broken: &mut bool| {
            self.with_conn(deadline, false, |conn| {
                let done = conn
                    .client
                    .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .map_err(Fail::from)
                    .and_then(|()| f(&mut Tx::new(conn, false, deadline)));
                *broken = matches!(&done, Err(fail) if lost(fail));
                let end = if done.is_ok() { "COMMIT" } else { "ROLLBACK" };
                if !conn.client.is_closed() {
                    conn.client.batch_execute(end)?;
                }
                done
            })
        };
        let result = once(&mut broken);
        if broken {
            // A connection broken while idle: once more, on a new one.
            return once(&mut false);
        }
        result
    }

    /// Runs `f` on a connection of the pool with nothing around it (migrations).
    pub(super) fn raw<T>(&self, f: impl FnOnce(&mut Client) -> PgResult<T>) -> Result<T> {
        let deadline = Instant::now() + self.busy_timeout;
        self.with_conn(deadline, true, |conn| f(&mut conn.client))
    }

    /// Marks the pool closed and closes the idle connections; those in use close as
    /// they come back.
    pub(super) fn close(&self) {
        let idle = {
            let mut state = lock(&self.state);
            state.closed = true;
            state.open -= state.idle.len();
            std::mem::take(&mut state.idle)
        };
        if std::process::id() == self.pid {
            drop(idle);
        } else {
            // The parent's sockets: not ours to close.
            std::mem::forget(idle);
        }
        self.freed.notify_all();
    }

    /// Whether the pool was closed.
    pub(super) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

#[cfg(test)]
mod tests {
    use super::{inline, take_shard, Url, SHARDS};
    use postgres::config::{Host, SslMode};

    #[test]
    fn urls_are_read_as_libpq_reads_them() {
        let system = Url::parse("postgresql://u@db.example/d?sslrootcert=system").unwrap();
        assert!(system.verify && system.root_cert.is_none());
        assert_eq!(system.config.get_ssl_mode(), SslMode::Require);
        let socket = Url::parse("postgresql:///d?sslmode=require&sslrootcert=/x.pem").unwrap();
        let hosts: Vec<String> = socket
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Unix(path) => path.display().to_string(),
                Host::Tcp(name) => name.clone(),
            })
            .collect();
        assert_eq!(hosts, ["/var/run/postgresql", "/tmp"]);
        assert_eq!(socket.config.get_ssl_mode(), SslMode::Disable);
        assert!(!socket.verify && socket.root_cert.is_none());
        let full = Url::parse("postgres://u@h/d?sslmode=verify-full").unwrap();
        assert!(full.verify);
        assert_eq!(full.config.get_ssl_mode(), SslMode::Require);
        // A hostaddr is TCP: no socket is added, and TLS stays as asked.
        let addr = Url::parse("postgresql:///d?hostaddr=10.0.0.5&sslmode=verify-full").unwrap();
        assert!(addr.config.get_hosts().is_empty());
        assert_eq!(addr.config.get_ssl_mode(), SslMode::Require);
        assert!(addr.verify);
        let allow = Url::parse("postgres://u@h/d?sslmode=allow").unwrap();
        assert_eq!(allow.config.get_ssl_mode(), SslMode::Prefer);
        let off = Url::parse("postgres://u@h/d?sslmode=disable&sslrootcert=/x.pem").unwrap();
        assert!(!off.verify && off.root_cert.is_none());
    }

    /// Sessions open at once hold different shards, and a shard is free again once
    /// its session ends. Needs the test server (`AGENT_BACKLOG_TEST_PG`).
    #[test]
    fn sessions_open_at_once_hold_shards_of_their_own() {
        let Ok(url) = std::env::var("AGENT_BACKLOG_TEST_PG") else {
            eprintln!("AGENT_BACKLOG_TEST_PG is not set: skipped (make test sets it)");
            return;
        };
        let open = || {
            let client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let mut client = take_shard(client).unwrap();
            let shard: String = client
                .query_one("SELECT current_setting('agent_backlog.shard')", &[])
                .unwrap()
                .get(0);
            (client, shard.parse::<i32>().unwrap())
        };
        let mut sessions: Vec<_> = (0..4).map(|_| open()).collect();
        let shards: std::collections::HashSet<i32> = sessions.iter().map(|s| s.1).collect();
        assert_eq!(shards.len(), 4, "{shards:?}");
        assert!(shards.iter().all(|k| (0..SHARDS).contains(k)));
        let (gone, freed) = sessions.remove(0);
        gone.close().unwrap();
        // The server lets go of a closed session's locks shortly after it closes.
        let again = (0..200).any(|_| {
            let (client, shard) = open();
            drop(client);
            shard == freed || {
                std::thread::sleep(std::time::Duration::from_millis(10));
                false
            }
        });
        assert!(
            again,
            "shard {freed} was not taken again after its session ended"
        );
    }

    #[test]
    fn inline_puts_each_value_in_its_place_once() {
        let values = ["'costs $2'::text".to_owned(), "7".to_owned()];
        assert_eq!(
            inline("SELECT $1, $2, $1, $12, '$'", &values),
            "SELECT 'costs $2'::text, 7, 'costs $2'::text, $12, '$'"
        );
        assert_eq!(inline("SELECT 1", &values), "SELECT 1");
    }
}
