//! What a send's result means for the pixel (pure): delivered, retry later, or rejected for good; and when to
//! retry (exponential backoff with full jitter).

use std::time::Duration;

use interlude_outbound::{Error as SendError, StatusCode};

/// The meaning of one send's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A definitive answer the third party took: 2xx, or a 3xx the client did not follow.
    Delivered,
    /// A failure that may pass: 5xx, 408, 425, 429, timeouts, connection errors.
    Retry {
        /// The metric label.
        label: &'static str,
        /// What happened (URL redacted).
        error: String,
    },
    /// A failure that will not change: other 4xx, a URL the guard refuses or that does not parse.
    Reject {
        /// What happened (URL redacted).
        error: String,
    },
}

/// Classifies a send's result.
pub(crate) fn classify(result: &Result<StatusCode, SendError>) -> Verdict {
    match result {
        Ok(status) if status.is_success() || status.is_redirection() => Verdict::Delivered,
        // Request Timeout, Too Early, Too Many Requests: the same request may succeed later.
        Ok(status) if matches!(status.as_u16(), 408 | 425 | 429) => Verdict::Retry {
            label: "4xx",
            error: format!("HTTP {}", status.as_u16()),
        },
        Ok(status) if status.is_client_error() => Verdict::Reject {
            error: format!("HTTP {}", status.as_u16()),
        },
        Ok(status) => Verdict::Retry {
            label: if status.is_server_error() {
                "5xx"
            } else {
                "1xx"
            },
            error: format!("HTTP {}", status.as_u16()),
        },
        Err(
            e @ (SendError::Refused { .. } | SendError::Invalid { .. } | SendError::Config { .. }),
        ) => Verdict::Reject {
            error: e.to_string(),
        },
        Err(e) => Verdict::Retry {
            label: e.outcome(),
            error: e.to_string(),
        },
    }
}

/// The delay before retry number `retry` (1 for the first): a uniform draw (`unit` in `[0, 1)`) from
/// `[0, min(max, base · 2^(retry-1))]` ("full jitter": spreads the retries of a burst that failed together).
pub(crate) fn backoff(retry: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = retry.saturating_sub(1).min(32);
    let ceiling = base.saturating_mul(1u32 << exp.min(31)).min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Result<StatusCode, SendError> {
        Ok(StatusCode::from_u16(code).expect("status"))
    }

    #[test]
    fn answers_are_classified_by_whether_they_can_change() {
        for code in [200, 204, 302, 304] {
            assert_eq!(classify(&status(code)), Verdict::Delivered, "{code}");
        }
        for code in [400, 401, 403, 404, 410, 414] {
            assert!(
                matches!(classify(&status(code)), Verdict::Reject { .. }),
                "{code}"
            );
        }
        for code in [408, 425, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(&status(code)), Verdict::Retry { .. }),
                "{code}"
            );
        }
    }

    #[test]
    fn refusals_are_final_and_transport_errors_are_retried() {
        let refused = Err(SendError::Refused {
            url: "https://127.0.0.1/?[redacted]".into(),
            reason: interlude_outbound::Refusal::NoHost,
        });
        assert!(matches!(classify(&refused), Verdict::Reject { .. }));
        let timeout = Err(SendError::Timeout {
            url: "https://t/".into(),
            after: Duration::from_secs(5),
        });
        assert_eq!(
            classify(&timeout),
            Verdict::Retry {
                label: "timeout",
                error: "https://t/: no complete answer within 5000 ms".into()
            }
        );
    }

    #[test]
    fn backoff_grows_exponentially_under_the_cap_with_full_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        let almost_one = 1.0 - f64::EPSILON;
        assert_eq!(backoff(1, base, max, 0.0), Duration::ZERO);
        assert!(backoff(1, base, max, almost_one) <= base);
        assert!(backoff(4, base, max, almost_one) <= Duration::from_millis(800));
        assert!(backoff(4, base, max, almost_one) > Duration::from_millis(790));
        assert!(backoff(60, base, max, almost_one) <= max);
        assert_eq!(backoff(3, base, max, 0.5), Duration::from_millis(200));
    }
}
