//! Which routing tables' default routes are listed in `default_routes` (read by
//! [`super::tables`]): pure, so the event path can ask it for every route update.

use std::collections::BTreeSet;

use crate::model::{Family, Update};

/// `local`: see [`super::tables`] for why its IPv4 defaults are not listed.
const RT_TABLE_LOCAL: u32 = 255;

/// The tables whose defaults are listed, per family.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tables {
    pub ipv4: BTreeSet<u32>,
    pub ipv6: BTreeSet<u32>,
    /// An `l3mdev` rule exists: VRF devices coming and going change the tables.
    pub l3mdev: bool,
}

impl Tables {
    /// Whether an update from an event is kept: not the addition of a default route in a
    /// table that is not listed (removals are always kept: removing what is not listed does
    /// nothing, and a removal that arrives after its table stopped being listed is still
    /// right).
    pub(crate) fn keeps(&self, update: &Update) -> bool {
        match update {
            Update::RouteAdded(r) | Update::RouteReplaced(r) => self.lists(r.family, r.table),
            _ => true,
        }
    }

    /// Whether a default route of `family` in `table` is listed: its table is consulted.
    pub(crate) fn lists(&self, family: Family, table: u32) -> bool {
        match family {
            Family::Ipv4 => table != RT_TABLE_LOCAL && self.ipv4.contains(&table),
            Family::Ipv6 => self.ipv6.contains(&table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ipv4_defaults_are_not_listed() {
        let tables = Tables { ipv4: [253, 254, 255].into(), ipv6: [254, 255].into(), l3mdev: false };
        assert!(tables.lists(Family::Ipv4, 254) && !tables.lists(Family::Ipv4, 255));
        assert!(tables.lists(Family::Ipv6, 255) && !tables.lists(Family::Ipv6, 100));
    }

    #[test]
    fn events_add_defaults_only_in_listed_tables_and_always_remove() {
        let tables = Tables { ipv4: [254].into(), ipv6: [254].into(), l3mdev: false };
        let route = |table| crate::model::DefaultRoute {
            family: Family::Ipv4,
            gateway: None,
            interface: String::new(),
            interface_index: 2,
            metric: 0,
            table,
        };
        assert!(tables.keeps(&Update::RouteAdded(route(254))));
        assert!(!tables.keeps(&Update::RouteAdded(route(100))));
        assert!(!tables.keeps(&Update::RouteReplaced(route(100))));
        assert!(tables.keeps(&Update::RouteRemoved(route(100))));
        assert!(tables.keeps(&Update::RulesChanged(Family::Ipv4)));
    }
}
