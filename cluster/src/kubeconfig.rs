//! The CNI plugins' kubeconfig: where the API server is and how to trust it (taken from
//! the credentials the installer or bgpd runs with: in the cluster, the pod's
//! `KUBERNETES_SERVICE_HOST`/`_PORT` and service-account CA; in tests, a kubeconfig),
//! with a bearer token of `wren-cni`. The CA is written into the file
//! (`certificate-authority-data`): the plugins run on the host, where the pod's CA file
//! does not exist. The text is JSON, which every kubeconfig reader takes as YAML.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use crate::ClusterError;

/// The one cluster, user and context name in the written kubeconfig.
const NAME: &str = "wren";

/// The API server as the plugins reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServer {
    /// `https://HOST:PORT`.
    pub server: String,
    /// The CA certificates (PEM) that sign the API server's certificate; `None`: the
    /// system's roots.
    pub certificate_authority: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify` of the credentials it came from.
    pub insecure: bool,
    /// The name the API server's certificate is checked against, when not the host.
    pub tls_server_name: Option<String>,
}

impl ApiServer {
    /// The API server of a client configuration (in-cluster or from a kubeconfig).
    pub fn of_config(config: &kube::Config) -> Result<ApiServer, ClusterError> {
        let certificate_authority = match (&config.root_cert_file, &config.root_cert) {
            (Some(file), _) => Some(std::fs::read(file).map_err(|e| ClusterError::File {
                path: file.clone(),
                reason: format!("reading the API server's CA: {e}"),
            })?),
            (None, Some(certificates)) => Some(pem(certificates)),
            (None, None) => None,
        };
        Ok(ApiServer {
            server: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_owned(),
            certificate_authority,
            insecure: config.accept_invalid_certs,
            tls_server_name: config.tls_server_name.clone(),
        })
    }

    /// The kubeconfig text that reaches this API server as `token`.
    pub fn kubeconfig(&self, token: &str) -> Result<String, ClusterError> {
        let cluster = Cluster {
            server: Some(self.server.clone()),
            insecure_skip_tls_verify: self.insecure.then_some(true),
            certificate_authority_data: self
                .certificate_authority
                .as_ref()
                .map(|pem| STANDARD.encode(pem)),
            tls_server_name: self.tls_server_name.clone(),
            ..Cluster::default()
        };
        let user = AuthInfo {
            token: Some(secrecy::SecretString::from(token.to_owned())),
            ..AuthInfo::default()
        };
        let kubeconfig = Kubeconfig {
            api_version: Some(String::from("v1")),
            kind: Some(String::from("Config")),
            clusters: vec![NamedCluster {
                name: NAME.to_owned(),
                cluster: Some(cluster),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: NAME.to_owned(),
                auth_info: Some(user),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: NAME.to_owned(),
                context: Some(Context {
                    cluster: NAME.to_owned(),
                    user: Some(NAME.to_owned()),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(NAME.to_owned()),
            ..Kubeconfig::default()
        };
        serde_json::to_string_pretty(&kubeconfig).map_err(|e| ClusterError::Kubeconfig {
            path: format!("(the CNI plugins', for {})", self.server),
            reason: e.to_string(),
        })
    }
}

/// DER certificates as PEM text.
fn pem(certificates: &[Vec<u8>]) -> Vec<u8> {
    let mut out = String::new();
    for der in certificates {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let text = STANDARD.encode(der);
        for line in text.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out.into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn kube_reads_back_what_is_written() {
        let api_server = ApiServer {
            server: String::from("https://10.96.0.1:443"),
            certificate_authority: Some(pem(&[vec![1u8; 100]])),
            insecure: false,
            tls_server_name: None,
        };
        let text = api_server.kubeconfig("a.b.c").unwrap();
        let read = Kubeconfig::from_yaml(&text).unwrap();
        let cluster = read.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.96.0.1:443"));
        assert_eq!(cluster.insecure_skip_tls_verify, None);
        let ca = STANDARD
            .decode(cluster.certificate_authority_data.as_ref().unwrap())
            .unwrap();
        assert_eq!(Some(ca), api_server.certificate_authority);
        let token = read.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .token
            .as_ref();
        assert_eq!(token.unwrap().expose_secret(), "a.b.c");
        assert_eq!(read.current_context.as_deref(), Some(NAME));
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let text = String::from_utf8(pem(&[vec![7u8; 120], vec![8u8; 3]])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[3].len(), 32);
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
        assert_eq!(lines[5], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines.len(), 8);
    }
}
