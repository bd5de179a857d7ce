//! One backend per operating system behind [`crate::monitor::Backend`].

#[cfg(target_os = "linux")]
pub(crate) mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::networkmanager::start as start_networkmanager;
#[cfg(target_os = "linux")]
pub(crate) use linux::{enter_netns, start};

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows::start;

#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) fn start(
    _: &crate::MonitorBuilder,
) -> Result<(Box<dyn crate::monitor::Backend>, crate::NetworkState), crate::Error> {
    Err(crate::Error::unsupported(format!("netreach has no backend for {} yet", std::env::consts::OS)))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enter_netns(_: &crate::Netns) -> Result<(), crate::Error> {
    Err(crate::Error::unsupported(format!("network namespaces do not exist on {}", std::env::consts::OS)))
}

/// NetworkManager exists only on Linux: `auto` means the kernel alone elsewhere.
#[cfg(not(target_os = "linux"))]
pub(crate) fn start_networkmanager(
    config: &crate::MonitorBuilder,
    _: &crate::monitor::VerdictSink,
) -> Result<Option<std::sync::Arc<dyn crate::monitor::Refiner>>, crate::Error> {
    match config.backend {
        crate::BackendKind::NetworkManager => {
            Err(crate::Error::unsupported("the NetworkManager backend exists only on Linux"))
        }
        _ => Ok(None),
    }
}
