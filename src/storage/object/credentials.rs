//! Credentials object_store cannot fetch the way Athens does:
//!
//! - S3 keys from `Storage.S3.CredentialsEndpoint` (with
//!   `AwsContainerCredentialsRelativeURI` appended), which Athens reads
//!   with the AWS SDK's endpoint credentials provider. object_store only
//!   asks ECS's fixed address, or a full URI together with an EKS token
//!   file, so [`EndpointCredentials`] reads the endpoint itself.
//! - Azure managed-identity tokens for `Storage.AzureBlob.CredentialScope`.
//!   object_store always asks for the storage resource; Athens asks for the
//!   configured scope, which [`ManagedIdentityCredentials`] does.
//!
//! Both keep what they fetched until shortly before it expires and fetch
//! again then, as the SDKs do.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use object_store::aws::AwsCredential;
use object_store::azure::AzureCredential;
use object_store::CredentialProvider;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::storage::external::read_limited;

/// How long a credential request may take (the storage call around it
/// is bounded by `Timeout` as well).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a credentials or token answer may take: a few hundred bytes
/// are usual.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Credentials are fetched again this long before they expire (Athens'
/// Azure token refresh tolerance; the AWS SDK refreshes shortly before
/// expiry too).
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// How long the static keys Athens falls back to are used before the
/// endpoint is asked again.
const FALLBACK_FOR: Duration = Duration::from_secs(60);

/// A credential with the time to fetch a new one.
struct Cached<T> {
    credential: Arc<T>,
    refresh_at: Option<SystemTime>,
}

impl<T> Cached<T> {
    fn fresh(&self) -> Option<Arc<T>> {
        match self.refresh_at {
            Some(at) if SystemTime::now() >= at => None,
            _ => Some(Arc::clone(&self.credential)),
        }
    }
}

/// When to fetch again a credential expiring at `expires`: five minutes
/// before, or half way for one that lives less than ten minutes.
fn refresh_time(expires: SystemTime) -> SystemTime {
    let now = SystemTime::now();
    let left = expires.duration_since(now).unwrap_or_default();
    now + left.saturating_sub(REFRESH_BEFORE.min(left / 2))
}

fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

fn generic(store: &'static str, message: String) -> object_store::Error {
    object_store::Error::Generic {
        store,
        source: message.into(),
    }
}

/// What an AWS credentials endpoint answers, as the SDK's endpoint
/// provider reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointAnswer {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
    // Errors come as `code` and `message` (Go's decoder ignores case).
    #[serde(alias = "code")]
    code: Option<String>,
    #[serde(alias = "message")]
    message: Option<String>,
}

/// S3 credentials from an HTTP endpoint (`CredentialsEndpoint` followed by
/// `AwsContainerCredentialsRelativeURI`), as Athens' S3 backend gets them
/// unless `UseDefaultConfiguration` is set: the endpoint first, then the
/// configured `Key`/`Secret`/`Token` when the endpoint cannot give any.
pub(crate) struct EndpointCredentials {
    url: String,
    fallback: Option<AwsCredential>,
    client: reqwest::Client,
    cache: Mutex<Option<Cached<AwsCredential>>>,
}

