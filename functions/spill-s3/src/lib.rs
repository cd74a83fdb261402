//! [`AnswerSpill`] on S3: each oversized answer is one object under a random key (192
//! bits), handed out as a presigned `GET` URL that expires after a few minutes. The
//! bucket's lifecycle rule removes the objects a day later (the template's, or
//! [`prepare_local_bucket`]'s for local runs).
//!
//! The presigned URL is signed with the caller's credentials: on Lambda the function's
//! role, which therefore needs `s3:GetObject` on the objects besides `s3:PutObject`.

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CorsConfiguration, CorsRule, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};
use base64::Engine as _;
use std::time::Duration;
use sync_core::spill::{AnswerSpill, SpillError, SpilledAt};

/// How long a presigned URL works: long enough for a slow client to start its download,
/// short enough that a leaked URL is soon worthless.
pub const URL_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The prefix of the objects' keys.
pub const KEY_PREFIX: &str = "answers/";
/// Random bytes in a key.
const KEY_RANDOM_BYTES: usize = 24;
/// Days the objects are kept (the lifecycle rule).
pub const EXPIRY_DAYS: i32 = 1;

#[derive(Clone)]
pub struct S3Spill {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Spill {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// A new object key: [`KEY_PREFIX`] and 192 random bits, URL-safe.
pub fn new_key() -> String {
    let bytes: [u8; KEY_RANDOM_BYTES] = rand::random();
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[async_trait]
impl AnswerSpill for S3Spill {
    async fn put(
        &self,
        body: Vec<u8>,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
    ) -> Result<SpilledAt, SpillError> {
        let key = new_key();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(content_type)
            .set_content_encoding(content_encoding.map(str::to_owned))
            .cache_control("private, no-store")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| SpillError(describe(&e)))?;
        let config = PresigningConfig::expires_in(URL_LIFETIME)
            .map_err(|e| SpillError(format!("presigning: {e}")))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .presigned(config)
            .await
            .map_err(|e| SpillError(format!("presigning: {}", describe(&e))))?;
        Ok(SpilledAt {
            url: presigned.uri().to_owned(),
            expires_in: URL_LIFETIME,
        })
    }
}

/// An SDK error in a few words: the service's code and message, or the failure's chain.
fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("unknown error"),
            service.err().message().unwrap_or("no message")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// An S3 client: AWS's default configuration chain, or `endpoint` when set (local runs:
/// path-style addressing, region from the environment or us-east-1, the environment's
/// credentials or dummy ones).
pub async fn client_for(endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let Some(endpoint) = endpoint else {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        return aws_sdk_s3::Client::new(&sdk);
    };
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(aws_sdk_s3::config::Region::new("us-east-1"));
    let credentials = aws_config::meta::credentials::CredentialsProviderChain::first_try(
        "Environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "Local",
        aws_sdk_s3::config::Credentials::new("local", "local", None, None, "spill-s3-local"),
    );
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates `bucket` when missing, as the template defines it for a deployment: objects
/// expire after [`EXPIRY_DAYS`], and any origin may `GET` them with any headers (the
/// presigned URL is the capability; a browser's redirected pull arrives with the origin
/// `null` or the page's, and with `X-Replicache-RequestID`, so it is preflighted). For
/// local runs (moto); a deployment's bucket comes from the template.
pub async fn prepare_local_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<(), SpillError> {
    let exists = client.head_bucket().bucket(bucket).send().await.is_ok();
    if !exists {
        client
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| SpillError(describe(&e)))?;
    }
    let cors = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_methods("GET")
                .allowed_origins("*")
                .allowed_headers("*")
                .max_age_seconds(3600)
                .build()
                .map_err(|e| SpillError(e.to_string()))?,
        )
        .build()
        .map_err(|e| SpillError(e.to_string()))?;
    client
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(cors)
        .send()
        .await
        .map_err(|e| SpillError(describe(&e)))?;
    let lifecycle = BucketLifecycleConfiguration::builder()
        .rules(
            LifecycleRule::builder()
                .id("expire-answers")
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix(KEY_PREFIX).build())
                .expiration(LifecycleExpiration::builder().days(EXPIRY_DAYS).build())
                .build()
                .map_err(|e| SpillError(e.to_string()))?,
        )
        .build()
        .map_err(|e| SpillError(e.to_string()))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(|e| SpillError(describe(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_url_safe() {
        let (a, b) = (new_key(), new_key());
        assert_ne!(a, b);
        let random = a.strip_prefix(KEY_PREFIX).unwrap();
        assert_eq!(random.len(), 32, "192 bits in base64");
        assert!(
            random
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
