//! Admin authentication: `Authorization: Bearer <admin token>` for the API;
//! for the pages, a login form that sets a signed, HttpOnly,
//! SameSite=Strict session cookie, and a CSRF token on every form that
//! changes something.
//!
//! Sessions are stateless: the cookie carries its expiry and a nonce,
//! signed with HMAC-SHA256 under a secret kept in the database and the
//! admin tokens themselves, so rotating the admin token ends every session.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::tokens::Tokens;

pub const SESSION_COOKIE: &str = "hookline_session";
/// How long a login lasts.
const SESSION_SECONDS: i64 = 12 * 3600;

/// The admin tokens and the session secret.
pub struct AdminAuth {
    pub tokens: Tokens,
    key: Vec<u8>,
}

/// A logged-in page session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token forms must carry back.
    pub csrf: String,
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AdminAuth {
    /// `secret` is random and stored; the tokens are folded into the key so
    /// that a new admin token invalidates old sessions.
    pub fn new(tokens: Tokens, secret: &str) -> AdminAuth {
        let mut key = secret.as_bytes().to_vec();
        key.extend_from_slice(tokens.fingerprint().as_bytes());
        AdminAuth { tokens, key }
    }

    /// The API's check: a valid bearer token.
    pub fn require_bearer(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let v = v.trim();
                (v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ")).then(|| v[7..].to_owned())
            });
        match presented {
            None => Err(ApiError::unauthorized(
                "this API needs Authorization: Bearer <admin token> (HOOKLINE_ADMIN_TOKEN, printed at first start)",
            )),
            Some(token) if self.tokens.matching(&token).is_some() => Ok(()),
            Some(_) => Err(ApiError::unauthorized("the admin token is not valid")),
        }
    }

    /// A new session cookie after a successful login.
    pub fn login_cookie(&self, now: i64, secure: bool) -> Cookie<'static> {
        let nonce = crate::tokens::generate();
        let expires = now + SESSION_SECONDS;
        let payload = format!("{expires}.{}", &nonce[..32]);
        let signature = hex(&hmac(&self.key, payload.as_bytes()));
        Cookie::build(SESSION_COOKIE, format!("{payload}.{signature}"))
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

    /// The session of a request, if its cookie is valid and current.
    pub fn session(&self, req: &HttpRequest, now: i64) -> Option<Session> {
        let cookie = req.cookie(SESSION_COOKIE)?;
        let value = cookie.value();
        let (payload, signature) = value.rsplit_once('.')?;
        let expected = hex(&hmac(&self.key, payload.as_bytes()));
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return None;
        }
        let (expires, nonce) = payload.split_once('.')?;
        if expires.parse::<i64>().ok()? < now {
            return None;
        }
        Some(Session {
            csrf: hex(&hmac(&self.key, format!("csrf:{nonce}").as_bytes()))[..32].to_owned(),
        })
    }
}

impl Session {
    /// Checks the CSRF token a form carried.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match presented {
            Some(token) if bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes())) => Ok(()),
            _ => Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
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
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sessions_verify_and_expire() {
        let auth = AdminAuth::new(Tokens::new(["admin".to_owned()]), "secret");
        let cookie = auth.login_cookie(1_000, false);
        let req = actix_web::test::TestRequest::default()
            .cookie(cookie.clone())
            .to_http_request();
        assert!(auth.session(&req, 1_001).is_some());
        assert!(auth.session(&req, 1_000 + SESSION_SECONDS + 1).is_none());
        let rotated = AdminAuth::new(Tokens::new(["other".to_owned()]), "secret");
        assert!(
            rotated.session(&req, 1_001).is_none(),
            "a new admin token ends sessions"
        );
        let mut forged = cookie.clone();
        forged.set_value(cookie.value().replace('.', ",").replacen(',', ".", 1));
        let req = actix_web::test::TestRequest::default()
            .cookie(forged)
            .to_http_request();
        assert!(auth.session(&req, 1_001).is_none());
    }
}
