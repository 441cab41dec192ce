//! The text the bgpctl helper prints: pool list, address info, selectors, percentages.

#![allow(clippy::unwrap_used)]

mod support;

use ipam::{Family, Ipam, Pool, parse_node_selector, render_pools, with_percent};

#[test]
fn percentages_round_like_calicoctl() {
    assert_eq!(with_percent(6, 65536), "6 (0%)");
    assert_eq!(with_percent(65530, 65536), "65530 (100%)");
    assert_eq!(with_percent(6, 64), "6 (9%)");
    assert_eq!(with_percent(32, 64), "32 (50%)");
    assert_eq!(with_percent(0, 0), "0 (0%)");
}

#[test]
fn node_selectors() {
    let labels = parse_node_selector("zone=a, rack=r1").unwrap();
    assert_eq!(labels.len(), 2);
    assert_eq!(ipam::format_node_selector(&labels), "rack=r1,zone=a");
    assert!(parse_node_selector("").unwrap().is_empty());
    assert!(
        parse_node_selector("zone")
            .unwrap_err()
            .to_string()
            .contains("not LABEL=VALUE")
    );
    assert!(parse_node_selector("=a").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_list_and_address_info() {
    let (store, _guard) = support::sqlite().await.unwrap();
    let ipam = Ipam::new(store);
    let mut v4 = Pool::new("10.244.0.0/16".parse().unwrap());
    v4.nat_outgoing = true;
    ipam.add_pool(v4).await.unwrap();
    let mut v6 = Pool::new("fd00:10:244::/56".parse().unwrap());
    v6.node_selector = parse_node_selector("zone=a").unwrap();
    ipam.add_pool(v6).await.unwrap();
    let table = render_pools(&ipam.pools().await.unwrap());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[1],
        "|       CIDR       | BLOCK SIZE | DISABLED | NAT OUTGOING | NODE SELECTOR |"
    );
    assert_eq!(
        lines[3],
        "| 10.244.0.0/16    |         26 | false    | true         | all()         |"
    );
    assert_eq!(
        lines[4],
        "| fd00:10:244::/56 |        122 | false    | false        | zone=a        |"
    );

    let got = ipam
        .assign("node-a", "pod.eth0", Family::Ipv4, 1)
        .await
        .unwrap();
    let info = ipam.address_info(got[0].address).await.unwrap().unwrap();
    let text = info.render();
    assert!(
        text.starts_with(&format!(
            "IP:          {}\nHandle:      pod.eth0\nNode:        node-a\n",
            got[0].address
        )),
        "{text}"
    );
    assert!(text.contains("Borrowed:    no\n"), "{text}");
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["handle"], "pod.eth0");
    assert_eq!(json["block"], got[0].block.to_string());
}
