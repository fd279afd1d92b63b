//! Admin authentication: `Authorization: Bearer <admin token>` for the API;
//! for the pages, a login form that sets an HttpOnly, SameSite=Strict
//! session cookie, and a CSRF token on every form that changes something.
//!
//! What is kept where:
//! - admin tokens: only salted SHA-256 verifiers, in memory and (for the
//!   generated token) in the database; a token is checked in constant time;
//! - sessions: the cookie carries a random 256-bit id; the database keeps
//!   only its SHA-256 (`admin_sessions`), so logging out, or rotating the
//!   admin token, ends a session in every instance at once, and a copy of the
//!   database logs nobody in;
//! - failed attempts: counted per client address; after a few, the address
//!   waits (exponentially longer) and gets `429` with `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::tokens::Tokens;

pub const SESSION_COOKIE: &str = "hookline_session";
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// The shortest admin, webhook or metrics token hookline accepts from its
/// configuration (generated tokens have 64 characters).
pub const MIN_TOKEN_CHARS: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The SHA-256 of `text`, hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// A salted SHA-256 of one admin token: what hookline keeps instead of the
/// token. Tokens are long and random, so a fast hash is enough.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier([redacted])")
    }
}

fn salted(salt: &[u8], token: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(salt)
        .chain_update(token.trim().as_bytes())
        .finalize()
        .into()
}

impl Verifier {
    /// A verifier of `token` with a fresh random salt.
    pub fn new(token: &str) -> Verifier {
        let salt: [u8; 16] = rand::random();
        Verifier {
            salt,
            hash: salted(&salt, token),
        }
    }

    /// The stored form: `sha256$SALT$HASH` (hex).
    pub fn record(&self) -> String {
        format!("sha256${}${}", hex(&self.salt), hex(&self.hash))
    }

    /// Reads a stored form; `None` for anything else (e.g. a token stored
    /// in plain text by an older hookline).
    pub fn parse(record: &str) -> Option<Verifier> {
        let mut parts = record.split('$');
        if parts.next()? != "sha256" {
            return None;
        }
        let salt = unhex(parts.next()?)?.try_into().ok()?;
        let hash = unhex(parts.next()?)?.try_into().ok()?;
        parts.next().is_none().then_some(Verifier { salt, hash })
    }

    /// True when `candidate` is the token, compared in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(salted(&self.salt, candidate).ct_eq(&self.hash))
    }
}

/// Failed attempts allowed from one address before it has to wait.
const FREE_FAILURES: u32 = 5;
/// The first wait, after [`FREE_FAILURES`] failures.
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most (the oldest are forgotten first).
const MAX_TRACKED: usize = 10_000;
/// An address with no failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug)]
struct Attempts {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// Failed admin logins and API tokens, per client address.
#[derive(Debug, Default)]
pub struct Throttle {
    addresses: Mutex<HashMap<IpAddr, Attempts>>,
}

impl Throttle {
    /// One attempt from `address`, under one lock so that a burst of
    /// concurrent attempts cannot all pass the wait check before the first
    /// failure is counted: `Err(Some(wait))` while it must wait (the token
    /// is not even checked), `Err(None)` for a wrong token, `Ok` for a
    /// right one (the address starts afresh).
    pub fn attempt(
        &self,
        address: IpAddr,
        now: Instant,
        right: impl FnOnce() -> bool,
    ) -> Result<(), Option<Duration>> {
        let address = throttle_key(address);
        let mut addresses = self
            .addresses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let waiting = addresses
            .get(&address)
            .and_then(|a| a.blocked_until)
            .filter(|until| *until > now);
        if let Some(until) = waiting {
            return Err(Some(until - now));
        }
        if right() {
            addresses.remove(&address);
            return Ok(());
        }
        record_failure(&mut addresses, address, now);
        Err(None)
    }

    /// How long `address` must still wait, if it must.
    pub fn wait(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let addresses = self.addresses.lock().ok()?;
        let until = addresses.get(&throttle_key(address))?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failure; the wait it starts, if any.
    pub fn failed(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let mut addresses = self.addresses.lock().ok()?;
        record_failure(&mut addresses, throttle_key(address), now)
    }

    /// A right token: the address starts afresh.
    pub fn succeeded(&self, address: IpAddr) {
        if let Ok(mut addresses) = self.addresses.lock() {
            addresses.remove(&throttle_key(address));
        }
    }
}

/// The address failures are counted under: an IPv6 client by its /64 (one
/// machine usually has a whole /64), an IPv4 one by itself.
fn throttle_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
        v4 => v4,
    }
}