impl std::fmt::Debug for EndpointCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a token in its path; it is not shown.
        f.debug_struct("EndpointCredentials")
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl EndpointCredentials {
    /// Credentials read from `url`; `fallback` (the static keys) when the
    /// endpoint fails.
    pub(crate) fn new(url: String, fallback: Option<AwsCredential>) -> Result<Self, String> {
        Ok(EndpointCredentials {
            url,
            fallback,
            client: http_client()?,
            cache: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<Cached<AwsCredential>, String> {
        let response = self
            .client
            .get(&self.url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("asking the credentials endpoint: {}", e.without_url()))?;
        let status = response.status();
        let body = read_limited(response, MAX_ANSWER_BYTES, false)
            .await
            .map_err(|e| format!("reading the credentials endpoint: {e}"))?;
        let answer: Option<EndpointAnswer> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let detail = answer
                .map(|a| {
                    format!(
                        ": {} {}",
                        a.code.unwrap_or_default(),
                        a.message.unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "the credentials endpoint answered {status}{detail}"
            ));
        }
        let answer =
            answer.ok_or_else(|| "the credentials endpoint answered no JSON".to_string())?;
        let (Some(key_id), Some(secret_key)) = (answer.access_key_id, answer.secret_access_key)
        else {
            return Err("the credentials endpoint answered no AccessKeyId/SecretAccessKey".into());
        };
        let refresh_at = match answer.expiration.as_deref().filter(|e| !e.is_empty()) {
            None => None,
            Some(text) => {
                let expires = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
                    format!("the credentials endpoint answered an unreadable Expiration {text:?}")
                })?;
                Some(refresh_time(expires.into()))
            }
        };
        Ok(Cached {
            credential: Arc::new(AwsCredential {
                key_id,
                secret_key,
                token: answer.token.filter(|t| !t.is_empty()),
            }),
            refresh_at,
        })
    }
}

#[async_trait]
impl CredentialProvider for EndpointCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cache = self.cache.lock().await;
        if let Some(credential) = cache.as_ref().and_then(Cached::fresh) {
            return Ok(credential);
        }
        let fetched = match self.fetch().await {
            Ok(fetched) => fetched,
            Err(error) => match &self.fallback {
                Some(keys) => {
                    tracing::warn!(
                        %error,
                        "S3: no credentials from Storage.S3.CredentialsEndpoint; using Storage.S3.Key"
                    );
                    Cached {
                        credential: Arc::new(AwsCredential {
                            key_id: keys.key_id.clone(),
                            secret_key: keys.secret_key.clone(),
                            token: keys.token.clone(),
                        }),
                        refresh_at: Some(SystemTime::now() + FALLBACK_FOR),
                    }
                }
                None => return Err(generic("S3", error)),
            },
        };
        let credential = Arc::clone(&fetched.credential);
        *cache = Some(fetched);
        Ok(credential)
    }
}

/// Where and how a managed identity token is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdentityEndpoint {
    /// The instance metadata service of a virtual machine (or its
    /// address given in `AZURE_MSI_ENDPOINT`/`MSI_ENDPOINT`).
    Imds(String),
    /// App Service and Functions: `IDENTITY_ENDPOINT` with the secret
    /// `IDENTITY_HEADER`.
    AppService {
        /// The token endpoint.
        url: String,
        /// Sent as `X-IDENTITY-HEADER`.
        secret: String,
    },
}

/// The instance metadata service's token endpoint.
const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

impl IdentityEndpoint {
    /// As Azure's identity library chooses it from the environment.
    pub(crate) fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
            (Some(url), Some(secret)) => IdentityEndpoint::AppService { url, secret },
            _ => IdentityEndpoint::Imds(
                var("AZURE_MSI_ENDPOINT")
                    .or_else(|| var("MSI_ENDPOINT"))
                    .unwrap_or_else(|| IMDS_TOKEN_URL.to_string()),
            ),
        }
    }
}

/// The resource a scope names: the scope without its `/.default`, as
/// Azure's identity library asks managed identity endpoints.
pub(crate) fn scope_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// A managed identity token endpoint's answer; `expires_on` is seconds
/// since the epoch, as a string or a number.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_on: serde_json::Value,
}

/// Azure bearer tokens of the managed identity `ManagedIdentityResourceID`
/// for `CredentialScope`, as Athens asks for them.
pub(crate) struct ManagedIdentityCredentials {
    endpoint: IdentityEndpoint,
    resource: String,
    resource_id: String,
    client: reqwest::Client,
    cache: Mutex<Option<Cached<AzureCredential>>>,
}

impl std::fmt::Debug for ManagedIdentityCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityCredentials")
            .field("resource", &self.resource)
            .finish()
    }
}

