//! Request errors and their HTTP face: the original server's status codes and messages.
//!
//! Bodies are `text/plain`, the message followed by a newline, as the original answered.
//! Where the original said only "Malformed JSON", we add what was wrong after a colon.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Missing or unsupported `Content-Type`.
    #[error("Expected contentType application/json, application/x-jackson-smile, or text/plain")]
    UnsupportedContentType,
    /// `text/plain` bodies must name their dataSource in the URL.
    #[error("Must include dataSource in URL for contentType[text/plain]")]
    TextNeedsDataSource,
    /// No dataSource of that name is configured.
    #[error("No definition for dataSource '{0}'")]
    UnknownDataSource(String),
    /// An object posted to `/v1/post` names no dataSource.
    #[error("Missing 'dataSource' or 'feed'")]
    MissingDataSource,
    /// The body is not well-formed JSON or Smile.
    #[error("Malformed JSON: {0}")]
    MalformedJson(String),
    /// The body has elements but no object at all.
    #[error("Malformed JSON: expected an object or an array of objects, found {elements} {}, none an object ({kinds})", if *elements == 1 { "element" } else { "elements" })]
    NoObject {
        /// How many elements the body held.
        elements: usize,
        /// Their JSON types, in order, repeats folded.
        kinds: String,
    },
    /// A `text/plain` line could not be parsed (lines count from 1).
    #[error("Malformed string on line[{line}]: {message}")]
    MalformedString {
        /// The line number, from 1.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// `Content-Encoding` other than gzip, x-gzip or identity.
    #[error("Unrecognized request Content-Encoding")]
    UnrecognizedEncoding,
    /// A gzip body that does not decompress.
    #[error("Malformed gzip body: {0}")]
    MalformedGzip(String),
    /// `?async=` with a value that is not a boolean.
    #[error("Expected true or false")]
    BadAsync,
    /// The body, or its decompressed form, is larger than the configured limit.
    #[error("Request body larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The dataSource's buffer is full and the server does not block.
    #[error("Buffer full for dataSource '{0}'")]
    BufferFull(String),
    /// The dataSource's parseSpec cannot parse `text/plain` lines.
    #[error("Cannot parse contentType[text/plain] for dataSource '{data_source}': {reason}")]
    TextNotSupported {
        /// The dataSource.
        data_source: String,
        /// Why its parseSpec cannot parse text.
        reason: String,
    },
    /// The request body could not be read.
    #[error("Could not read the request body: {0}")]
    BodyRead(String),
    /// Sending failed for some events (sync mode); the counts say what happened to the rest.
    #[error("Server error: {failed} of {received} events failed ({sent} sent, {dropped} dropped): {first_error}")]
    SendFailed {
        /// Events in the request.
        received: u64,
        /// Events sent.
        sent: u64,
        /// Events dropped.
        dropped: u64,
        /// Events whose sending failed.
        failed: u64,
        /// The first failure's message.
        first_error: String,
    },
}

impl RequestError {
    /// The HTTP status the original server used for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BufferFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::SendFailed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let body = format!("{self}\n");
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}
