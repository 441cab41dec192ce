//! The IPAM tables, calicoctl-like, through [`crate::table::render_boxed`]: `show
//! ipam` (GROUPING, CIDR, IPS TOTAL, IPS IN USE, IPS FREE), `show ipam --borrowed` and
//! `ipam pool list`.

use ipam::{Pool, UsageReport};

use crate::table::{Column, render_boxed};

/// Pools (and with `blocks` every block) with their usage.
pub fn usage(report: &UsageReport, blocks: bool) -> String {
    let row = |grouping: &str, usage: &ipam::Usage| {
        vec![
            grouping.to_owned(),
            usage.cidr.to_string(),
            usage.total.to_string(),
            with_percent(usage.in_use, usage.total),
            with_percent(usage.free, usage.total),
        ]
    };
    let mut rows: Vec<Vec<String>> = report.pools.iter().map(|p| row("IP Pool", p)).collect();
    if blocks {
        rows.extend(report.blocks.iter().map(|b| row("Block", b)));
    }
    render_boxed(
        &[
            Column::left("GROUPING"),
            Column::left("CIDR"),
            Column::right("IPS TOTAL"),
            Column::left("IPS IN USE"),
            Column::left("IPS FREE"),
        ],
        &rows,
    )
}

/// The borrowed addresses: IP, HANDLE, NODE (borrower), BLOCK, BLOCK OWNER.
pub fn borrowed(report: &UsageReport) -> String {
    let rows: Vec<Vec<String>> = report
        .borrowed
        .iter()
        .map(|address| {
            vec![
                address.address.to_string(),
                address.handle.clone(),
                address.node.clone().unwrap_or_default(),
                address.block.to_string(),
                address
                    .block_owner
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
            ]
        })
        .collect();
    render_boxed(
        &[
            Column::left("IP"),
            Column::left("HANDLE"),
            Column::left("NODE"),
            Column::left("BLOCK"),
            Column::left("BLOCK OWNER"),
        ],
        &rows,
    )
}

/// `ipam pool list`: CIDR, BLOCK SIZE, DISABLED, NAT OUTGOING, VXLAN MODE (with the
/// VNI and port when it encapsulates), NODE SELECTOR.
pub fn pools(pools: &[Pool]) -> String {
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|pool| {
            vec![
                pool.cidr.to_string(),
                pool.block_size.to_string(),
                pool.disabled.to_string(),
                pool.nat_outgoing.to_string(),
                if pool.vxlan_mode.encapsulates() {
                    format!(
                        "{} (vni {}, port {})",
                        pool.vxlan_mode, pool.vxlan_vni, pool.vxlan_port
                    )
                } else {
                    pool.vxlan_mode.to_string()
                },
                ipam::format_node_selector(&pool.node_selector),
            ]
        })
        .collect();
    render_boxed(
        &[
            Column::left("CIDR"),
            Column::right("BLOCK SIZE"),
            Column::left("DISABLED"),
            Column::left("NAT OUTGOING"),
            Column::left("VXLAN MODE"),
            Column::left("NODE SELECTOR"),
        ],
        &rows,
    )
}

/// `COUNT (PERCENT%)`, the percentage rounded like calicoctl's.
pub fn with_percent(count: u128, total: u128) -> String {
    let percent = if total == 0 {
        0.0
    } else {
        count as f64 * 100.0 / total as f64
    };
    format!("{count} ({percent:.0}%)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ipam::{AddressInfo, Usage};

    use super::*;

    #[test]
    fn percentages_round_like_calicoctl() {
        assert_eq!(with_percent(6, 65536), "6 (0%)");
        assert_eq!(with_percent(65530, 65536), "65530 (100%)");
        assert_eq!(with_percent(6, 64), "6 (9%)");
        assert_eq!(with_percent(32, 64), "32 (50%)");
        assert_eq!(with_percent(0, 0), "0 (0%)");
    }

    #[test]
    fn pool_list_reads_like_calicoctl() {
        let v4 = Pool {
            nat_outgoing: true,
            vxlan_mode: ipam::VxlanMode::CrossSubnet,
            ..Pool::new("10.244.0.0/16".parse().unwrap())
        };
        let v6 = Pool {
            node_selector: ipam::parse_node_selector("zone=a").unwrap(),
            ..Pool::new("fd00:10:244::/56".parse().unwrap())
        };
        let table = pools(&[v4, v6]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "+------------------+------------+----------+--------------+------------------------------------+---------------+",
                "|       CIDR       | BLOCK SIZE | DISABLED | NAT OUTGOING |             VXLAN MODE             | NODE SELECTOR |",
                "+------------------+------------+----------+--------------+------------------------------------+---------------+",
                "| 10.244.0.0/16    |         26 | false    | true         | cross_subnet (vni 4096, port 4789) | all()         |",
                "| fd00:10:244::/56 |        122 | false    | false        | never                              | zone=a        |",
                "+------------------+------------+----------+--------------+------------------------------------+---------------+",
            ],
            "{table}"
        );
    }

    #[test]
    fn usage_and_borrowed_tables_align_ipv6() {
        let row = |cidr: &str, total: u128, in_use: u128| Usage {
            cidr: cidr.parse().unwrap(),
            total,
            in_use,
            free: total - in_use,
            node: None,
            disabled: None,
        };
        let report = UsageReport {
            pools: vec![row("10.244.0.0/16", 65536, 6)],
            blocks: vec![
                row("10.244.0.0/26", 64, 6),
                row("2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff00/122", 64, 1),
            ],
            borrowed: vec![AddressInfo {
                address: "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff01".parse().unwrap(),
                handle: "pod.eth0".into(),
                node: Some("node-b".into()),
                block: "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff00/122"
                    .parse()
                    .unwrap(),
                block_owner: None,
                borrowed: true,
                sequence: 1,
            }],
        };
        let text = usage(&report, true);
        let table: Vec<&str> = text.lines().collect();
        assert!(
            table.iter().all(|line| line.len() == table[0].len()),
            "{table:#?}"
        );
        let cells = |line: &str| -> Vec<String> {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        };
        assert_eq!(
            cells(table[1]),
            ["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"]
        );
        assert_eq!(
            cells(table[3]),
            [
                "IP Pool",
                "10.244.0.0/16",
                "65536",
                "6 (0%)",
                "65530 (100%)"
            ]
        );
        assert!(table[4].contains("|        64 |"), "{table:#?}");
        let text = borrowed(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().all(|line| line.len() == lines[0].len()),
            "{text}"
        );
        assert!(
            lines[3].starts_with("| 2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff01 | pod.eth0 "),
            "{text}"
        );
        assert!(lines[3].ends_with(" | (none)      |"), "{text}");
    }
}
