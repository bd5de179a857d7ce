//! `NetreachOptions`: how to build a monitor (namespace, backend, probe), set one field at a
//! time so that new settings never change the ABI.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use netreach::probe::{Endpoint, ProbeConfig};
use netreach::{BackendKind, MonitorBuilder};

use crate::args::{object, text};
use crate::error::{guard, Failure, NetreachStatus};

/// Which source refines the kernel's view. Passed as an `int`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachBackend {
    /// NetworkManager when the system bus answers, else the kernel alone (the default).
    Auto = 0,
    /// The kernel alone (plus the probe, if configured).
    Kernel = 1,
    /// NetworkManager on top of the kernel: creating the monitor fails when it does not answer.
    Networkmanager = 2,
}

/// Settings for `netreach_monitor_new()`. Made by `netreach_options_new()`, freed by
/// `netreach_options_free()`; a monitor copies what it needs, so the options may be freed or
/// reused once the monitor exists. Not for use from two threads at once.
#[derive(Default)]
pub struct NetreachOptions {
    pub(crate) builder: MonitorBuilder,
    endpoints: Vec<Endpoint>,
    probe_timeout: Option<Duration>,
}

impl NetreachOptions {
    /// The builder with the probe (if any endpoint was added) configured.
    pub(crate) fn to_builder(&self) -> MonitorBuilder {
        if self.endpoints.is_empty() {
            return self.builder.clone();
        }
        let mut probe = ProbeConfig::new().endpoints(self.endpoints.clone());
        if let Some(total) = self.probe_timeout {
            probe = probe.total_timeout(total).connect_timeout(total).dns_timeout(total);
        }
        self.builder.clone().probe(probe)
    }
}

/// New default options: the caller's own namespace, `NETREACH_BACKEND_AUTO`, no probe.
/// Never NULL.
///
/// ```c
/// NetreachOptions *options = netreach_options_new();
/// netreach_options_set_netns(options, "blue");
/// ```
#[no_mangle]
pub extern "C" fn netreach_options_new() -> *mut NetreachOptions {
    Box::into_raw(Box::default())
}

/// Frees options (NULL is allowed and does nothing).
///
/// ```c
/// netreach_options_free(options);
/// ```
///
/// # Safety
/// `options` must be NULL or options not yet freed.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_free(options: *mut NetreachOptions) {
    if !options.is_null() {
        // SAFETY: made by `Box::into_raw` in `netreach_options_new`, freed once by the caller.
        let owned = unsafe { Box::from_raw(options) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(owned)));
    }
}

/// Mutable options from a C pointer.
///
/// # Safety
/// `options` must be NULL or live options not used by another thread meanwhile.
unsafe fn options_mut<'a>(options: *mut NetreachOptions) -> Result<&'a mut NetreachOptions, Failure> {
    // SAFETY: NULL is refused; otherwise the caller promises exclusive access.
    unsafe { options.as_mut() }.ok_or_else(|| Failure::invalid("options is NULL"))
}

/// Monitors another network namespace: a name (`/run/netns/NAME`, as `ip netns add` makes) or,
/// when it contains a `/`, a namespace file such as `/proc/PID/ns/net`. Needs CAP_SYS_ADMIN.
/// The namespace is opened (and an unknown one refused) by `netreach_monitor_new()`.
///
/// ```c
/// netreach_options_set_netns(options, "/proc/1234/ns/net");
/// ```
///
/// # Safety
/// `options` NULL or live options; `netns` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_set_netns(
    options: *mut NetreachOptions,
    netns: *const c_char,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let options = unsafe { options_mut(options) }?;
        // SAFETY: as documented for the caller.
        let netns = unsafe { text(netns, "netns") }?;
        if netns.is_empty() {
            return Err(Failure::invalid("netns is empty (expected a namespace name or a path)"));
        }
        let builder = std::mem::take(&mut options.builder);
        options.builder = if netns.contains('/') { builder.netns_path(netns) } else { builder.netns(netns) };
        Ok(())
    })
}

