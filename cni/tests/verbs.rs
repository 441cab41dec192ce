//! The plugin's verbs driven the way a runtime drives them (`lab::cni::CniInvocation`: the
//! `CNI_*` environment, the configuration on stdin, the plugin run in the node's
//! namespace), with `wren-ipam` on SQLite as the delegated IPAM, and the kernel state
//! asserted from outside with `ip -j` in the node's and the pods' namespaces.
//!
//! Needs root (skips otherwise, fails under WREN_REQUIRE_LAB=1) and `wren-ipam` built in
//! the target dir (`cargo build --workspace --bins`).
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use support::{MTU, Node, addresses, error, host_link, invocation, pod, sysctl};

const POOL_V4: &str = "10.244.0.0/16";
const POOL_V6: &str = "fd00:10:244::/56";

/// The entries of `ip -j` output matching `field == value`.
fn find<'a>(json: &'a Value, field: &str, value: &str) -> Vec<&'a Value> {
    json.as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry[field].as_str() == Some(value))
        .collect()
}

#[test]
fn add_wires_two_dual_stack_pods_that_reach_each_other_and_del_removes_them() {
    let Some(node) = Node::new(&[POOL_V4, POOL_V6]) else {
        return;
    };
    let (one, two) = (pod(), pod());
    let result = node.add(&one);
    let second = node.add(&two);
    let link = host_link(&one);
    let [v4, v6] = <[String; 2]>::try_from(addresses(&result)).unwrap();

    // The result: both interfaces with the MTU, host prefixes, the fixed gateways.
    assert_eq!(result["cniVersion"], "1.1.0");
    let interfaces = result["interfaces"].as_array().unwrap();
    assert_eq!(interfaces[0]["name"], link.as_str());
    assert_eq!(interfaces[0]["mac"], "ee:ee:ee:ee:ee:ee");
    assert_eq!(interfaces[1]["name"], "eth0");
    assert_eq!(interfaces[1]["sandbox"], one.path().to_str().unwrap());
    assert!(interfaces.iter().all(|i| i["mtu"] == MTU), "{result}");
    assert_eq!(result["ips"][0]["address"], format!("{v4}/32"));
    assert_eq!(result["ips"][0]["gateway"], "169.254.1.1");
    assert_eq!(result["ips"][1]["address"], format!("{v6}/128"));
    assert_eq!(result["ips"][1]["gateway"], "fe80::ecee:eeff:feee:eeee");
    assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(result["routes"][1]["dst"], "::/0");

    // Host side.
    let host = node.ip(&["link", "show", "dev", &link]);
    assert_eq!(host[0]["address"], "ee:ee:ee:ee:ee:ee", "{host}");
    assert_eq!(host[0]["mtu"], MTU);
    assert!(
        host[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP")
    );
    assert_eq!(link.len(), 15);
    let routes = node.ip(&["route", "show", "dev", &link]);
    let route = find(&routes, "dst", &v4);
    assert_eq!(route.len(), 1, "{routes}");
    assert_eq!(route[0]["scope"], "link");
    let routes6 = node.ip(&["-6", "route", "show", "dev", &link]);
    assert_eq!(find(&routes6, "dst", &v6).len(), 1, "{routes6}");
    for (key, value) in [
        (format!("ipv4/conf/{link}/proxy_arp"), "1"),
        (format!("ipv4/neigh/{link}/proxy_delay"), "0"),
        (format!("ipv4/conf/{link}/forwarding"), "1"),
        (format!("ipv4/conf/{link}/route_localnet"), "1"),
        (format!("ipv6/conf/{link}/accept_ra"), "0"),
        (format!("ipv6/conf/{link}/proxy_ndp"), "1"),
        (format!("ipv6/conf/{link}/accept_dad"), "0"),
        (format!("ipv6/conf/{link}/disable_ipv6"), "0"),
        (String::from("ipv4/ip_forward"), "1"),
    ] {
        assert_eq!(node.sysctl(&key), value, "{key}");
    }

    // Pod side.
    let eth0 = one.ip_json(&["addr", "show", "dev", "eth0"]).unwrap();
    assert_eq!(eth0[0]["mtu"], MTU);
    let addrs = eth0[0]["addr_info"].as_array().unwrap();
    assert!(
        addrs
            .iter()
            .any(|a| a["local"] == v4.as_str() && a["prefixlen"] == 32),
        "{eth0}"
    );
    assert!(
        addrs
            .iter()
            .any(|a| a["local"] == v6.as_str() && a["prefixlen"] == 128),
        "{eth0}"
    );
    let routes = one.ip_json(&["route", "show"]).unwrap();
    let default = find(&routes, "dst", "default");
    assert_eq!(default[0]["gateway"], "169.254.1.1", "{routes}");
    assert_eq!(default[0]["dev"], "eth0");
    assert_eq!(find(&routes, "dst", "169.254.1.1")[0]["scope"], "link");
    let routes6 = one.ip_json(&["-6", "route", "show", "default"]).unwrap();
    assert_eq!(
        routes6[0]["gateway"], "fe80::ecee:eeff:feee:eeee",
        "{routes6}"
    );
    let neighbours = one.ip_json(&["neigh", "show", "dev", "eth0"]).unwrap();
    for gateway in ["169.254.1.1", "fe80::ecee:eeff:feee:eeee"] {
        let entry = find(&neighbours, "dst", gateway);
        assert_eq!(entry[0]["lladdr"], "ee:ee:ee:ee:ee:ee", "{neighbours}");
        assert_eq!(entry[0]["state"][0], "PERMANENT", "{neighbours}");
    }

    // No gateway address is reserved: the pool's in-use count is the pods.
    assert_eq!(node.in_use(), 4, "{:?}", node.handles());
    assert!(
        node.handles()
            .iter()
            .all(|h| !h.starts_with("wren-gateway"))
    );

    // The pods reach each other, both families, and the node reaches them.
    let [w4, w6] = <[String; 2]>::try_from(addresses(&second)).unwrap();
    assert!(one.ping(&w4), "{v4} cannot ping {w4}");
    assert!(two.ping(&v4), "{w4} cannot ping {v4}");
    assert!(one.ping(&w6), "{v6} cannot ping {w6}");
    // The node (with an address of its own) reaches them.
    node.netns
        .ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"])
        .unwrap();
    assert!(node.netns.ping(&v4), "the node cannot ping {v4}");

    // CHECK passes on what ADD made.
    let check = node.invoke(invocation("CHECK", &one), &with_prev(&node, &result));
    assert!(check.success, "CHECK: {}", check.text());

    // DEL removes the link, the routes and the addresses; a second DEL, and a DEL after
    // the namespace is gone, succeed too.
    node.del(&one);
    assert!(node.netns.ip(&["link", "show", "dev", &link]).is_err());
    assert!(find(&node.ip(&["route", "show"]), "dst", &v4).is_empty());
    assert!(find(&node.ip(&["-6", "route", "show"]), "dst", &v6).is_empty());
    support::assert_only_loopback(&one);
    assert_eq!(node.in_use(), 2);
    node.del(&one);
    let path = two.path();
    let name = two.name().to_owned();
    two.delete().unwrap();
    let gone = node.invoke(
        lab::cni::CniInvocation::new("DEL", &name, &path).pod("default", &name),
        &node.config(),
    );
    assert!(gone.success, "DEL without namespace: {}", gone.text());
    assert_eq!(node.in_use(), 0);
    assert!(
        node.ip(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .all(|l| { !l["ifname"].as_str().unwrap().starts_with("wren") })
    );
}

/// What ADD gives a pod: the gateway's permanent neighbour entry, its route and the
/// default route through it (`ip` arguments).
const GATEWAY_NEIGHBOUR: [&str; 9] = [
    "neigh",
    "replace",
    "169.254.1.1",
    "lladdr",
    "ee:ee:ee:ee:ee:ee",
    "dev",
    "eth0",
    "nud",
    "permanent",
];
const GATEWAY_ROUTE: [&str; 7] = [
    "route",
    "replace",
    "169.254.1.1",
    "dev",
    "eth0",
    "scope",
    "link",
];
const DEFAULT_ROUTE: [&str; 7] = [
    "route",
    "replace",
    "default",
    "via",
    "169.254.1.1",
    "dev",
    "eth0",
];

/// `ip -n NETNS ARGS...` as arguments.
fn ip_in<'a>(netns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    [&["-n", netns][..], args].concat()
}

/// The configuration with `prevResult` set to `result`.
fn with_prev(node: &Node, result: &Value) -> String {
    node.config_with(|config| config["prevResult"] = result.clone())
}

#[test]
fn check_names_what_differs() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let one = pod();
    let result = node.add(&one);
    let link = host_link(&one);
    let address = addresses(&result)[0].clone();
    let check = || node.invoke(invocation("CHECK", &one), &with_prev(&node, &result));
    assert!(check().success, "{}", check().text());

    // Each change below is undone before the next, so each CHECK sees one difference.
    let (pod_ns, node_ns) = (one.name(), node.netns.name());
    let cases: Vec<(Vec<&str>, Vec<&str>, String)> = vec![
        (
            ip_in(pod_ns, &["neigh", "del", "169.254.1.1", "dev", "eth0"]),
            ip_in(pod_ns, &GATEWAY_NEIGHBOUR),
            String::from(
                "pod has no permanent neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0",
            ),
        ),
        (
            ip_in(pod_ns, &["route", "del", "default"]),
            ip_in(pod_ns, &DEFAULT_ROUTE),
            String::from("pod has no route default via 169.254.1.1 dev eth0"),
        ),
        (
            ip_in(node_ns, &["link", "set", &link, "mtu", "1400"]),
            ip_in(node_ns, &["link", "set", &link, "mtu", "1440"]),
            format!("host link {link} has MTU 1400, not {MTU}"),
        ),
        (
            ip_in(node_ns, &["route", "del", &address, "dev", &link]),
            ip_in(
                node_ns,
                &["route", "add", &address, "dev", &link, "scope", "link"],
            ),
            format!("host has no route {address}/32 dev {link} scope link"),
        ),
        (
            ip_in(pod_ns, &["link", "set", "eth0", "down"]),
            ip_in(pod_ns, &["link", "set", "eth0", "up"]),
            String::from("pod interface eth0 is down"),
        ),
    ];
    for (break_it, repair, expected) in &cases {
        support::run(std::process::Command::new("ip").args(break_it));
        let (code, message) = error(&check());
        assert_eq!(code, 101, "{message}");
        assert_eq!(message, format!("CHECK: {expected}"));
        support::run(std::process::Command::new("ip").args(repair));
        // The routes and neighbour entries (permanent ones too) went with the link
        // going down; put them back too.
        if expected.ends_with("is down") {
            for again in [&GATEWAY_NEIGHBOUR[..], &GATEWAY_ROUTE, &DEFAULT_ROUTE] {
                support::run(std::process::Command::new("ip").args(ip_in(pod_ns, again)));
            }
        }
        assert!(
            check().success,
            "after repairing {expected:?}: {}",
            check().text()
        );
    }

    // A sysctl.
    let key = format!("ipv4/conf/{link}/proxy_arp");
    node.netns
        .exec(&["sh", "-c", &format!("echo 0 > /proc/sys/net/{key}")])
        .unwrap();
    let (_, message) = error(&check());
    assert_eq!(
        message,
        format!("CHECK: host: net.ipv4.conf.{link}.proxy_arp is 0, not 1")
    );
    node.netns
        .exec(&["sh", "-c", &format!("echo 1 > /proc/sys/net/{key}")])
        .unwrap();

    // An address prevResult names that the pod does not have (IPAM's CHECK catches that
    // it is not allocated to the container first).
    let mut other = result.clone();
    other["ips"][0]["address"] = Value::from("10.244.99.99/32");
    let (code, message) = error(&node.invoke(invocation("CHECK", &one), &with_prev(&node, &other)));
    assert_eq!(code, 101, "{message}");
    assert!(message.contains("10.244.99.99"), "{message}");

    // Without prevResult.
    let (code, message) = error(&node.invoke(invocation("CHECK", &one), &node.config()));
    assert_eq!(
        (code, message.as_str()),
        (
            7,
            "network configuration: CHECK needs \"prevResult\" (the result of ADD)"
        )
    );
    node.del(&one);
    let (_, message) = error(&check());
    assert!(message.starts_with("IPAM wren-ipam:"), "{message}");
}

