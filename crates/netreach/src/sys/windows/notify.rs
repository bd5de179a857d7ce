//! IP Helper change notifications (`NotifyIpInterfaceChange`, `NotifyUnicastIpAddressChange`,
//! `NotifyRouteChange2`): each one only says "read again".

use std::ffi::c_void;
use std::sync::mpsc::Sender;

use windows::Win32::Foundation::{ERROR_SUCCESS, HANDLE, WIN32_ERROR};
use windows::Win32::NetworkManagement::IpHelper::{
    CancelMibChangeNotify2, NotifyIpInterfaceChange, NotifyRouteChange2, NotifyUnicastIpAddressChange,
    MIB_IPFORWARD_ROW2, MIB_IPINTERFACE_ROW, MIB_NOTIFICATION_TYPE, MIB_UNICASTIPADDRESS_ROW,
};
use windows::Win32::Networking::WinSock::AF_UNSPEC;

use super::iphlpapi::win32;
use super::Msg;

/// The IP Helper change notifications, registered for as long as this lives. Each callback's
/// context is a boxed channel sender and nothing else: a late callback can only send a message
/// that nobody reads. `CancelMibChangeNotify2` waits for running callbacks, so the context is
/// freed only after every registration is cancelled.
pub(crate) struct Notifications {
    handles: Vec<HANDLE>,
    context: *mut Sender<Msg>,
}

// SAFETY: the handles are only passed to CancelMibChangeNotify2, which takes them from any
// thread, and the context, a `Box<Sender<Msg>>`, is only freed in Drop: a box of a `Send` value
// may be freed on another thread. Until then IP Helper's threads share it as `&Sender<Msg>`,
// which needs `Sync`. Both bounds are asserted below.
unsafe impl Send for Notifications {}

const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Sender<Msg>>();
};

impl Notifications {
    /// Registers for interface, address and route changes of both families.
    pub(crate) fn register(to_backend: Sender<Msg>) -> std::io::Result<Notifications> {
        let mut this = Notifications { handles: Vec::new(), context: Box::into_raw(Box::new(to_backend)) };
        let context = this.context as *const c_void;
        // Each registration below is sound for the same reasons: the callback has the signature
        // IP Helper calls; `context` is the boxed sender, alive until `drop` has cancelled every
        // registration (and CancelMibChangeNotify2 waits for a callback in progress); `handle`
        // is a live local for the out-handle. If one fails, `this` drops: the earlier ones are
        // cancelled and the context freed.
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyIpInterfaceChange(AF_UNSPEC, Some(on_interface), Some(context), false, &mut handle) })?;
        this.handles.push(handle);
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyUnicastIpAddressChange(AF_UNSPEC, Some(on_address), Some(context), false, &mut handle) })?;
        this.handles.push(handle);
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyRouteChange2(AF_UNSPEC, Some(on_route), context, false, &mut handle) })?;
        this.handles.push(handle);
        #[cfg(test)]
        {
            *tests_hook::LAST_CONTEXT.lock().unwrap() = this.context as usize;
        }
        Ok(this)
    }
}

fn check(result: WIN32_ERROR) -> std::io::Result<()> {
    if result == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(win32(result))
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        for handle in self.handles.drain(..) {
            // Fails only for a handle that is not registered, which cannot happen here.
            // SAFETY: `handle` came from a successful registration and is cancelled once (it is
            // drained). This never runs on a callback's thread (callbacks only send), so the
            // wait for a callback in progress cannot wait for itself.
            let _ = unsafe { CancelMibChangeNotify2(handle) };
        }
        // SAFETY: `context` came from `Box::into_raw` in `register` and is freed only here,
        // once. Every registration that could pass it to a callback is cancelled above, and
        // CancelMibChangeNotify2 returned after any callback in progress: nothing reads it now.
        drop(unsafe { Box::from_raw(self.context) });
    }
}

/// Every notification means "read again": the re-read is diffed by the engine. Sending fails
/// only once the backend has stopped, which is harmless.
///
/// # Safety
/// `context` is the `Sender<Msg>` registered by [`Notifications::register`], alive until the
/// registration is cancelled.
unsafe fn notify(context: *const c_void) {
    // SAFETY: by the contract, null or the live boxed sender; a shared reference is fine from
    // any of IP Helper's threads at once, as `Sender` is `Sync` (asserted above).
    if let Some(sender) = unsafe { (context as *const Sender<Msg>).as_ref() } {
        let _ = sender.send(Msg::IpChanged);
    }
}

/// The three callbacks ignore the row and the kind of change: they only say "read again".
///
/// # Safety
/// `context` is the one registered with the callback (as for [`notify`]): IP Helper passes
/// back exactly that, and only until the registration is cancelled.
unsafe extern "system" fn on_interface(
    context: *const c_void,
    _: *const MIB_IPINTERFACE_ROW,
    _: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// # Safety
/// As for [`on_interface`].
unsafe extern "system" fn on_address(
    context: *const c_void,
    _: *const MIB_UNICASTIPADDRESS_ROW,
    _: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// # Safety
/// As for [`on_interface`].
unsafe extern "system" fn on_route(context: *const c_void, _: *const MIB_IPFORWARD_ROW2, _: MIB_NOTIFICATION_TYPE) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// Tests call the registered callbacks themselves: Wine never fires them.
#[cfg(test)]
pub(crate) mod tests_hook {
    use std::ffi::c_void;
    use std::sync::Mutex;

    /// The context of the last registration (an address, so the static is `Send`).
    pub(crate) static LAST_CONTEXT: Mutex<usize> = Mutex::new(0);

    /// Calls the route-change callback exactly as IP Helper would, with `context`.
    ///
    /// # Safety
    /// `context` is the context of a [`super::Notifications`] that is still alive (what
    /// [`LAST_CONTEXT`] holds while the last one registered lives).
    pub(crate) unsafe fn route_changed(context: *const c_void) {
        // SAFETY: a live registration's context (this function's contract), and a null row,
        // which `on_route` never reads.
        unsafe { super::on_route(context, std::ptr::null(), Default::default()) }
    }
}
