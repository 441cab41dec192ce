//! The CNI plugins' token against a real kube-apiserver with the shipped roles
//! (deploy/wren.yaml): asked as `wren-node`, as bgpd and the installer ask it, the
//! `wren-cni` token lands in a kubeconfig that works and can do only what `wren-cni`
//! may; a refresh writes a new, working token in its place; a refused request names
//! the account and the API server and leaves the kubeconfig as it was; the refresher's
//! loop writes the kubeconfig at once.
//! Needs root and the built API server (fails with WREN_REQUIRE_LAB=1).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;
use std::time::{Duration, Instant};

use cluster::kubeconfig::ApiServer;
use cluster::token::{self, Account, Refresher};
use lab::kube::ControlPlane;

const NAMESPACE: &str = "wren-system";

async fn config(kubeconfig: &Path) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap()
}

fn token_in(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `kubectl auth can-i VERB RESOURCE` as `kubeconfig`'s user.
fn can(control_plane: &ControlPlane, kubeconfig: &Path, verb: &str, resource: &str) -> bool {
    control_plane
        .kubectl_as(kubeconfig, &["auth", "can-i", verb, resource])
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cni_token_is_written_refreshed_and_least_privilege() {
    let Some(_ready) = lab::require!(Root, KubeApiserver) else {
        return;
    };
    let control_plane = ControlPlane::on_host().unwrap();
    control_plane.apply_deploy().unwrap();
    let node = control_plane
        .service_account_kubeconfig(NAMESPACE, "wren-node")
        .unwrap();
    let config = config(&node).await;
    let api_server = ApiServer::of_config(&config).unwrap();
    assert_eq!(api_server.server, control_plane.url());
    let client = kube::Client::try_from(config).unwrap();
    let path = control_plane.dir().join("wren-kubeconfig");
    let account = Account {
        lifetime: token::MIN_LIFETIME,
        ..Account::cni()
    };
    let refresher = Refresher::new(
        client.clone(),
        api_server.clone(),
        account.clone(),
        path.clone(),
    );

    let first = refresher.refresh().await.unwrap();
    let lifetime = first.expires.duration_since(first.issued).unwrap();
    // `issued` is this host's clock before the request, `expires` the API server's
    // after it: the request's own time (a few ms, more on a busy machine) can come on
    // top of the 600 s asked for.
    assert!(
        lifetime > Duration::from_secs(590) && lifetime <= Duration::from_secs(605),
        "{lifetime:?}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(token_in(&path), first.value);
    assert_eq!(
        control_plane.user_of(&path).unwrap(),
        "system:serviceaccount:wren-system:wren-cni"
    );
    assert!(can(&control_plane, &path, "get", "nodes"));
    assert!(can(&control_plane, &path, "create", "ipamblocks.wren.io"));
    assert!(!can(&control_plane, &path, "create", "ippools.wren.io"));
    assert!(!can(&control_plane, &path, "get", "pods"));
    assert!(!can(&control_plane, &path, "patch", "nodes"));

    let second = refresher.refresh().await.unwrap();
    assert_ne!(second.value, first.value);
    assert!(second.issued >= first.issued);
    assert_eq!(token_in(&path), second.value);
    assert!(can(&control_plane, &path, "get", "nodes"));

    // wren-node may ask only for wren-cni's tokens: a refused request is one line naming
    // the account and the API server, and the kubeconfig keeps the last good token.
    let refused = Refresher::new(
        client.clone(),
        api_server.clone(),
        Account {
            name: String::from("wren-node"),
            ..account.clone()
        },
        path.clone(),
    )
    .refresh()
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("wren-system/wren-node"), "{refused}");
    assert!(refused.contains(control_plane.url()), "{refused}");
    assert!(refused.contains("403"), "{refused}");
    assert!(!refused.contains('\n'), "{refused}");
    assert_eq!(token_in(&path), second.value);
    let too_short = Account {
        lifetime: Duration::from_secs(60),
        ..account.clone()
    }
    .request(&client, &api_server.server)
    .await
    .unwrap_err()
    .to_string();
    assert!(
        too_short.contains("below the API server's minimum"),
        "{too_short}"
    );

    // The loop bgpd runs writes a token at once (and then sleeps a quarter of its life).
    let looped = control_plane.dir().join("looped-kubeconfig");
    let task = tokio::spawn(Refresher::new(client, api_server, account, looped.clone()).run());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !looped.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    assert!(looped.exists(), "the refresher wrote no kubeconfig in 20 s");
    assert!(can(&control_plane, &looped, "get", "nodes"));
}
