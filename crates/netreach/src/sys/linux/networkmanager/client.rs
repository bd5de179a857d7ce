//! Talking to NetworkManager over D-Bus (zbus): reading its properties and keeping a
//! [`Reading`] current from its `PropertiesChanged` signals. No policy here: what the values
//! mean is [`super::mapping`]'s job.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use futures_lite::FutureExt;

use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, Message};

use super::mapping::Reading;

pub(crate) const NM_NAME: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_IFACE: &str = "org.freedesktop.NetworkManager";
const DEVICE_IFACE: &str = "org.freedesktop.NetworkManager.Device";
const ACTIVE_IFACE: &str = "org.freedesktop.NetworkManager.Connection.Active";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";

type Properties = HashMap<String, OwnedValue>;

/// How long any one D-Bus call may go unanswered (the bus's handshake, a match registration,
/// a property read): a stopped NetworkManager or dbus-daemon never answers, and netreach must
/// not wait for it. Both answer in well under a millisecond when alive.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// `CheckConnectivity` answers only once NM's own HTTP check is done, which NM bounds itself
/// (about 20 s against a silent endpoint); NM is asked to `Ping` first, so a frozen NM is
/// found out within [`CALL_TIMEOUT`] and only a slow check waits this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one D-Bus exchange with `who` (e.g. "NetworkManager") bounded by `limit`; past it the
/// error is an I/O `TimedOut` naming who did not answer (see [`timed_out`]).
pub(crate) async fn bounded<T>(
    who: &str,
    limit: Duration,
    call: impl std::future::Future<Output = zbus::Result<T>>,
) -> zbus::Result<T> {
    call.or(async {
        async_io::Timer::after(limit).await;
        let message = format!("{who} did not answer within {} s", limit.as_secs());
        Err(zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::new(std::io::ErrorKind::TimedOut, message))))
    })
    .await
}

/// Whether `error` is a [`bounded`] call that went unanswered.
pub(crate) fn timed_out(error: &zbus::Error) -> bool {
    matches!(error, zbus::Error::InputOutput(e) if e.kind() == std::io::ErrorKind::TimedOut)
}

/// A connection and a second handle on its socket, to shut it down (see `close` in the parent
/// module) without zbus's own `close`, which runs the `shutdown` on a `blocking` pool thread.
pub(crate) struct Link {
    pub conn: Connection,
    socket: Option<UnixStream>,
}

impl Link {
    /// Ends the connection's socket at once: zbus's reader task then sees the end.
    pub(crate) fn shut_down(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Opens a connection to the bus at `address`, handshake and `Hello` included, bounded by
/// [`CALL_TIMEOUT`]. The caller's thread drives the connection (no zbus executor thread): see
/// `ticking` in the parent module.
///
/// A `unix:path=` socket is connected here with async-io: zbus would connect it on a thread of
/// the `blocking` pool, which then stays for the life of the process and wakes twice a second
/// (blocking 1.7 never retires its last threads). Other transports are left to zbus.
pub(crate) async fn connect(address: &str) -> zbus::Result<Link> {
    let attempt = async {
        let parsed = zbus::Address::try_from(address)?;
        let path = match parsed.transport() {
            zbus::address::Transport::Unix(unix) => match unix.path() {
                zbus::address::transport::UnixSocket::File(path) => Some(path.clone()),
                _ => None,
            },
            _ => None,
        };
        let Some(path) = path else {
            let conn = zbus::connection::Builder::address(parsed)?.internal_executor(false).build().await?;
            return Ok(Link { conn, socket: None });
        };
        let stream = async_io::Async::<UnixStream>::connect(&path).await?.into_inner()?;
        let socket = stream.try_clone()?;
        let conn = zbus::connection::Builder::unix_stream(stream).internal_executor(false).build().await?;
        Ok(Link { conn, socket: Some(socket) })
    };
    bounded("the system bus", CALL_TIMEOUT, attempt).await
}

/// The match rule for every `PropertiesChanged` NM emits on its objects (manager, devices,
/// active connections). dbus-daemon resolves the well-known sender name to its current owner.
pub(crate) fn properties_rule() -> zbus::Result<zbus::MatchRule<'static>> {
    Ok(zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(NM_NAME)?
        .interface(PROPERTIES_IFACE)?
        .member("PropertiesChanged")?
        .path_namespace(NM_PATH)?
        .build())
}

/// NM's state as far as netreach cares, with the object paths needed to follow it.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub reading: Reading,
    primary: Option<OwnedObjectPath>,
    /// Devices of the primary connection, in the same order as `reading.devices`.
    devices: Vec<OwnedObjectPath>,
}

impl Model {
    /// Reads everything afresh (at start, when NM appears, after `CheckConnectivity`).
    pub(crate) async fn read(conn: &Connection) -> zbus::Result<Model> {
        let mut model = Model::default();
        let manager = get_all(conn, NM_PATH, NM_IFACE).await?;
        model.apply_manager(&manager);
        model.read_devices(conn).await?;
        Ok(model)
    }

