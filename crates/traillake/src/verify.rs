//! `traillake verify s3://.../QUERYID/`: checks a delivery of query results: the sign file's
//! signature with the signing key it names (kept under the lake root), each result file's SHA-256,
//! and that no file is missing or extra.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use sha2::{Digest as _, Sha256};
use traillake_api::s3_location::S3Location;
use traillake_lake::{LakeRoot, RootLocation};
use traillake_query::delivery::keys::{SigningKeys, verify_signature};
use traillake_query::delivery::{SIGN_FILE, SignFile};

/// The arguments of `traillake verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The lake root of the server that delivered the results, whose signing keys are checked
    /// against.
    #[arg(long, env = "TRAILLAKE_ROOT", default_value = "./traillake-data")]
    root: String,
    /// The delivery folder: s3://bucket/prefix/AWSLogs/ACCOUNT/CloudTrail-Lake/Query/YYYY/MM/DD/QUERYID/
    /// on the S3-compatible server AWS_ENDPOINT_URL_S3 names.
    folder: String,
}

/// Runs `traillake verify`; returns false, having said why, if the delivery does not verify.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let target = match S3Location::read(&args.folder) {
        Ok(target) => target,
        Err(problem) => bail!("{} {}", args.folder, problem.reason()),
    };
    let bucket = traillake_lake::root::s3_bucket(&target.bucket)?;
    let folder = Path::from(target.prefix.trim_end_matches('/'));
    let listed: Vec<_> = bucket
        .list(Some(&folder))
        .try_collect()
        .await
        .with_context(|| format!("listing {}", args.folder))?;
    let names: BTreeSet<String> = listed
        .iter()
        .filter_map(|meta| {
            meta.location
                .as_ref()
                .strip_prefix(&format!("{folder}/"))
                .map(str::to_string)
        })
        .collect();
    if !names.contains(SIGN_FILE) {
        println!("FAILED: {} has no {SIGN_FILE}", args.folder);
        return Ok(false);
    }
    let sign_bytes = bucket.get(&folder.clone().join(SIGN_FILE)).await?.bytes().await?;
    let sign: SignFile = serde_json::from_slice(&sign_bytes).context("reading the sign file")?;

    let mut problems = Vec::new();
    let signed: BTreeSet<&str> = sign.files.iter().map(|file| file.file_name.as_str()).collect();
    for name in names
        .iter()
        .filter(|name| name.as_str() != SIGN_FILE && !signed.contains(name.as_str()))
    {
        problems.push(format!("{name} is in the folder but not in the sign file"));
    }
    for file in &sign.files {
        if !names.contains(&file.file_name) {
            problems.push(format!(
                "{} is in the sign file but missing from the folder",
                file.file_name
            ));
            continue;
        }
        let bytes = bucket
            .get(&folder.clone().join(file.file_name.as_str()))
            .await?
            .bytes()
            .await?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if hash != file.file_hash_value {
            problems.push(format!(
                "{}: its SHA-256 is {hash}, the sign file says {}",
                file.file_name, file.file_hash_value
            ));
        }
    }

    let root = LakeRoot::open(RootLocation::parse(&args.root)?)
        .with_context(|| format!("opening the lake root {}", args.root))?;
    let keys = SigningKeys::open(root, std::time::Duration::from_secs(1)).await?;
    match keys.by_fingerprint(&sign.public_key_fingerprint).await {
        None => problems.push(format!(
            "no signing key of {} has the fingerprint {}",
            args.root, sign.public_key_fingerprint
        )),
        Some(key) => {
            let signature = hex::decode(&sign.hash_signature).ok();
            let signing_string = SignFile::signing_string(&sign.files);
            match signature {
                None => problems.push("the hashSignature is not hex".to_string()),
                Some(signature) => {
                    if let Err(problem) = verify_signature(&key.public_key_der, signing_string.as_bytes(), &signature) {
                        problems.push(problem.to_string());
                    }
                }
            }
        }
    }

    if problems.is_empty() {
        println!(
            "verified: {} result files, signed {} by key {}",
            sign.files.len(),
            sign.query_complete_time,
            sign.public_key_fingerprint
        );
        return Ok(true);
    }
    for problem in &problems {
        println!("FAILED: {problem}");
    }
    Ok(false)
}
