//! Counts of rejected webhook requests, by cause.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a webhook request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    MissingToken,
    InvalidToken,
    InvalidJson,
    InvalidEnvelope,
    TooLarge,
    MethodNotAllowed,
    StorageUnavailable,
    BodyTimeout,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::MissingToken,
        Cause::InvalidToken,
        Cause::InvalidJson,
        Cause::InvalidEnvelope,
        Cause::TooLarge,
        Cause::MethodNotAllowed,
        Cause::StorageUnavailable,
        Cause::BodyTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cause::MissingToken => "missing_token",
            Cause::InvalidToken => "invalid_token",
            Cause::InvalidJson => "invalid_json",
            Cause::InvalidEnvelope => "invalid_envelope",
            Cause::TooLarge => "payload_too_large",
            Cause::MethodNotAllowed => "method_not_allowed",
            Cause::StorageUnavailable => "storage_unavailable",
            Cause::BodyTimeout => "body_timeout",
        }
    }
}

/// One counter per cause.
#[derive(Debug, Default)]
pub struct Rejections([AtomicU64; 8]);

impl Rejections {
    pub fn count(&self, cause: Cause) {
        if let Some(counter) = self.0.get(cause as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(cause, count)` for every cause.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Cause::ALL
            .iter()
            .map(|cause| {
                let n = self
                    .0
                    .get(*cause as usize)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                (cause.name(), n)
            })
            .collect()
    }
}