impl ManagedIdentityCredentials {
    /// Tokens for `scope` of the identity `resource_id`, asked at `endpoint`.
    pub(crate) fn new(
        endpoint: IdentityEndpoint,
        scope: &str,
        resource_id: &str,
    ) -> Result<Self, String> {
        Ok(ManagedIdentityCredentials {
            endpoint,
            resource: scope_resource(scope).to_string(),
            resource_id: resource_id.to_string(),
            client: http_client()?,
            cache: Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<Cached<AzureCredential>, String> {
        // The two protocols as Azure's identity library speaks them.
        let request = match &self.endpoint {
            IdentityEndpoint::Imds(url) => {
                self.client.get(url).header("Metadata", "true").query(&[
                    ("api-version", "2018-02-01"),
                    ("resource", self.resource.as_str()),
                    ("msi_res_id", self.resource_id.as_str()),
                ])
            }
            IdentityEndpoint::AppService { url, secret } => self
                .client
                .get(url)
                .header("X-IDENTITY-HEADER", secret)
                .query(&[
                    ("api-version", "2019-08-01"),
                    ("resource", self.resource.as_str()),
                    ("mi_res_id", self.resource_id.as_str()),
                ]),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("asking the managed identity endpoint: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the managed identity endpoint answered {status} for resource {:?}",
                self.resource
            ));
        }
        let body = read_limited(response, MAX_ANSWER_BYTES, false)
            .await
            .map_err(|e| format!("reading the managed identity endpoint: {e}"))?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| "the managed identity endpoint answered no token".to_string())?;
        let expires_on = match &answer.expires_on {
            serde_json::Value::String(s) => s.parse::<u64>().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| "the managed identity endpoint answered no expires_on".to_string())?;
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(expires_on);
        Ok(Cached {
            credential: Arc::new(AzureCredential::BearerToken(answer.access_token)),
            refresh_at: Some(refresh_time(expires)),
        })
    }
}

#[async_trait]
impl CredentialProvider for ManagedIdentityCredentials {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        let mut cache = self.cache.lock().await;
        if let Some(credential) = cache.as_ref().and_then(Cached::fresh) {
            return Ok(credential);
        }
        let fetched = self
            .fetch()
            .await
            .map_err(|e| generic("MicrosoftAzure", e))?;
        let credential = Arc::clone(&fetched.credential);
        *cache = Some(fetched);
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use std::sync::Mutex as StdMutex;

    /// What a loopback server was asked: method, path with query, and the
    /// headers that matter here.
    #[derive(Debug, Clone)]
    struct Asked {
        uri: String,
        authorization: Option<String>,
        metadata: Option<String>,
        identity_header: Option<String>,
    }

    type Answer = fn(&Asked, usize) -> Response;

    struct Recorder {
        asked: StdMutex<Vec<Asked>>,
        answer: Answer,
    }