#[test]
fn add_of_an_existing_interface_fails_and_releases_the_addresses() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let one = pod();
    one.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ])
    .unwrap();
    let output = node.invoke(invocation("ADD", &one), &node.config());
    let expected = format!(
        "eth0 exists already in pod network namespace {}",
        one.path().display()
    );
    assert_eq!(error(&output), (100, expected));
    node.assert_nothing_of(&one);
    // The pod's own eth0 is untouched.
    assert_eq!(
        one.ip_json(&["link", "show", "eth0"]).unwrap()[0]["link_type"],
        "ether"
    );
}

#[test]
fn a_host_link_name_collision_is_one_error_and_leaves_the_first_pod_alone() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let (one, two) = (pod(), pod());
    let result = node.add(&one);
    // Another container claiming to be the same Kubernetes pod.
    let clash =
        lab::cni::CniInvocation::new("ADD", two.name(), two.path()).pod("default", one.name());
    let (code, message) = error(&node.invoke(clash, &node.config()));
    let link = host_link(&one);
    assert_eq!(code, 100);
    assert_eq!(
        message,
        format!(
            "host link {link} exists already (the pod has an attachment on this node, or one was left behind: CNI GC removes it)"
        )
    );
    assert_eq!(node.in_use(), 1);
    support::assert_only_loopback(&two);
    // A DEL of that other container leaves the first pod's link alone.
    let del =
        lab::cni::CniInvocation::new("DEL", two.name(), two.path()).pod("default", one.name());
    assert!(node.invoke(del, &node.config()).success);
    let check = node.invoke(invocation("CHECK", &one), &with_prev(&node, &result));
    assert!(check.success, "{}", check.text());
    node.del(&one);
}

