//! What bgpctl prints from the ipam crate: node selectors, pools as listed, address
//! info (bgpctl's own tables are tested in bgpctl).

#![allow(clippy::unwrap_used)]

mod support;

use ipam::{Family, Ipam, Pool, parse_node_selector};

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
    let pools = ipam.pools().await.unwrap();
    let listed: Vec<(String, u8, bool, String)> = pools
        .iter()
        .map(|pool| {
            (
                pool.cidr.to_string(),
                pool.block_size,
                pool.nat_outgoing,
                ipam::format_node_selector(&pool.node_selector),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("10.244.0.0/16".to_owned(), 26, true, "all()".to_owned()),
            (
                "fd00:10:244::/56".to_owned(),
                122,
                false,
                "zone=a".to_owned()
            ),
        ]
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
