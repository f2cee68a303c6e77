//! HTTP Basic authentication of clients (`http.basicAuth.user` / `http.basicAuth.pass`):
//! every route but `GET /` and `GET /health` needs the credentials, so liveness probes keep
//! working without them.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tranquility::spec::Secret;

/// The challenge sent with every 401.
pub const CHALLENGE: &str = "Basic realm=\"tranquility\"";

/// The credentials clients must present. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub pass: Secret,
}

impl Credentials {
    /// Whether `header` (an `Authorization` value) carries exactly these credentials.
    pub fn accepts(&self, header: &HeaderValue) -> bool {
        let Some(encoded) = header.to_str().ok().and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        }) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        // The user name cannot contain ':' (RFC 7617), the password may.
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
        // Both compared in full, whatever matches first, so timing tells nothing.
        let user_ok = constant_time_eq(user, self.user.as_bytes());
        let pass_ok = constant_time_eq(pass, self.pass.expose().as_bytes());
        user_ok & pass_ok
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Whether a request may skip authentication.
fn is_open(req: &Request) -> bool {
    req.method() == Method::GET && matches!(req.uri().path(), "/" | "/health")
}

/// Middleware: answers 401 unless the request is open or carries the credentials. The body
/// is never read for a rejected request, so nothing is ingested.
pub async fn require(State(creds): State<Credentials>, req: Request, next: Next) -> Response {
    let ok = is_open(&req)
        || req
            .headers()
            .get(header::AUTHORIZATION)
            .is_some_and(|h| creds.accepts(h));
    if ok {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, CHALLENGE),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "Unauthorized: this server requires HTTP Basic credentials\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            user: "ingest".into(),
            pass: Secret::new("p:w"),
        }
    }

    fn basic(raw: &str) -> HeaderValue {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        HeaderValue::from_str(&v).expect("header")
    }

    #[test]
    fn accepts_only_the_exact_credentials() {
        let c = creds();
        assert!(c.accepts(&basic("ingest:p:w")));
        assert!(c.accepts(&HeaderValue::from_static("basic aW5nZXN0OnA6dw==")));
        for bad in [
            "ingest:p",
            "ingest:p:w2",
            "ingest2:p:w",
            "ingest",
            "",
            ":p:w",
        ] {
            assert!(!c.accepts(&basic(bad)), "{bad}");
        }
        assert!(!c.accepts(&HeaderValue::from_static("Bearer aW5nZXN0OnA6dw==")));
        assert!(!c.accepts(&HeaderValue::from_static("Basic ###")));
        assert!(!format!("{c:?}").contains("p:w"));
    }

    #[test]
    fn constant_time_eq_compares_lengths_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }
}