#[test]
fn a_namespace_deleted_during_add_is_one_error_and_leaves_nothing() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let one = pod();
    // An IPAM plugin that deletes the pod's namespace (as a runtime tearing the sandbox
    // down would) before handing over to wren-ipam.
    let dir = node.path("slow-ipam");
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("wren-ipam");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && ip netns del {}\nexec {} \"$@\"\n",
            one.name(),
            node.ipam_dir.join("wren-ipam").display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&wrapper).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let invocation = invocation("ADD", &one).path(vec![dir.clone()]);
    let output = node.invoke_with_path(invocation, &node.config());
    let expected = format!(
        "pod network namespace {}: was deleted during ADD",
        one.path().display()
    );
    assert_eq!(error(&output), (3, expected));
    node.assert_nothing_of(&one);
    assert!(node.ip(&["route", "show"]).as_array().unwrap().is_empty());
}

#[test]
fn gc_removes_what_no_valid_attachment_holds() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let (keep, drop) = (pod(), pod());
    let kept = node.add(&keep);
    let dropped = node.add(&drop);
    // A leftover: a veth with a name of ours and no attachment.
    let leftover = cni::config::host_link_name("gone.pod");
    node.netns
        .ip(&[
            "link", "add", &leftover, "type", "veth", "peer", "name", "x",
        ])
        .unwrap();
    // Something not ours stays.
    node.netns
        .ip(&[
            "link",
            "add",
            "wren.vxlan",
            "type",
            "veth",
            "peer",
            "name",
            "y",
        ])
        .unwrap();
    let gc = node.config_with(|config| {
        config["cni.dev/valid-attachments"] =
            serde_json::json!([{ "containerID": keep.name(), "ifname": "eth0" }]);
    });
    let output = node.invoke(lab::cni::CniInvocation::new("GC", "", ""), &gc);
    assert!(output.success, "GC: {}", output.text());
    let links: Vec<String> = node
        .ip(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_owned())
        .collect();
    assert!(links.contains(&host_link(&keep)), "{links:?}");
    assert!(links.contains(&String::from("wren.vxlan")), "{links:?}");
    assert!(!links.contains(&host_link(&drop)), "{links:?}");
    assert!(!links.contains(&leftover), "{links:?}");
    let routes = node.ip(&["route", "show"]);
    assert_eq!(
        find(&routes, "dst", &addresses(&kept)[0]).len(),
        1,
        "{routes}"
    );
    assert!(
        find(&routes, "dst", &addresses(&dropped)[0]).is_empty(),
        "{routes}"
    );
    assert_eq!(node.handles(), vec![format!("{}.eth0", keep.name())]);
    // Without the list, GC refuses.
    let (code, message) =
        error(&node.invoke(lab::cni::CniInvocation::new("GC", "", ""), &node.config()));
    assert_eq!(code, 7);
    assert!(message.contains("cni.dev/valid-attachments"), "{message}");
    node.del(&keep);
}

