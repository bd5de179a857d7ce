//! The resolver configuration from the adapters' rows (pure, like the rest of `rows`).

use super::{interface, name, AdapterRow};
use crate::model::{DnsConfig, DnsManager, DnsOrigin, Nameserver};

/// `IfOperStatusUp`: only adapters that are up have their DNS servers asked.
pub const OPER_UP: u32 = 1;

/// The loopback pseudo-interface's `IfType`, which no query leaves through.
pub const IF_TYPE_SOFTWARE_LOOPBACK: u32 = 24;

/// The resolver configuration: the DNS servers of every adapter that is up (but loopback),
/// in the order `GetAdaptersAddresses` lists adapters and servers, each tagged with its
/// adapter's name (Windows keeps servers per adapter and asks every connected adapter's);
/// the search list:
/// each such adapter's connection-specific suffix, then its suffix search list, first
/// occurrence kept. (The machine-wide primary suffix and a policy's global search list are
/// in the registry, not in these rows.)
pub fn dns(adapters: &[AdapterRow]) -> DnsConfig {
    let asked = |a: &&AdapterRow| a.oper_status == OPER_UP && a.if_type != IF_TYPE_SOFTWARE_LOOPBACK;
    let up = adapters.iter().filter(asked).filter_map(|a| Some((a, interface(a).ok()?)));
    let (mut nameservers, mut search) = (Vec::new(), Vec::<String>::new());
    for (row, interface) in up {
        for address in row.dns_servers.iter().filter_map(|raw| raw.ip().ok()) {
            nameservers.push(Nameserver { address, interface: Some(interface.name.clone()) });
        }
        let suffixes = row.dns_suffix.iter().chain(&row.dns_suffixes).filter(|units| !units.is_empty());
        for suffix in suffixes.map(|units| name(Some(units), 0).0) {
            if !search.contains(&suffix) {
                search.push(suffix);
            }
        }
    }
    let origin =
        DnsOrigin { file: "GetAdaptersAddresses".into(), manager: DnsManager::Windows, ..DnsOrigin::default() };
    DnsConfig { nameservers, search, origin }
}