    /// Folds one `PropertiesChanged` signal in; reads more only when the primary connection
    /// or its devices changed. Returns whether the signal was about something followed.
    pub(crate) async fn on_signal(&mut self, conn: &Connection, message: &Message) -> zbus::Result<bool> {
        let header = message.header();
        let Some(path) = header.path() else { return Ok(false) };
        let (iface, changed, _invalidated): (String, Properties, Vec<String>) = message.body().deserialize()?;
        match iface.as_str() {
            NM_IFACE if path.as_str() == NM_PATH => {
                let primary_before = self.primary.clone();
                self.apply_manager(&changed);
                if self.primary != primary_before {
                    self.read_devices(conn).await?;
                }
                Ok(true)
            }
            DEVICE_IFACE => match self.devices.iter().position(|d| d.as_str() == path.as_str()) {
                Some(i) => {
                    let device = &mut self.reading.devices[i];
                    set(&changed, "Ip4Connectivity", &mut device.0);
                    set(&changed, "Ip6Connectivity", &mut device.1);
                    Ok(true)
                }
                None => Ok(false),
            },
            ACTIVE_IFACE if self.primary.as_ref().is_some_and(|p| p.as_str() == path.as_str()) => {
                if changed.contains_key("Devices") {
                    self.read_devices(conn).await?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn apply_manager(&mut self, props: &Properties) {
        let r = &mut self.reading;
        set(props, "Connectivity", &mut r.connectivity);
        set(props, "State", &mut r.state);
        set(props, "Metered", &mut r.metered);
        set(props, "PrimaryConnectionType", &mut r.primary_type);
        set(props, "ConnectivityCheckEnabled", &mut r.check_enabled);
        set(props, "ConnectivityCheckAvailable", &mut r.check_available);
        if let Some(primary) = get::<OwnedObjectPath>(props, "PrimaryConnection") {
            // NM says "/" for "no primary connection".
            self.primary = (primary.as_str() != "/").then_some(primary);
        }
    }

    /// Reads the primary connection's devices and their per-family connectivity.
    async fn read_devices(&mut self, conn: &Connection) -> zbus::Result<()> {
        self.devices.clear();
        self.reading.devices.clear();
        let Some(primary) = self.primary.clone() else { return Ok(()) };
        let active = match get_all(conn, primary.as_str(), ACTIVE_IFACE).await {
            Ok(props) => props,
            // The connection went away between the signal and this read: a later signal says
            // what replaced it.
            Err(zbus::Error::MethodError(..)) | Err(zbus::Error::FDO(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let paths: Vec<OwnedObjectPath> = get(&active, "Devices").unwrap_or_default();
        for path in paths {
            let Ok(device) = get_all(conn, path.as_str(), DEVICE_IFACE).await else { continue };
            let mut family = (0, 0);
            set(&device, "Ip4Connectivity", &mut family.0);
            set(&device, "Ip6Connectivity", &mut family.1);
            self.reading.devices.push(family);
            self.devices.push(path);
        }
        Ok(())
    }
}

/// `props[name]` when present and of the right type.
fn get<T: TryFrom<OwnedValue>>(props: &Properties, name: &str) -> Option<T> {
    props.get(name).and_then(|v| v.try_clone().ok()).and_then(|v| T::try_from(v).ok())
}

/// Sets `slot` from `props[name]` when present and of the right type.
fn set<T: TryFrom<OwnedValue>>(props: &Properties, name: &str, slot: &mut T) {
    if let Some(value) = get(props, name) {
        *slot = value;
    }
}

async fn get_all(conn: &Connection, path: &str, iface: &str) -> zbus::Result<Properties> {
    let body = (iface,);
    let call = conn.call_method(Some(NM_NAME), path, Some(PROPERTIES_IFACE), "GetAll", &body);
    let reply = bounded("NetworkManager", CALL_TIMEOUT, call).await?;
    reply.body().deserialize()
}

/// NM's well-known name, for the bus's own calls.
pub(crate) fn nm_name() -> zbus::names::BusName<'static> {
    zbus::names::WellKnownName::from_static_str_unchecked(NM_NAME).into()
}

/// Whether NM answers at all (`Peer.Ping`), bounded by [`CALL_TIMEOUT`].
pub(crate) async fn ping(conn: &Connection) -> zbus::Result<()> {
    let ping = conn.call_method(Some(NM_NAME), NM_PATH, Some("org.freedesktop.DBus.Peer"), "Ping", &());
    bounded("NetworkManager", CALL_TIMEOUT, ping).await.map(drop)
}

/// Asks NM to check connectivity now (`CheckConnectivity`).
pub(crate) async fn check_connectivity(conn: &Connection) -> zbus::Result<()> {
    let check = conn.call_method(Some(NM_NAME), NM_PATH, Some(NM_IFACE), "CheckConnectivity", &());
    bounded("NetworkManager's CheckConnectivity", CHECK_TIMEOUT, check).await.map(drop)
}

/// Whether a method error means "you may not" (NM's own permission check, or the bus policy).
pub(crate) fn is_denied(error: &zbus::Error) -> bool {
    match error {
        zbus::Error::MethodError(name, ..) => {
            let name = name.as_str();
            name.ends_with(".PermissionDenied") || name.ends_with(".AccessDenied") || name.ends_with(".NotAuthorized")
        }
        zbus::Error::FDO(e) => matches!(**e, zbus::fdo::Error::AccessDenied(_) | zbus::fdo::Error::AuthFailed(_)),
        _ => false,
    }
}