#[test]
fn status_tells_whether_pods_can_be_added() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let status = |config: &str| node.invoke(lab::cni::CniInvocation::new("STATUS", "", ""), config);
    assert!(
        status(&node.config()).success,
        "{}",
        status(&node.config()).text()
    );
    // No pool selects the node.
    let empty = Node::new(&[]).unwrap();
    let (code, message) = error(&empty.invoke(
        lab::cni::CniInvocation::new("STATUS", "", ""),
        &empty.config(),
    ));
    assert_eq!(code, 50);
    assert!(
        message.contains("no enabled pool") && message.contains("node-a"),
        "{message}"
    );
    // The datastore cannot be opened.
    let broken = node
        .config_with(|c| c["ipam"]["datastore"] = Value::from("sqlite:///nonexistent/dir/ipam.db"));
    assert_eq!(error(&status(&broken)).0, 50);
    // bgpd has not written the MTU.
    std::fs::remove_file(&node.mtu_file).unwrap();
    let (code, message) = error(&status(&node.config()));
    assert_eq!(code, 50);
    assert!(message.contains("does not exist"), "{message}");
    // STATUS is 1.1.0's.
    let old = node.config_with(|c| c["cniVersion"] = Value::from("1.0.0"));
    assert_eq!(error(&status(&old)).0, 1);
}