/// Counts a failure of `address`; the wait it starts, if any:
/// [`FIRST_WAIT`] after the [`FREE_FAILURES`]th, doubling with each
/// further one, at most [`MAX_WAIT`]. Attempts while waiting are refused
/// without counting. An address that is waiting is never forgotten to make
/// room.
fn record_failure(
    addresses: &mut HashMap<IpAddr, Attempts>,
    address: IpAddr,
    now: Instant,
) -> Option<Duration> {
    if addresses.len() >= MAX_TRACKED && !addresses.contains_key(&address) {
        addresses.retain(|_, a| now.duration_since(a.last) < FORGET_AFTER);
        if addresses.len() >= MAX_TRACKED {
            let oldest = addresses
                .iter()
                .filter(|(_, a)| a.blocked_until.is_none_or(|until| until <= now))
                .min_by_key(|(_, a)| a.last)
                .map(|(k, _)| *k);
            addresses.remove(&oldest?);
        }
    }
    let entry = addresses.entry(address).or_insert(Attempts {
        failures: 0,
        last: now,
        blocked_until: None,
    });
    if now.duration_since(entry.last) >= FORGET_AFTER {
        entry.failures = 0;
    }
    entry.failures = entry.failures.saturating_add(1);
    entry.last = now;
    if entry.failures < FREE_FAILURES {
        return None;
    }
    let doublings = (entry.failures - FREE_FAILURES).min(20);
    let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
    entry.blocked_until = Some(now + wait);
    Some(wait)
}

/// The client's address (the TCP peer; behind a reverse proxy, the proxy's).
pub fn client_address(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// `429` for an address that must wait.
pub fn too_many_attempts(wait: Duration) -> ApiError {
    let seconds = wait.as_secs().max(1);
    ApiError {
        retry_after: Some(u32::try_from(seconds).unwrap_or(u32::MAX)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many wrong admin tokens from this address; try again in {seconds} s"),
        )
    }
}

/// The admin tokens' verifiers and the failed-attempt throttle.
#[derive(Debug)]
pub struct AdminAuth {
    verifiers: RwLock<Vec<Verifier>>,
    pub throttle: Throttle,
}

/// A logged-in page session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The SHA-256 of the session id (the database key).
    pub id_hash: String,
    /// The token forms must carry back.
    pub csrf: String,
}

impl AdminAuth {
    pub fn new(verifiers: Vec<Verifier>) -> AdminAuth {
        AdminAuth {
            verifiers: RwLock::new(verifiers),
            throttle: Throttle::default(),
        }
    }

    /// Replaces the accepted tokens (`hookline reset-admin-token` seen by a
    /// running server).
    pub fn replace(&self, verifiers: Vec<Verifier>) {
        if let Ok(mut current) = self.verifiers.write() {
            *current = verifiers;
        }
    }

    /// True when the tokens in force are exactly the one `record` verifies.
    pub fn is_current(&self, record: &str) -> bool {
        self.verifiers
            .read()
            .is_ok_and(|v| v.len() == 1 && v[0].record() == record)
    }

    /// True when `candidate` is an admin token. Every verifier is tried.
    pub fn matches(&self, candidate: &str) -> bool {
        let Ok(verifiers) = self.verifiers.read() else {
            return false;
        };
        verifiers
            .iter()
            .fold(false, |found, v| v.matches(candidate) | found)
    }

    /// True when one of `tokens` is also an admin token.
    pub fn accepts_any(&self, tokens: &Tokens) -> bool {
        tokens.iter().any(|t| self.matches(t))
    }

    /// Checks a presented token against the throttle and the verifiers,
    /// recording the outcome; `what` names the way in, for the log.
    pub fn check(&self, req: &HttpRequest, token: &str, what: &str) -> Result<(), ApiError> {
        let address = client_address(req);
        match self
            .throttle
            .attempt(address, Instant::now(), || self.matches(token))
        {
            Ok(()) => Ok(()),
            Err(Some(wait)) => {
                tracing::warn!(client = %address, "{what} refused: address is waiting after wrong admin tokens");
                Err(too_many_attempts(wait))
            }
            Err(None) => {
                tracing::warn!(client = %address, "{what} refused: wrong admin token");
                Err(ApiError::unauthorized("the admin token is not valid"))
            }
        }
    }

    /// The API's check: a valid bearer token.
    pub fn require_bearer(&self, req: &HttpRequest) -> Result<(), ApiError> {
        match bearer(req) {
            None => Err(ApiError::unauthorized(
                "this API needs Authorization: Bearer <admin token> (HOOKLINE_ADMIN_TOKEN, printed at first start)",
            )),
            Some(token) => self.check(req, &token, "admin API request"),
        }
    }

    /// A new session id (for the cookie) and its hash (for the database).
    pub fn new_session() -> (String, String) {
        let id = crate::tokens::generate();
        let hash = sha256_hex(&id);
        (id, hash)
    }

