//! Object stores built from Athens' `[Storage.S3]`, `[Storage.Minio]`,
//! `[Storage.GCP]` and `[Storage.AzureBlob]` settings.

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential, S3CopyIfNotExists};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use object_store::{ClientOptions, ObjectStore, StaticCredentialProvider};

use super::credentials::{EndpointCredentials, IdentityEndpoint, ManagedIdentityCredentials};
use crate::config::{AzureBlobConfig, GcpConfig, MinioConfig, S3Config};

/// Why an object store could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct ObjectStoreConfigError {
    /// Which backend.
    pub service: &'static str,
    /// What is wrong (never a credential).
    pub message: String,
}

fn config_error(service: &'static str, e: impl std::fmt::Display) -> ObjectStoreConfigError {
    ObjectStoreConfigError {
        service,
        message: e.to_string(),
    }
}

/// S3 has no create-only copy header, so the copy that places a staged
/// multipart zip upload (see the `object` module) is a one-part multipart
/// upload completed with `If-None-Match: *`, which AWS, MinIO and moto
/// honour; `AWS_COPY_IF_NOT_EXISTS` can choose another way (R2's header).
trait CreateOnlyCopy {
    fn with_create_only_copy(self) -> Self;
}

impl CreateOnlyCopy for AmazonS3Builder {
    fn with_create_only_copy(self) -> Self {
        if self
            .get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
            .is_some()
        {
            self
        } else {
            self.with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
        }
    }
}

/// Amazon S3 or any S3-compatible service. As with the AWS SDK Athens
/// uses: `UseDefaultConfiguration` (or no key and no credentials
/// endpoint) takes credentials from the environment, web identity, the
/// container endpoint or instance metadata; otherwise, as Athens' chain,
/// the credentials endpoint (`credentials_endpoint_url`) when set,
/// falling back to Key/Secret/Token. `Endpoint` overrides the service
/// address; without `ForcePathStyle` the bucket becomes part of the host
/// name, as the SDK does.
pub fn s3(c: &S3Config) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_region(&c.region)
        .with_bucket_name(&c.bucket);
    let static_keys = (!c.key.is_empty()).then(|| AwsCredential {
        key_id: c.key.clone(),
        secret_key: c.secret.expose().to_string(),
        token: Some(c.token.expose().to_string()).filter(|t| !t.is_empty()),
    });
    if !c.use_default_configuration {
        if let Some(url) = credentials_endpoint_url(c) {
            // Athens' chain: the endpoint, then the static keys.
            let provider =
                EndpointCredentials::new(url, static_keys).map_err(|e| config_error("s3", e))?;
            builder = builder.with_credentials(Arc::new(provider));
        } else if let Some(keys) = static_keys {
            builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(keys)));
        }
    }
    if !c.endpoint.is_empty() {
        let endpoint = c.endpoint.trim_end_matches('/');
        builder = builder.with_allow_http(endpoint.starts_with("http://"));
        if c.force_path_style {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        } else {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
            builder = builder
                .with_endpoint(format!("{scheme}://{}.{host}", c.bucket))
                .with_virtual_hosted_style_request(true);
        }
    } else if c.force_path_style {
        builder = builder.with_virtual_hosted_style_request(false);
    }
    builder
        .with_create_only_copy()
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| config_error("s3", e))
}

/// Where Athens' S3 backend asks for credentials: `CredentialsEndpoint`
/// followed by `AwsContainerCredentialsRelativeURI`, as Athens joins them.
/// A relative URI alone is asked at ECS's address (169.254.170.2), as the
/// AWS SDK's container provider asks it (Athens' own chain would ask the
/// bare path and fail over to the static keys).
pub(crate) fn credentials_endpoint_url(c: &S3Config) -> Option<String> {
    match (
        c.credentials_endpoint.as_str(),
        c.aws_container_credentials_relative_uri.as_str(),
    ) {
        ("", "") => None,
        ("", relative) => Some(format!("{ECS_CREDENTIALS_HOST}{relative}")),
        (endpoint, relative) => Some(format!("{endpoint}{relative}")),
    }
}

/// The address ECS serves task credentials at.
const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";

/// MinIO and other S3-compatible services reached by `host:port`
/// (DigitalOcean Spaces, Alibaba OSS): path-style requests, `EnableSSL`
/// choosing https, region `us-east-1` unless set.
pub fn minio(c: &MinioConfig) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    let endpoint = c.endpoint.trim_end_matches('/');
    let endpoint = if endpoint.contains("://") {
        endpoint.to_string()
    } else if c.enable_ssl {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    let region = if c.region.is_empty() {
        "us-east-1"
    } else {
        c.region.as_str()
    };
    AmazonS3Builder::new()
        .with_allow_http(endpoint.starts_with("http://"))
        .with_endpoint(endpoint)
        .with_virtual_hosted_style_request(false)
        .with_region(region)
        .with_bucket_name(&c.bucket)
        .with_access_key_id(&c.key)
        .with_secret_access_key(c.secret.expose())
        .with_create_only_copy()
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| config_error("minio", e))
}