/// Chooses the backend: one of `NETREACH_BACKEND_AUTO`, `_KERNEL`, `_NETWORKMANAGER`.
///
/// ```c
/// netreach_options_set_backend(options, NETREACH_BACKEND_KERNEL);
/// ```
///
/// # Safety
/// `options` NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_set_backend(options: *mut NetreachOptions, backend: c_int) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let options = unsafe { options_mut(options) }?;
        let kind = match backend {
            0 => BackendKind::Auto,
            1 => BackendKind::Kernel,
            2 => BackendKind::NetworkManager,
            other => {
                return Err(Failure::invalid(format!(
                    "unknown backend {other} (expected NETREACH_BACKEND_AUTO, _KERNEL or _NETWORKMANAGER: 0, 1 or 2)"
                )))
            }
        };
        options.builder = std::mem::take(&mut options.builder).backend(kind);
        Ok(())
    })
}

/// The system bus's D-Bus address for the NetworkManager backend, e.g.
/// `unix:path=/run/dbus/system_bus_socket` (default: `DBUS_SYSTEM_BUS_ADDRESS`, else that path).
///
/// ```c
/// netreach_options_set_system_bus_address(options, "unix:path=/tmp/sandbox/bus");
/// ```
///
/// # Safety
/// `options` NULL or live options; `address` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_set_system_bus_address(
    options: *mut NetreachOptions,
    address: *const c_char,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let options = unsafe { options_mut(options) }?;
        // SAFETY: as documented for the caller.
        let address = unsafe { text(address, "address") }?;
        options.builder = std::mem::take(&mut options.builder).system_bus_address(address);
        Ok(())
    })
}

/// Turns the HTTP connectivity probe on and adds an endpoint (tried in the order added):
/// `http://HOST[:PORT][/PATH]`, answering `expect_status` when online (0 means 204). The probe
/// is off unless an endpoint is added: netreach never contacts a server it was not given
/// here. A bad URL or status is refused at once.
///
/// ```c
/// netreach_options_add_probe_url(options, "http://192.0.2.1/generate_204", 204);
/// ```
///
/// # Safety
/// `options` NULL or live options; `url` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_add_probe_url(
    options: *mut NetreachOptions,
    url: *const c_char,
    expect_status: c_int,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let options = unsafe { options_mut(options) }?;
        // SAFETY: as documented for the caller.
        let url = unsafe { text(url, "url") }?;
        let status = match expect_status {
            0 => 204,
            100..=599 => expect_status as u16,
            other => {
                return Err(Failure::invalid(format!(
                    "expect_status {other} is not an HTTP status (100-599, or 0 for 204)"
                )))
            }
        };
        options.endpoints.push(Endpoint::new(url)?.expect_status(status));
        Ok(())
    })
}

/// Bounds each probe of one endpoint (name resolution, connect, whole exchange) to
/// `milliseconds` (above 0; default: DNS 5 s, connect 5 s, total 10 s).
///
/// ```c
/// netreach_options_set_probe_timeout_ms(options, 2000);
/// ```
///
/// # Safety
/// `options` NULL or live options.
#[no_mangle]
pub unsafe extern "C" fn netreach_options_set_probe_timeout_ms(
    options: *mut NetreachOptions,
    milliseconds: u32,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let options = unsafe { options_mut(options) }?;
        if milliseconds == 0 {
            return Err(Failure::invalid("probe timeout must be above 0 ms"));
        }
        options.probe_timeout = Some(Duration::from_millis(milliseconds.into()));
        Ok(())
    })
}

/// Options from a C pointer that may be NULL (defaults).
///
/// # Safety
/// `options` NULL or live options.
pub(crate) unsafe fn builder(options: *const NetreachOptions) -> MonitorBuilder {
    if options.is_null() {
        return MonitorBuilder::default();
    }
    // SAFETY: not NULL; the caller promises live options.
    unsafe { object(options, "options") }.map(NetreachOptions::to_builder).unwrap_or_default()
}
