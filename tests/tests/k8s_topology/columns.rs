//! `kubectl get` of the IPAM and BGP resources prints their printer columns (the CRDs'
//! `additionalPrinterColumns`), checked on the converged lab: the headers, and for each
//! kind the values of a row the topology knows.

use super::*;

/// `kubectl get KIND` as rows of cells, cut where the header's columns start (a
/// header such as `BLOCK SIZE` has one space, an empty cell none).
fn table(k8s: &K8s, kind: &str) -> (String, Vec<Vec<String>>) {
    let text = k8s.kubectl(&["get", kind]).unwrap();
    let header = text.lines().next().unwrap_or_default();
    let bytes = header.as_bytes();
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i] != b' ' && (i == 0 || (i >= 2 && &bytes[i - 2..i] == b"  ")))
        .collect();
    let rows = text
        .lines()
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(i, start)| {
                    let end = starts.get(i + 1).copied().unwrap_or(line.len());
                    line.get(*start..end.min(line.len()))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .collect()
        })
        .collect();
    (text, rows)
}

/// The row whose first cell (NAME) is `name`, without its last cell (AGE).
fn row<'a>(rows: &'a [Vec<String>], name: &str, text: &str) -> &'a [String] {
    let row = rows
        .iter()
        .find(|row| row.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name}:\n{text}"));
    &row[..row.len() - 1]
}

/// The columns of `kubectl get ippools, ipamblocks, blockaffinities, bgppeers`;
/// `blocks` are the IPAM blocks by CIDR with their owner.
pub(crate) fn printer_columns(k8s: &K8s, blocks: &BTreeMap<String, String>) {
    let (text, pools) = table(k8s, "ippools");
    assert_eq!(
        pools[0],
        [
            "NAME",
            "CIDR",
            "BLOCK SIZE",
            "VXLAN",
            "NAT",
            "DISABLED",
            "AGE"
        ],
        "{text}"
    );
    assert_eq!(
        row(&pools, "10-244-0-0-16", &text),
        [
            "10-244-0-0-16",
            "10.244.0.0/16",
            "26",
            "never",
            "false",
            "false"
        ],
        "{text}"
    );
    eprintln!("kubectl get ippools:\n{text}");

    let (text, affinities) = table(k8s, "blockaffinities");
    assert_eq!(
        affinities[0],
        ["NAME", "NODE", "CIDR", "STATE", "AGE"],
        "{text}"
    );
    let (text_blocks, ipam_blocks) = table(k8s, "ipamblocks");
    assert_eq!(
        ipam_blocks[0],
        ["NAME", "CIDR", "NODE", "IN USE", "AGE"],
        "{text_blocks}"
    );
    for (cidr, node) in blocks {
        let name = cidr.replace(['.', '/'], "-");
        // Each node's pods took their addresses from its one block.
        let pods = k8s.lab.node(node).unwrap().pods().len().to_string();
        assert_eq!(
            row(&ipam_blocks, &name, &text_blocks),
            [name.as_str(), cidr, node, &pods],
            "{text_blocks}"
        );
        let affinity = format!("{node}-{name}");
        assert_eq!(
            row(&affinities, &affinity, &text),
            [affinity.as_str(), node, cidr, "confirmed"],
            "{text}"
        );
    }
    eprintln!("kubectl get ipamblocks:\n{text_blocks}\nkubectl get blockaffinities:\n{text}");

    let (text, peers) = table(k8s, "bgppeers");
    assert_eq!(
        peers[0],
        [
            "NAME",
            "PEER IP",
            "ASN",
            "NODE",
            "NODE SELECTOR",
            "PEER SELECTOR",
            "ACCEPTED",
            "AGE"
        ],
        "{text}"
    );
    assert_eq!(
        row(&peers, "rack1-tor", &text),
        [
            "rack1-tor",
            "10.0.0.254",
            "65000",
            "",
            r#"{"topology.wren.io/rack":"rack1"}"#,
            "",
            "True"
        ],
        "{text}"
    );
    eprintln!("kubectl get bgppeers:\n{text}");
}
