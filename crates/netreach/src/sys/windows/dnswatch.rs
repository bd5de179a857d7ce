//! Following DNS configuration changes without polling: the registry keys Windows keeps it in,
//! watched with `RegNotifyChangeKeyValue`.
//!
//! Windows stores each adapter's servers and suffixes (configured by hand or learned by DHCP)
//! under `HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{GUID}` (and
//! `Tcpip6\...` for IPv6), and the machine's suffixes in `Parameters` itself. A server changed
//! with no address or route change (a DHCP renewal, `netsh`, the adapter's settings) raises no
//! IP Helper notification, so both keys are watched, subtree included, as Chromium's DNS
//! configuration watcher does. Any change there means "read again": the re-read (which reads
//! the servers through `GetAdaptersAddresses`) is diffed by the engine, and only a different
//! configuration becomes a `dns_changed` event.
//!
//! A key that does not exist is not watched (a Wine prefix has no `Tcpip6` key; a system
//! without IPv6 may have none either). The notification is tied to the thread that asked for
//! it, so one thread of its own asks, waits and asks again, until the watch is dropped.

use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use windows::core::{w, PCWSTR};
use windows::Win32::Foundation::{CloseHandle, ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, HANDLE, WAIT_OBJECT_0};
use windows::Win32::System::Registry::{
    RegCloseKey, RegNotifyChangeKeyValue, RegOpenKeyExW, HKEY, HKEY_LOCAL_MACHINE, KEY_NOTIFY,
    REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME,
};
use windows::Win32::System::Threading::{CreateEventW, SetEvent, WaitForMultipleObjects, INFINITE};

use super::iphlpapi::win32;
use super::Msg;

/// The keys watched, under `HKEY_LOCAL_MACHINE`.
const KEYS: [PCWSTR; 2] = [
    w!(r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"),
    w!(r"SYSTEM\CurrentControlSet\Services\Tcpip6\Parameters"),
];

/// An auto-reset event, closed on drop.
struct Event(HANDLE);

// SAFETY: an event handle names a kernel object of the process, usable from any thread; it is
// only signalled, waited on and closed (once, in drop, when no thread uses it any more).
unsafe impl Send for Event {}
// SAFETY: as above: SetEvent and waits may run on several threads at once.
unsafe impl Sync for Event {}

impl Event {
    fn new() -> std::io::Result<Event> {
        // SAFETY: no security attributes and no name (both None): a fresh, unnamed auto-reset
        // event, not signalled, owned by the returned value.
        unsafe { CreateEventW(None, false, false, None) }.map(Event).map_err(std::io::Error::other)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: a handle CreateEventW gave this value, closed once, here.
        let _ = unsafe { CloseHandle(self.0) };
    }
}

/// One open key and the event its change notification signals; closed on drop (which ends
/// the notification).
struct Key {
    key: HKEY,
    changed: Event,
}

impl Key {
    /// Opens `path` for notifications; `None` when it does not exist.
    fn open(path: PCWSTR) -> std::io::Result<Option<Key>> {
        let changed = Event::new()?;
        let mut key = HKEY::default();
        // SAFETY: a predefined root, a static NUL-terminated path, no options (None), and a live
        // local for the key, which the returned `Key` owns and closes.
        match unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, None, KEY_NOTIFY, &mut key) } {
            ERROR_SUCCESS => Ok(Some(Key { key, changed })),
            ERROR_FILE_NOT_FOUND => Ok(None),
            e => Err(win32(e)),
        }
    }

    /// Asks for the next change of the key, its subtree, names or values, to signal `changed`.
    fn arm(&self) -> std::io::Result<()> {
        #[cfg(test)]
        super::session::faults::check("RegNotifyChangeKeyValue").map_err(std::io::Error::other)?;
        let filter = REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET;
        // SAFETY: a key this value holds open (KEY_NOTIFY) and an event it owns, both alive
        // until after the key is closed (drop order: `key` closes in `drop`, before `changed`).
        match unsafe { RegNotifyChangeKeyValue(self.key, true, filter, Some(self.changed.0), true) } {
            ERROR_SUCCESS => Ok(()),
            e => Err(win32(e)),
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the key RegOpenKeyExW gave this value, closed once, here.
        let _ = unsafe { RegCloseKey(self.key) };
    }
}

/// The watch; dropping it stops its thread and closes the keys.
pub(crate) struct DnsWatch {
    stop: Arc<Event>,
    thread: Option<JoinHandle<()>>,
}

impl DnsWatch {
    /// Opens and arms the keys on a thread of its own, and returns once they are armed (so no
    /// change after this returns can be missed) or failed.
    pub(crate) fn start(to_backend: Sender<Msg>) -> std::io::Result<DnsWatch> {
        let stop = Arc::new(Event::new()?);
        let (ready, armed) = mpsc::sync_channel(1);
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("netreach-dns-watch".into())
            .spawn(move || run(&stopped, &to_backend, &ready))?;
        let watch = DnsWatch { stop, thread: Some(thread) };
        match armed.recv() {
            Ok(Ok(())) => Ok(watch),
            Ok(Err(e)) => Err(e), // the thread has ended; dropping `watch` joins it
            Err(_) => Err(std::io::Error::other("the DNS watch thread died")),
        }
    }
}

impl Drop for DnsWatch {
    fn drop(&mut self) {
        // SAFETY: an event this value shares with its thread, alive (the Arc) for the call.
        // Fails only for a closed handle, which cannot be: the Arc keeps it open.
        let _ = unsafe { SetEvent(self.stop.0) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(stop: &Event, to_backend: &Sender<Msg>, ready: &SyncSender<std::io::Result<()>>) {
    let keys = KEYS.iter().filter_map(|&path| Key::open(path).transpose());
    let keys = keys.collect::<std::io::Result<Vec<Key>>>().and_then(|keys| {
        keys.iter().try_for_each(Key::arm)?;
        Ok(keys)
    });
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let _ = ready.send(Ok(()));
    let handles: Vec<HANDLE> = std::iter::once(stop.0).chain(keys.iter().map(|k| k.changed.0)).collect();
    loop {
        // SAFETY: every handle is an event alive for the whole loop (`stop` is borrowed, the
        // keys' are owned here); no timeout, waiting for any one of them.
        let woke = unsafe { WaitForMultipleObjects(&handles, false, INFINITE) };
        let at = woke.0.wrapping_sub(WAIT_OBJECT_0.0) as usize;
        let Some(key) = keys.get(at.wrapping_sub(1)).filter(|_| at < handles.len()) else {
            if at != 0 {
                let _ =
                    to_backend.send(Msg::Error("waiting for DNS registry changes failed; no longer followed".into()));
            }
            return; // stopped (or the wait failed)
        };
        // Asked again before the read it triggers, so a change during that read is not missed.
        let armed = key.arm();
        if to_backend.send(Msg::IpChanged).is_err() {
            return; // the source is gone
        }
        if let Err(e) = armed {
            let _ = to_backend
                .send(Msg::Error(format!("re-arming the DNS registry watch failed ({e}); no longer followed")));
            return;
        }
    }
}