#[test]
fn the_mtu_comes_from_the_config_or_the_file_and_a_missing_file_adds_nothing() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let one = pod();
    // Explicit "mtu" wins over the file.
    let explicit = node.config_with(|c| c["mtu"] = Value::from(1300));
    let output = node.invoke(invocation("ADD", &one), &explicit);
    assert!(output.success, "{}", output.text());
    assert_eq!(
        one.ip_json(&["link", "show", "eth0"]).unwrap()[0]["mtu"],
        1300
    );
    assert_eq!(node.ip(&["link", "show", &host_link(&one)])[0]["mtu"], 1300);
    node.del(&one);
    // A malformed file.
    std::fs::write(&node.mtu_file, "jumbo\n").unwrap();
    let (code, message) = error(&node.invoke(invocation("ADD", &one), &node.config()));
    assert_eq!(code, 7);
    assert_eq!(
        message,
        format!(
            "pod MTU: {} holds \"jumbo\\n\", not a decimal MTU and a newline",
            node.mtu_file.display()
        )
    );
    // An absent file.
    std::fs::remove_file(&node.mtu_file).unwrap();
    let (code, message) = error(&node.invoke(invocation("ADD", &one), &node.config()));
    assert_eq!(code, 11);
    assert!(
        message.starts_with(&format!(
            "pod MTU: {} does not exist",
            node.mtu_file.display()
        )),
        "{message}"
    );
    assert_eq!(node.in_use(), 0);
    support::assert_only_loopback(&one);
}

#[test]
fn versions_are_negotiated_as_the_spec_says() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let version = node.invoke(
        lab::cni::CniInvocation::new("VERSION", "", ""),
        "{\"cniVersion\":\"1.1.0\"}",
    );
    assert!(version.success);
    let json = version.json().unwrap();
    assert_eq!(
        json["supportedVersions"],
        serde_json::json!(["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // A 0.3.1 configuration gets a 0.3.1 result (ips carry "version").
    let one = pod();
    let legacy = node.config_with(|c| c["cniVersion"] = Value::from("0.3.1"));
    let output = node.invoke(invocation("ADD", &one), &legacy);
    assert!(output.success, "{}", output.text());
    let result = output.json().unwrap();
    assert_eq!(result["cniVersion"], "0.3.1");
    assert_eq!(result["ips"][0]["version"], "4");
    // CHECK does not exist before 0.4.0.
    let (code, _) = error(&node.invoke(invocation("CHECK", &one), &legacy));
    assert_eq!(code, 1);
    assert!(node.invoke(invocation("DEL", &one), &legacy).success);
    // An unknown version and an unknown key.
    let future = node.config_with(|c| c["cniVersion"] = Value::from("9.0.0"));
    assert_eq!(error(&node.invoke(invocation("ADD", &one), &future)).0, 1);
    let typo = node.config_with(|c| c["mut"] = Value::from(1400));
    let (code, message) = error(&node.invoke(invocation("ADD", &one), &typo));
    assert_eq!(code, 7);
    assert!(message.contains("unknown field `mut`"), "{message}");
    assert_eq!(node.in_use(), 0);
}

#[test]
fn pods_without_kubernetes_arguments_are_named_after_the_container() {
    let Some(node) = Node::new(&[POOL_V4]) else {
        return;
    };
    let one = pod();
    let plain = lab::cni::CniInvocation::new("ADD", one.name(), one.path());
    let output = node.invoke(plain, &node.config());
    assert!(output.success, "{}", output.text());
    let link = cni::config::host_link_name(one.name());
    assert_eq!(
        node.ip(&["link", "show", &link])[0]["address"],
        "ee:ee:ee:ee:ee:ee"
    );
    assert_eq!(
        sysctl(&node.netns, &format!("ipv4/conf/{link}/proxy_arp")),
        "1"
    );
    let del = lab::cni::CniInvocation::new("DEL", one.name(), one.path());
    assert!(node.invoke(del, &node.config()).success);
    assert!(node.netns.ip(&["link", "show", "dev", &link]).is_err());
}
