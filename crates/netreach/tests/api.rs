//! Facts of the public API that hold at compile time: the handles and the error cross threads
//! (a monitor is typically built on one thread and used from others or from async tasks).

use netreach::{Error, Event, Monitor, MonitorBuilder, NetworkState, PathMonitor, Snapshot, Subscription};

fn send_sync<T: Send + Sync>() {}

/// A `Subscription` is a `futures_core::Stream`: `StreamExt::next` needs it `Unpin`.
fn unpin<T: Unpin>() {}

// Static assertions: this file does not compile if one stops holding.
const _: fn() = || {
    send_sync::<Monitor>();
    send_sync::<MonitorBuilder>();
    send_sync::<PathMonitor>();
    send_sync::<Subscription>();
    send_sync::<Error>();
    send_sync::<Event>();
    send_sync::<NetworkState>();
    send_sync::<Snapshot>();
    unpin::<Subscription>();
    unpin::<Monitor>();
};

/// `std::error::Error + Send + Sync + 'static`: fits `Box<dyn Error + Send + Sync>` and
/// `anyhow`, and so `?` in functions returning those.
#[test]
fn error_boxes_as_a_thread_safe_std_error() {
    let err = "fast".parse::<netreach::Level>().unwrap_err();
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(err);
    assert!(boxed.to_string().contains("unknown reachability level 'fast'"));
    assert_eq!(boxed.downcast_ref::<Error>().map(Error::kind), Some(netreach::ErrorKind::InvalidInput));
}

/// `FromStr` of every public enum fails the same way: kind `InvalidInput`, the accepted
/// values named.
#[test]
fn from_str_errors_are_one_type() {
    let level = "x".parse::<netreach::Level>().unwrap_err();
    let backend = "x".parse::<netreach::BackendKind>().unwrap_err();
    for (err, accepted) in
        [(level, "unknown, disconnected, local, site or online"), (backend, "auto, kernel, networkmanager")]
    {
        assert_eq!(err.kind(), netreach::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(accepted), "{err}");
    }
}
