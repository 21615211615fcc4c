//! An answer of the guarded client, body read in full under the cap of its kind.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url, Version};

use crate::error::{Error, Result};

/// An answer, body read in full under the cap of its kind.
#[derive(Clone)]
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) url: Url,
    pub(crate) redacted: String,
    pub(crate) body: Bytes,
    /// Body bytes received (also those of a discarded body).
    pub(crate) received: u64,
}

/// Redacted URL and the body's length only: logs get no body content and no query string.
impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("url", &self.redacted)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version spoken (HTTP/2 where the server offered it over TLS).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value when present and visible ASCII.
    pub fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL that answered, after redirects: the base for relative URIs in playlists and VAST. Not redacted;
    /// log [`Response::redacted_url`] instead.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The requested URL, redacted, for logs.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body, owned.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The body as text, invalid UTF-8 replaced by U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `self` when the status is 2xx, else [`Error::Status`].
    pub fn require_success(self) -> Result<Response> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(Error::Status {
                url: self.redacted,
                status: self.status.as_u16(),
            })
        }
    }
}
