//! The DNS resolver of the guarded client: the system resolver, then the guard on every address.
//!
//! reqwest connects only to the addresses this returns, so the check is made on the addresses actually
//! connected to — a name that answers a public address to a first lookup and a private one to the next
//! (DNS rebinding) is caught on the lookup that matters. Refused addresses are dropped; when none is left the
//! lookup fails with the [`Refusal`] of the first, which [`crate::GuardedClient`] finds in the error chain.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::Refusal;
use crate::policy::Policy;

/// The system resolver (getaddrinfo on tokio's blocking pool) followed by [`Policy::check_resolved`].
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<Policy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<Policy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: hyper sets the URL's port on each address.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal: Option<Refusal> = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.check_resolved(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        first_refusal.get_or_insert(refusal);
                        false
                    }
                })
                .collect();
            match (kept.is_empty(), first_refusal) {
                (true, Some(refusal)) => {
                    Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(kept.into_iter()) as Addrs),
            }
        })
    }
}
