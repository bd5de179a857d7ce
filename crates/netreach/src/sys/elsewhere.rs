//! What only Linux has, everywhere else: network namespaces and NetworkManager.

use std::sync::Arc;

use super::{InputSink, NetworkManagerConfig};
use crate::backend::{BackendKind, Netns};
use crate::model::Error;

/// Network namespaces exist only on Linux.
pub(crate) fn enter_netns(_: &Netns) -> Result<(), Error> {
    Err(Error::unsupported(format!("network namespaces do not exist on {}", std::env::consts::OS)))
}

/// NetworkManager exists only on Linux: `auto` means the kernel alone elsewhere.
pub(crate) fn start_networkmanager(
    config: &NetworkManagerConfig,
    _: Arc<dyn InputSink>,
) -> Result<Option<NetworkManager>, Error> {
    match config.backend {
        BackendKind::NetworkManager => Err(Error::unsupported("the NetworkManager backend exists only on Linux")),
        BackendKind::Auto | BackendKind::Kernel => Ok(None),
    }
}

/// The NetworkManager source, which cannot exist here (no value of this type can be made).
pub(crate) enum NetworkManager {}

impl NetworkManager {
    /// Never called: there is no NetworkManager source to ask.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match *self {}
    }
}