    /// A loopback HTTP server answering with `answer` (given the request
    /// and how many came before it) and recording every request.
    async fn serve(answer: Answer) -> (String, Arc<Recorder>, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let recorder = Arc::new(Recorder {
            asked: StdMutex::new(Vec::new()),
            answer,
        });
        async fn handle(State(r): State<Arc<Recorder>>, request: Request) -> Response {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let asked = Asked {
                uri: request.uri().to_string(),
                authorization: header("authorization"),
                metadata: header("metadata"),
                identity_header: header("x-identity-header"),
            };
            let count = {
                let mut all = r.asked.lock().unwrap();
                all.push(asked.clone());
                all.len() - 1
            };
            (r.answer)(&asked, count)
        }
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&recorder));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (url, recorder, task)
    }

    fn json(status: u16, body: String) -> Response {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response()
    }

    fn rfc3339_in(seconds: i64) -> String {
        (OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
            .format(&Rfc3339)
            .unwrap()
    }

    /// The endpoint's keys are used and kept until five minutes before
    /// they expire; keys expiring sooner are fetched again.
    #[tokio::test]
    async fn endpoint_credentials_are_fetched_and_refreshed_before_expiry() {
        fn answer(_: &Asked, count: usize) -> Response {
            // The first pair expires in an hour, the next ones in a minute.
            let expires = if count == 0 { 3600 } else { 60 };
            json(
                200,
                format!(
                    r#"{{"AccessKeyId":"KEY{count}","SecretAccessKey":"S{count}","Token":"T{count}","Expiration":"{}"}}"#,
                    rfc3339_in(expires)
                ),
            )
        }
        let (url, recorder, task) = serve(answer).await;
        let provider = EndpointCredentials::new(format!("{url}/v2/creds/abc"), None).unwrap();
        let first = provider.get_credential().await.unwrap();
        assert_eq!(first.key_id, "KEY0");
        assert_eq!(first.secret_key, "S0");
        assert_eq!(first.token.as_deref(), Some("T0"));
        // Cached: not asked again.
        assert_eq!(provider.get_credential().await.unwrap().key_id, "KEY0");
        assert_eq!(recorder.asked.lock().unwrap().len(), 1);
        assert_eq!(recorder.asked.lock().unwrap()[0].uri, "/v2/creds/abc");
        // A pair close to its expiry is replaced on the next use.
        *provider.cache.lock().await = None;
        assert_eq!(provider.get_credential().await.unwrap().key_id, "KEY1");
        let refresh_at = provider.cache.lock().await.as_ref().unwrap().refresh_at;
        let left = refresh_at
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        assert!(left <= Duration::from_secs(30), "{left:?}");
        task.abort();
    }

    /// As Athens' chain: an endpoint that fails gives way to the static
    /// keys; without them the failure is the error, with the endpoint's
    /// own code and message.
    #[tokio::test]
    async fn a_failing_endpoint_falls_back_to_the_static_keys() {
        fn answer(_: &Asked, _: usize) -> Response {
            json(
                403,
                r#"{"code":"AccessDenied","message":"not this task"}"#.into(),
            )
        }
        let (url, _recorder, task) = serve(answer).await;
        let keys = AwsCredential {
            key_id: "STATIC".into(),
            secret_key: "static-secret".into(),
            token: None,
        };
        let provider = EndpointCredentials::new(url.clone(), Some(keys)).unwrap();
        assert_eq!(provider.get_credential().await.unwrap().key_id, "STATIC");
        let provider = EndpointCredentials::new(url, None).unwrap();
        let err = provider.get_credential().await.unwrap_err().to_string();
        assert!(err.contains("403"), "{err}");
        assert!(err.contains("AccessDenied not this task"), "{err}");
        task.abort();
    }

    /// An answer larger than any credentials document is refused, not
    /// read whole into memory.
    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        fn answer(_: &Asked, _: usize) -> Response {
            let padding = " ".repeat(MAX_ANSWER_BYTES as usize + 1);
            json(
                200,
                format!(r#"{{"AccessKeyId":"K","SecretAccessKey":"S"{padding}}}"#),
            )
        }
        let (url, _recorder, task) = serve(answer).await;
        let provider = EndpointCredentials::new(url, None).unwrap();
        let err = provider.get_credential().await.unwrap_err().to_string();
        assert!(err.contains("more than the"), "{err}");
        task.abort();
    }

    /// The endpoint URL is `CredentialsEndpoint` followed by the relative
    /// URI, as Athens joins them; a relative URI alone goes to ECS's
    /// address.
    #[test]
    fn the_endpoint_url_joins_the_two_settings() {
        use crate::config::S3Config;
        use crate::storage::object::services::credentials_endpoint_url;
        let config = |endpoint: &str, relative: &str| S3Config {
            credentials_endpoint: endpoint.into(),
            aws_container_credentials_relative_uri: relative.into(),
            ..Default::default()
        };
        assert_eq!(credentials_endpoint_url(&config("", "")), None);
        assert_eq!(
            credentials_endpoint_url(&config("http://10.0.0.1:8080", "/v2/x")).as_deref(),
            Some("http://10.0.0.1:8080/v2/x")
        );
        assert_eq!(
            credentials_endpoint_url(&config("http://10.0.0.1/creds", "")).as_deref(),
            Some("http://10.0.0.1/creds")
        );
        assert_eq!(
            credentials_endpoint_url(&config("", "/v2/x")).as_deref(),
            Some("http://169.254.170.2/v2/x")
        );
    }

    fn token_answer(asked: &Asked, count: usize) -> Response {
        if asked.uri.starts_with("/token") {
            let expires = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            return json(
                200,
                format!(
                    r#"{{"access_token":"tok-{count}","expires_on":"{expires}","token_type":"Bearer"}}"#
                ),
            );
        }
        // The container listing the start-up check asks for: empty.
        (
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs></Blobs></EnumerationResults>",
        )
            .into_response()
    }

    /// Athens' managed identity path: the token is asked for the resource
    /// of `CredentialScope` and the identity `ManagedIdentityResourceID`
    /// (App Service's protocol here, with its secret header), and the
    /// blob requests carry it as a bearer token, also when an account key
    /// is set (the identity wins, as in Athens).
    #[tokio::test]
    async fn azure_managed_identity_token_is_asked_for_the_credential_scope() {
        use crate::config::{AzureBlobConfig, Secret};
        use crate::storage::object::{services, ObjectStorage};
        let (url, recorder, task) = serve(token_answer).await;
        let config = AzureBlobConfig {
            account_name: "acct".into(),
            account_key: Secret::new("a2V5"),
            managed_identity_resource_id: "/subscriptions/s/identities/athens".into(),
            credential_scope: "https://custom.example/.default".into(),
            container_name: "modules".into(),
        };
        let identity = IdentityEndpoint::AppService {
            url: format!("{url}/token"),
            secret: "app-secret".into(),
        };
        let store =
            services::azure_blob_with_identity(&config, Some(&format!("{url}/acct")), identity)
                .unwrap();
        ObjectStorage::new(store, "azureblob")
            .check()
            .await
            .unwrap();
        let asked = recorder.asked.lock().unwrap().clone();
        let token = &asked[0];
        assert!(token.uri.starts_with("/token?"), "{asked:?}");
        for pair in [
            "resource=https%3A%2F%2Fcustom.example&",
            "mi_res_id=%2Fsubscriptions%2Fs%2Fidentities%2Fathens",
            "api-version=2019-08-01",
        ] {
            assert!(token.uri.contains(pair), "{pair}: {asked:?}");
        }
        assert_eq!(token.identity_header.as_deref(), Some("app-secret"));
        let listing = asked.last().unwrap();
        assert!(listing.uri.starts_with("/acct/modules?"), "{asked:?}");
        assert_eq!(listing.authorization.as_deref(), Some("Bearer tok-0"));
        task.abort();
    }

    /// On a virtual machine the instance metadata protocol is spoken: the
    /// `Metadata` header, `msi_res_id`, and the scope's resource.
    #[tokio::test]
    async fn imds_protocol_carries_the_scope_resource() {
        let (url, recorder, task) = serve(token_answer).await;
        let provider = ManagedIdentityCredentials::new(
            IdentityEndpoint::Imds(format!("{url}/token")),
            "https://storage.azure.com/.default",
            "/subscriptions/s/identities/vm",
        )
        .unwrap();
        let credential = provider.get_credential().await.unwrap();
        assert!(
            matches!(credential.as_ref(), AzureCredential::BearerToken(t) if t == "tok-0"),
            "{credential:?}"
        );
        // Kept until shortly before it expires.
        provider.get_credential().await.unwrap();
        let asked = recorder.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0].metadata.as_deref(), Some("true"));
        assert!(asked[0].uri.contains("api-version=2018-02-01"), "{asked:?}");
        assert!(
            asked[0]
                .uri
                .contains("resource=https%3A%2F%2Fstorage.azure.com&"),
            "{asked:?}"
        );
        assert!(asked[0].uri.contains("msi_res_id="), "{asked:?}");
        task.abort();
    }
}
