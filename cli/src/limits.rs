//! Limits per client, so that one misbehaving client cannot starve the rest: a rate of
//! requests (governor's keyed GCRA limiter: 429 with `Retry-After` once the burst is
//! spent) and a number of long polls and event streams held open at once (429 past
//! it). Both are counted per token, under `serve --auth`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use crate::auth::{refused, Caller};
use crate::listen::Peer;

/// Who a limit is counted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A token, by its number.
    Token(i64),
    /// A connection without a token, by its address.
    Address(IpAddr),
}

impl Client {
    /// The client of a request: its token, else its peer's address.
    pub fn of(request: &Request) -> Option<Client> {
        Client::of_parts(request.extensions())
    }

    /// [`Client::of`], from a request's extensions.
    pub fn of_parts(extensions: &axum::http::Extensions) -> Option<Client> {
        if let Some(Caller(token)) = extensions.get::<Caller>() {
            return Some(Client::Token(token.id));
        }
        extensions
            .get::<Peer>()
            .map(|Peer(addr)| Client::Address(addr.ip()))
    }
}

/// The limits of one server.
pub struct Limits {
    rate: RateLimiter<Client, governor::state::keyed::DefaultKeyedStateStore<Client>, DefaultClock>,
    clock: DefaultClock,
    max_waits: usize,
    waits: Mutex<HashMap<Client, usize>>,
}

impl Limits {
    /// `rate` (requests per second per client, and the burst), and at most
    /// `max_waits` long polls or streams per client.
    pub fn new((per_second, burst): (NonZeroU32, NonZeroU32), max_waits: usize) -> Arc<Limits> {
        Arc::new(Limits {
            rate: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
            max_waits,
            waits: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one of the client's long-poll places, or says how many it holds already.
    pub fn begin_wait(self: &Arc<Self>, client: Option<Client>) -> Result<WaitPlace, usize> {
        let Some(client) = client else {
            return Ok(WaitPlace(None));
        };
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        let held = waits.entry(client.clone()).or_insert(0);
        if *held >= self.max_waits {
            return Err(*held);
        }
        *held += 1;
        Ok(WaitPlace(Some((Arc::clone(self), client))))
    }
}

/// A long poll or a stream in progress; its place is given back when dropped.
pub struct WaitPlace(Option<(Arc<Limits>, Client)>);

impl Drop for WaitPlace {
    fn drop(&mut self) {
        if let Some((limits, client)) = self.0.take() {
            let mut waits = limits.waits.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = waits.get_mut(&client) {
                *held -= 1;
                if *held == 0 {
                    waits.remove(&client);
                }
            }
        }
    }
}

/// A 429 for a client that holds too many waits.
pub fn too_many_waits(held: usize) -> Response {
    let mut response = refused(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!(
            "this client holds {held} long polls or streams already (--max-waits); end one first"
        ),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// The middleware of the request rate: 429 with `Retry-After` past the client's quota.
pub async fn rate(limits: Arc<Limits>, request: Request, next: Next) -> Response {
    // Tokens only: their number is bounded by the store, so is the limiter's memory.
    if let Some(client @ Client::Token(_)) = Client::of(&request) {
        if let Err(not_until) = limits.rate.check_key(&client) {
            let wait = not_until.wait_time_from(limits.clock.now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                &format!("too many requests from this client (--rate); retry in {seconds} s"),
            );
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
            eprintln!(
                "{} {} 429 (rate limit)",
                request.method(),
                request.uri().path()
            );
            return response;
        }
    }
    next.run(request).await
}
