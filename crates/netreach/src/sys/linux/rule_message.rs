//! What a rule message (`struct fib_rule_hdr` and its attributes) says about routing tables:
//! read for every rule when the tables are listed (`tables.rs`), and for each rule
//! notification, to tell whether it can change that listing at all (`decode.rs`). Pure: bytes
//! in, an answer or an error out.

use super::frame::{attributes, fixed, u32_of};

/// `FRA_TABLE`, `FRA_L3MDEV` (linux/fib_rules.h).
const FRA_TABLE: u16 = 15;
const FRA_L3MDEV: u16 = 19;
/// `FR_ACT_TO_TBL`: the action of a `lookup` rule.
const FR_ACT_TO_TBL: u8 = 1;

/// What a rule says about tables.
pub(super) struct Rule {
    /// The table a `lookup` rule names.
    pub table: Option<u32>,
    /// An `l3mdev` rule: lookups go to the table of the VRF device in question.
    pub l3mdev: bool,
}

/// `struct fib_rule_hdr` (family, dst_len, src_len, tos, table, res1, res2, action, flags)
/// and its attributes: the table of a `lookup` rule (`FRA_TABLE` overrides the 8-bit field).
pub(super) fn rule_table(payload: &[u8]) -> Result<Rule, String> {
    let h = fixed::<12>(payload, "rule header")?;
    let mut table = u32::from(h[4]);
    let mut l3mdev = false;
    for attribute in attributes(&payload[12..]) {
        let (kind, value) = attribute?;
        match kind {
            FRA_TABLE => table = u32_of(value, "FRA_TABLE")?,
            FRA_L3MDEV => l3mdev = value.first().is_some_and(|v| *v != 0),
            _ => {}
        }
    }
    Ok(Rule { table: (h[7] == FR_ACT_TO_TBL && table != 0).then_some(table), l3mdev })
}

/// Whether adding or removing this rule can change which tables are listed: only a rule that
/// names a table, or an `l3mdev` rule, can. An `unreachable`, `blackhole` or `prohibit` rule
/// (a kill switch) cannot, and then the rules need not be read again after it. A rule that
/// cannot be read is assumed to (the rules are read again rather than guessed).
pub(super) fn may_change_tables(payload: &[u8]) -> bool {
    rule_table(payload).map_or(true, |rule| rule.table.is_some() || rule.l3mdev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_names_its_table_only_when_it_looks_one_up() {
        // lookup 100 (8-bit field), action to-table.
        let mut lookup = vec![2, 0, 0, 0, 100, 0, 0, FR_ACT_TO_TBL, 0, 0, 0, 0];
        assert_eq!(rule_table(&lookup).unwrap().table, Some(100));
        assert!(may_change_tables(&lookup));
        // FRA_TABLE overrides the field (tables above 255).
        lookup.extend([8, 0, FRA_TABLE as u8, 0]);
        lookup.extend(51820u32.to_ne_bytes());
        assert_eq!(rule_table(&lookup).unwrap().table, Some(51820));
        // An unreachable rule (action 7) names none and changes no listing; an l3mdev rule
        // says so, and may.
        let mut unreachable = vec![2, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0];
        assert_eq!(rule_table(&unreachable).unwrap().table, None);
        assert!(!may_change_tables(&unreachable));
        unreachable.extend([5, 0, FRA_L3MDEV as u8, 0, 1, 0, 0, 0]);
        assert!(rule_table(&unreachable).unwrap().l3mdev);
        assert!(may_change_tables(&unreachable));
        // Truncated: an error, not a panic; and the rules are read again.
        assert!(rule_table(&[2, 0, 0]).is_err());
        assert!(rule_table(&[2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 15, 0, 1]).is_err());
        assert!(may_change_tables(&[2, 0, 0]));
    }
}
