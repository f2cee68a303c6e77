//! HTTP Basic authentication in front of every endpoint, answering like Druid's
//! `druid-basic-security` authenticator: the Overlord's unsecured paths stay open.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;

/// Paths the Overlord serves without authentication (Druid's `UNSECURED_PATHS`).
const UNSECURED_PATHS: [&str; 2] = ["/status/health", "/druid/indexer/v1/isLeader"];

/// The one user druid-local accepts when authentication is required.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// User name.
    pub user: String,
    /// Password.
    pub pass: String,
}

impl BasicCredentials {
    /// Credentials from a user and a password.
    pub fn new(user: impl Into<String>, pass: impl Into<String>) -> Self {
        BasicCredentials {
            user: user.into(),
            pass: pass.into(),
        }
    }

    /// Parses `user:pass`. Druid splits the decoded secret on every `:` and wants exactly two
    /// non-empty-tailed parts, so a password containing `:` could never log in: refused here.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (user, pass) = s
            .split_once(':')
            .ok_or_else(|| "basic auth must be given as user:pass".to_owned())?;
        if user.is_empty() || pass.is_empty() {
            return Err("basic auth user and password must both be non-empty".into());
        }
        if pass.contains(':') {
            return Err(
                "basic auth password must not contain ':' (Druid's basic authenticator rejects it)"
                    .into(),
            );
        }
        Ok(Self::new(user, pass))
    }
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("pass", &"<redacted>")
            .finish()
    }
}

/// What the request's `Authorization` header amounts to.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    /// No header, or not the `Basic` scheme: the authenticator passes it on.
    Nothing,
    /// A `Basic` header that does not decode to exactly `user:pass`.
    Malformed,
    /// Decoded user and password.
    Credentials(String, String),
}

fn presented(req: &Request) -> Presented {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Presented::Nothing;
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
        return Presented::Nothing;
    };
    let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return Presented::Malformed;
    };
    // Druid splits on ':' dropping trailing empty parts and wants exactly two.
    let mut parts: Vec<&str> = decoded.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    match parts.as_slice() {
        [user, pass] => Presented::Credentials((*user).to_owned(), (*pass).to_owned()),
        _ => Presented::Malformed,
    }
}

/// What the authentication layer needs.
#[derive(Debug)]
pub struct Guard {
    /// The accepted credentials.
    pub creds: BasicCredentials,
    /// Host named in the 401 body.
    pub host: String,
}

/// Rejects requests without valid credentials; unsecured paths pass untouched.
pub async fn require(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let creds = &guard.creds;
    if UNSECURED_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match presented(&req) {
        Presented::Credentials(u, p) if u == creds.user && p == creds.pass => next.run(req).await,
        Presented::Credentials(..) | Presented::Malformed => rejected(),
        Presented::Nothing => challenge(&guard.host),
    }
}

/// No authenticator accepted the request: Druid's last filter answers 401 with a challenge
/// per configured scheme and a query-error JSON body.
fn challenge(host: &str) -> Response {
    let body = serde_json::json!({
        "error": "Unauthorized request.",
        "errorMessage": null,
        "errorClass": null,
        "host": host,
    });
    let mut r = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    r
}

/// Wrong or undecodable credentials: the basic authenticator stops the chain with the
/// servlet container's bare 401 error page, without a challenge.
fn rejected() -> Response {
    let mut r = Response::new(Body::from(
        "<html><body><h2>HTTP ERROR 401 Unauthorized</h2></body></html>\n",
    ));
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=iso-8859-1"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder().uri("/druid/v2");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).expect("request")
    }

    fn basic(raw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn reads_the_authorization_header_like_druid() {
        assert_eq!(presented(&req(None)), Presented::Nothing);
        assert_eq!(presented(&req(Some("Bearer x"))), Presented::Nothing);
        assert_eq!(presented(&req(Some("Basic %%%"))), Presented::Malformed);
        assert_eq!(
            presented(&req(Some(&basic("nocolon")))),
            Presented::Malformed
        );
        assert_eq!(presented(&req(Some(&basic("a:b:c")))), Presented::Malformed);
        assert_eq!(presented(&req(Some(&basic("a:")))), Presented::Malformed);
        assert_eq!(
            presented(&req(Some(&basic("admin:s3cret")))),
            Presented::Credentials("admin".into(), "s3cret".into())
        );
    }

    #[test]
    fn parses_and_redacts_credentials() {
        let c = BasicCredentials::parse("admin:s3cret").expect("valid");
        assert_eq!(c, BasicCredentials::new("admin", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(BasicCredentials::parse("admin").is_err());
        assert!(BasicCredentials::parse(":x").is_err());
        assert!(BasicCredentials::parse("a:b:c").is_err());
    }
}
