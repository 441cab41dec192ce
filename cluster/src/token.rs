//! The CNI plugins' token: a bound token of the service account `wren-cni` from the
//! TokenRequest API (`serviceaccounts/token`), written with the API server's address
//! and CA into the plugins' kubeconfig ([`crate::kubeconfig`]). The installer writes
//! the first one; bgpd's refresher then asks for a new one a quarter into each token's
//! lifetime, as Calico's token watcher does (24 hours asked, a new one after 6), so
//! three quarters of a lifetime remain for retries when the API server is away.
//!
//! Calling contract: [`Refresher::run`] never returns; each failure is one warning line
//! and a retry after [`retry_after`] (5 s doubling to 1 min), never an exit, since the
//! plugins keep working on the current token until it expires.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::ClusterError;
use crate::files::write_atomic;
use crate::kubeconfig::ApiServer;

/// The lifetime asked for when none is configured (Calico's: one day).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest lifetime the API server grants (it refuses less than 10 minutes).
pub const MIN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// A new token is asked for after `lifetime / REFRESH_FRACTION`.
pub const REFRESH_FRACTION: u32 = 4;
/// The first retry after a failed request, doubled on each failure up to [`MAX_RETRY`].
pub const MIN_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between two failed requests.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The kubeconfig holds a secret: readable by root only.
const KUBECONFIG_MODE: u32 = 0o600;

/// A token and when it was issued and expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub value: String,
    pub issued: SystemTime,
    pub expires: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("issued", &self.issued)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// When to ask for the token after `token`: a [`REFRESH_FRACTION`]th into its lifetime
/// (at once for a token that was already expired when issued).
pub fn refresh_at(token: &Token) -> SystemTime {
    let lifetime = token
        .expires
        .duration_since(token.issued)
        .unwrap_or_default();
    token.issued + lifetime / REFRESH_FRACTION
}

/// The wait after `failures` consecutive failed requests (1 or more).
pub fn retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    MIN_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Which service account's tokens are asked for, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub namespace: String,
    pub name: String,
    pub lifetime: Duration,
}

impl Account {
    /// `wren-system/wren-cni` for [`DEFAULT_LIFETIME`].
    pub fn cni() -> Account {
        Account {
            namespace: String::from("wren-system"),
            name: String::from("wren-cni"),
            lifetime: DEFAULT_LIFETIME,
        }
    }

    /// Asks the API server (`server`, as errors name it) for a token of this account.
    pub async fn request(&self, client: &Client, server: &str) -> Result<Token, ClusterError> {
        let error = |reason: String| ClusterError::Api {
            api_server: server.to_owned(),
            what: format!("token of service account {}/{}", self.namespace, self.name),
            reason,
        };
        if self.lifetime < MIN_LIFETIME {
            return Err(error(format!(
                "a lifetime of {} s is below the API server's minimum of {} s",
                self.lifetime.as_secs(),
                MIN_LIFETIME.as_secs()
            )));
        }
        let seconds = i64::try_from(self.lifetime.as_secs())
            .map_err(|_| error(format!("lifetime {:?} is too long", self.lifetime)))?;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(seconds),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &self.namespace);
        let issued = SystemTime::now();
        let answer = api
            .create_token_request(&self.name, &PostParams::default(), &request)
            .await
            .map_err(|e| error(describe(&e)))?;
        let status = answer
            .status
            .ok_or_else(|| error(String::from("the answer has no status")))?;
        let value = status
            .token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| error(String::from("the answer holds no token")))?;
        let expires = status
            .expiration_timestamp
            .map(|time| SystemTime::from(time.0))
            .ok_or_else(|| error(String::from("the answer has no expirationTimestamp")))?;
        Ok(Token {
            value,
            issued,
            expires,
        })
    }
}

/// One line for a failed request: the status the API server answered, else the
/// transport's error.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!(
            "refused: {} {} {}",
            status.code, status.reason, status.message
        ),
        other => format!("no answer: {other}"),
    }
}

/// Keeps the plugins' kubeconfig at `path` holding a live token of `account`.
#[derive(Clone)]
pub struct Refresher {
    client: Client,
    api_server: ApiServer,
    account: Account,
    path: PathBuf,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("api_server", &self.api_server.server)
            .field("account", &self.account)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// Asks through `client` (bgpd's or the installer's credentials), writes a
    /// kubeconfig for `api_server` at `path`.
    pub fn new(client: Client, api_server: ApiServer, account: Account, path: PathBuf) -> Self {
        Refresher {
            client,
            api_server,
            account,
            path,
        }
    }

    /// A refresher with the credentials of `kubeconfig` (none: in-cluster, else
    /// `KUBECONFIG`; see [`crate::client::config`]), for the API server they name.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        account: Account,
        path: PathBuf,
    ) -> Result<Refresher, ClusterError> {
        let mut config = crate::client::config(kubeconfig).await?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        let api_server = ApiServer::of_config(&config)?;
        let client = Client::try_from(config).map_err(|e| ClusterError::Api {
            api_server: api_server.server.clone(),
            what: String::from("creating the client"),
            reason: e.to_string(),
        })?;
        Ok(Refresher::new(client, api_server, account, path))
    }

    /// The kubeconfig's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks for a token now and rewrites the kubeconfig with it (atomically).
    pub async fn refresh(&self) -> Result<Token, ClusterError> {
        let token = self
            .account
            .request(&self.client, &self.api_server.server)
            .await?;
        let text = self.api_server.kubeconfig(&token.value)?;
        write_atomic(&self.path, text.as_bytes(), KUBECONFIG_MODE)?;
        Ok(token)
    }

    /// Refreshes now, then before each token's [`refresh_at`]; never returns.
    pub async fn run(self) -> std::convert::Infallible {
        let mut failures = 0u32;
        loop {
            let wait = match self.refresh().await {
                Ok(token) => {
                    failures = 0;
                    tracing::info!(
                        kubeconfig = %self.path.display(),
                        account = %self.account.name,
                        "wrote a new CNI token"
                    );
                    refresh_at(&token)
                        .duration_since(SystemTime::now())
                        .unwrap_or_default()
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let wait = retry_after(failures);
                    tracing::warn!("{error}; retrying in {} s", wait.as_secs());
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn token(lifetime: Duration) -> Token {
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        Token {
            value: String::from("secret"),
            issued,
            expires: issued + lifetime,
        }
    }

    #[test]
    fn a_new_token_a_quarter_into_the_lifetime() {
        let day = token(DEFAULT_LIFETIME);
        assert_eq!(
            refresh_at(&day).duration_since(day.issued).unwrap(),
            Duration::from_secs(6 * 60 * 60)
        );
        let short = token(MIN_LIFETIME);
        assert_eq!(
            refresh_at(&short).duration_since(short.issued).unwrap(),
            Duration::from_secs(150)
        );
        // Expired on arrival (a clock behind the API server's): ask again at once.
        let mut expired = token(Duration::ZERO);
        expired.expires = expired.issued - Duration::from_secs(10);
        assert_eq!(refresh_at(&expired), expired.issued);
    }

    #[test]
    fn retries_double_up_to_a_minute() {
        let waits: Vec<u64> = (1..=6).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(retry_after(u32::MAX), MAX_RETRY);
        assert_eq!(retry_after(0), MIN_RETRY);
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        assert!(!format!("{:?}", token(MIN_LIFETIME)).contains("secret"));
    }
}