/// Azure Blob Storage: as in Athens, the managed identity
/// `ManagedIdentityResourceID` when set, with a token for
/// `CredentialScope` (Azure Storage's scope when empty) from the instance
/// metadata service or App Service's `IDENTITY_ENDPOINT`; otherwise the
/// account key; otherwise the environment's Azure credentials. The service address can be overridden with
/// `AZURE_STORAGE_ENDPOINT` (for Azurite, say).
pub fn azure_blob(c: &AzureBlobConfig) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    azure_blob_at(c, std::env::var("AZURE_STORAGE_ENDPOINT").ok().as_deref())
}

/// [`azure_blob`] with the service address given rather than read from
/// the environment.
pub(crate) fn azure_blob_at(
    c: &AzureBlobConfig,
    endpoint: Option<&str>,
) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    azure_blob_with_identity(c, endpoint, IdentityEndpoint::from_env())
}

/// The scope asked for when `CredentialScope` is empty: Azure Storage's.
const AZURE_STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// [`azure_blob_at`] with the managed identity endpoint given.
pub(crate) fn azure_blob_with_identity(
    c: &AzureBlobConfig,
    endpoint: Option<&str>,
    identity: IdentityEndpoint,
) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    let mut builder = MicrosoftAzureBuilder::from_env()
        .with_account(&c.account_name)
        .with_container_name(&c.container_name);
    // As in Athens, the managed identity wins over the account key.
    if !c.managed_identity_resource_id.is_empty() {
        let scope = if c.credential_scope.is_empty() {
            AZURE_STORAGE_SCOPE
        } else {
            c.credential_scope.as_str()
        };
        let provider =
            ManagedIdentityCredentials::new(identity, scope, &c.managed_identity_resource_id)
                .map_err(|e| config_error("azureblob", e))?;
        builder = builder.with_credentials(Arc::new(provider));
    } else if !c.account_key.is_empty() {
        builder = builder.with_access_key(c.account_key.expose());
    }
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint.to_string());
    }
    builder
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| config_error("azureblob", e))
}

/// The variable that points Google's clients at an emulator.
pub const EMULATOR_HOST_VAR: &str = "STORAGE_EMULATOR_HOST";

/// Google Cloud Storage through object_store's client, which speaks the
/// XML API (objects, multipart uploads, listing). Credentials as with
/// Google's clients: the base64 `JSONKey` service-account key when set,
/// otherwise application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
/// gcloud's user credentials, then the metadata server). `ProjectID` is
/// not needed to reach a bucket and is unused, as in Athens.
/// `STORAGE_EMULATOR_HOST` points the client at an emulator, without
/// credentials, as it does Google's clients; the emulator must speak the
/// XML API.
pub fn gcp(c: &GcpConfig) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    let emulator = std::env::var(EMULATOR_HOST_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty());
    gcp_at(c, emulator.as_deref())
}

/// [`gcp`] with the emulator address given rather than read from the
/// environment: a host and port, or a URL.
pub(crate) fn gcp_at(
    c: &GcpConfig,
    emulator: Option<&str>,
) -> Result<Arc<dyn ObjectStore>, ObjectStoreConfigError> {
    let mut builder = GoogleCloudStorageBuilder::new().with_bucket_name(&c.bucket);
    if let Some(host) = emulator {
        let host = host.trim().trim_end_matches('/');
        let url = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        // Emulators take no credentials: an empty bearer token, and no
        // token or key is ever looked up.
        let anonymous = StaticCredentialProvider::new(GcpCredential {
            bearer: String::new(),
        });
        builder = builder
            .with_client_options(ClientOptions::new().with_allow_http(url.starts_with("http://")))
            .with_base_url(&url)
            .with_credentials(Arc::new(anonymous))
            .with_skip_signature(true);
    } else if !c.json_key.is_empty() {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(c.json_key.expose().trim())
            .map_err(|_| config_error("gcp", "Storage.GCP.JSONKey is not valid base64"))?;
        let key = String::from_utf8(decoded)
            .map_err(|_| config_error("gcp", "Storage.GCP.JSONKey is not UTF-8 JSON"))?;
        builder = builder.with_service_account_key(key);
    }
    builder
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        // object_store's messages name the problem, never the key's text.
        .map_err(|e| config_error("gcp", e))
}
