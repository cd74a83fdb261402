//! The answer bucket of a local run on DynamoDB (`ANSWER_BUCKET`): pull answers over the
//! limit go there, as the pull function's do on Lambda, so that the redirect of large
//! pulls is exercised locally (moto serves S3 on its DynamoDB endpoint).

use crate::config::AnswerConfig;
use spill_s3::S3Spill;
use std::sync::Arc;
use sync_core::spill::{Oversize, SpillError};

/// The S3 spill of `config`; its bucket is created when missing, with the template's
/// lifecycle and CORS rules, as the table is.
pub async fn open(config: &AnswerConfig) -> Result<Oversize, SpillError> {
    let client = spill_s3::client_for(Some(&config.endpoint)).await;
    spill_s3::prepare_local_bucket(&client, &config.bucket).await?;
    Ok(Oversize::new(
        Arc::new(S3Spill::new(client, config.bucket.clone())),
        config.limit,
    ))
}
