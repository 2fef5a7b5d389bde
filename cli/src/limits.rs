//! Limits per token under `serve --auth`, so that one misbehaving client cannot starve
//! the rest: a rate of requests (governor's keyed GCRA limiter: 429 with `Retry-After`
//! once the burst is spent) and a number of long polls, event streams and waiting MCP
//! tools held open at once (429 past it). Without tokens every local client is one
//! address, so nothing is counted.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use agent_backlog::Token;

use crate::auth::{refused, Caller};

/// The limits of one server.
pub struct Limits {
    /// Keyed by token number: as many keys as the store has tokens.
    rate: RateLimiter<i64, governor::state::keyed::DefaultKeyedStateStore<i64>, DefaultClock>,
    clock: DefaultClock,
    max_waits: usize,
    waits: Mutex<HashMap<i64, usize>>,
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

    /// Takes one of `token`'s places for a call that waits (see
    /// `Operation::waits`); refused when it holds them all.
    pub fn begin_wait(self: &Arc<Self>, token: &Token) -> Result<WaitPlace, TooManyWaits> {
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        let held = waits.entry(token.id).or_insert(0);
        if *held >= self.max_waits {
            return Err(TooManyWaits(*held));
        }
        *held += 1;
        Ok(WaitPlace(Arc::clone(self), token.id))
    }
}

/// A long poll or a stream in progress; its place is given back when dropped.
pub struct WaitPlace(Arc<Limits>, i64);

impl Drop for WaitPlace {
    fn drop(&mut self) {
        let mut waits = self.0.waits.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = waits.get_mut(&self.1) {
            *held -= 1;
            if *held == 0 {
                waits.remove(&self.1);
            }
        }
    }
}

/// A token that holds all its places for waits (`--max-waits`): 429 over HTTP, an
/// error result over MCP, with one message.
#[derive(Debug)]
pub struct TooManyWaits(usize);

impl TooManyWaits {
    /// What the client is told.
    pub fn message(&self) -> String {
        format!(
            "this token holds {} long polls or streams already (--max-waits); end one first",
            self.0
        )
    }
}

impl axum::response::IntoResponse for TooManyWaits {
    fn into_response(self) -> Response {
        let mut response = refused(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            &self.message(),
        );
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        response
    }
}

/// The middleware of the request rate: 429 with `Retry-After` past the token's quota.
pub async fn rate(limits: Arc<Limits>, request: Request, next: Next) -> Response {
    if let Some(Caller(token)) = request.extensions().get::<Caller>() {
        if let Err(not_until) = limits.rate.check_key(&token.id) {
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