    /// The cookie that carries session `id`.
    pub fn login_cookie(id: &str, secure: bool) -> Cookie<'static> {
        Cookie::build(SESSION_COOKIE, id.to_owned())
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .max_age(actix_web::cookie::time::Duration::seconds(SESSION_SECONDS))
            .finish()
    }

    /// A cookie that ends the session.
    pub fn logout_cookie() -> Cookie<'static> {
        let mut cookie = Cookie::build(SESSION_COOKIE, "")
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .finish();
        cookie.make_removal();
        cookie
    }

    /// The session a request's cookie names, if it is well-formed; whether
    /// it is current is the database's to say.
    pub fn presented_session(req: &HttpRequest) -> Option<Session> {
        let cookie = req.cookie(SESSION_COOKIE)?;
        let id = cookie.value();
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Session {
            id_hash: sha256_hex(id),
            csrf: sha256_hex(&format!("hookline-csrf:{id}"))[..32].to_owned(),
        })
    }
}

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim();
            (v.len() > 7 && v.is_char_boundary(7) && v[..7].eq_ignore_ascii_case("bearer "))
                .then(|| v[7..].to_owned())
        })
}

impl Session {
    /// Checks the CSRF token a form carried.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match presented {
            Some(token) if bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes())) => Ok(()),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "the form's CSRF token is missing or stale; reload the page and try again",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_check_the_token_and_survive_storage() {
        let verifier = Verifier::new("the-admin-token-of-at-least-32-chars");
        assert!(verifier.matches("the-admin-token-of-at-least-32-chars"));
        assert!(!verifier.matches("the-admin-token-of-at-least-32-charz"));
        assert!(!verifier.matches(""));
        let record = verifier.record();
        assert!(!record.contains("admin-token"), "{record}");
        let back = Verifier::parse(&record).unwrap();
        assert!(back.matches("the-admin-token-of-at-least-32-chars"));
        // Salted: the same token gives another record.
        assert_ne!(Verifier::new("x").record(), Verifier::new("x").record());
        assert!(Verifier::parse("the-admin-token-in-plain-text").is_none());
        assert!(Verifier::parse("sha256$zz$00").is_none());
        assert!(!format!("{verifier:?}").contains(&hex(&verifier.hash)));
    }

    #[test]
    fn an_address_waits_longer_after_each_failure_beyond_five() {
        let throttle = Throttle::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(throttle.failed(ip, t0), None);
        }
        assert_eq!(throttle.wait(ip, t0), None);
        assert_eq!(throttle.failed(ip, t0), Some(Duration::from_secs(5)));
        assert_eq!(throttle.wait(ip, t0), Some(Duration::from_secs(5)));
        assert_eq!(
            throttle.wait(other, t0),
            None,
            "other addresses are not slowed"
        );
        assert_eq!(throttle.failed(ip, t0), Some(Duration::from_secs(10)));
        assert_eq!(throttle.failed(ip, t0), Some(Duration::from_secs(20)));
        for _ in 0..30 {
            throttle.failed(ip, t0);
        }
        assert_eq!(throttle.wait(ip, t0), Some(MAX_WAIT));
        assert_eq!(throttle.wait(ip, t0 + MAX_WAIT), None);
        throttle.succeeded(ip);
        assert_eq!(throttle.failed(ip, t0), None, "a success starts afresh");
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_waiting_addresses_are_kept() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for n in 0..5 {
            let from = if n % 2 == 0 { a } else { b };
            assert_eq!(throttle.attempt(from, t0, || false), Err(None));
        }
        assert!(throttle.wait(b, t0).is_some(), "one /64, one count");
        assert_eq!(
            throttle.attempt(a, t0, || true),
            Err(Some(FIRST_WAIT)),
            "the right token waits too"
        );
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.attempt(other, t0, || true), Ok(()));
    }

    #[test]
    fn sessions_are_read_from_well_formed_cookies_only() {
        let (id, hash) = AdminAuth::new_session();
        let req = actix_web::test::TestRequest::default()
            .cookie(AdminAuth::login_cookie(&id, false))
            .to_http_request();
        let session = AdminAuth::presented_session(&req).unwrap();
        assert_eq!(session.id_hash, hash);
        assert_ne!(hash, id);
        assert!(session.check_csrf(Some(&session.csrf)).is_ok());
        assert!(session.check_csrf(Some("nope")).is_err());
        let forged = actix_web::test::TestRequest::default()
            .cookie(Cookie::new(SESSION_COOKIE, "1700000000.abc.def"))
            .to_http_request();
        assert!(AdminAuth::presented_session(&forged).is_none());
    }
}
