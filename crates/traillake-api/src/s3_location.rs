//! `S3Location`: a bucket and a key prefix written `s3://bucket[/prefix]`, as StartImport's
//! `S3LocationUri` and StartQuery's `DeliveryS3Uri` name them. Each operation answers a location
//! it cannot read with its own error code.

use crate::validate::Pattern;

static BUCKET_PATTERN: Pattern = Pattern::new(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]");

/// A bucket and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without a leading `/`; ends with `/` unless empty.
    pub prefix: String,
}

/// Why a URI is not an S3 location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3LocationProblem {
    /// It does not start with `s3://`.
    Scheme,
    /// The bucket is not a name S3 allows.
    Bucket,
    /// The key prefix has an empty, `.` or `..` segment.
    Prefix,
}

impl S3LocationProblem {
    /// Returns what is wrong, to follow the URI in a message.
    pub fn reason(self) -> &'static str {
        match self {
            S3LocationProblem::Scheme => "does not start with s3://",
            S3LocationProblem::Bucket => {
                "does not name a valid bucket (3..63 lowercase letters, digits, dots and hyphens, no '..', not an IP address)"
            }
            S3LocationProblem::Prefix => "has an invalid key prefix (an empty, '.' or '..' segment)",
        }
    }
}

impl S3Location {
    /// Reads `s3://bucket[/prefix]`.
    pub fn read(uri: &str) -> Result<Self, S3LocationProblem> {
        let rest = uri.strip_prefix("s3://").ok_or(S3LocationProblem::Scheme)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ip_address = bucket.parse::<std::net::Ipv4Addr>().is_ok();
        if !BUCKET_PATTERN.is_full_match(bucket) || bucket.contains("..") || ip_address {
            return Err(S3LocationProblem::Bucket);
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
            return Err(S3LocationProblem::Prefix);
        }
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Self {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_buckets_and_prefixes() {
        assert_eq!(
            S3Location::read("s3://trail-bucket/a/b/").unwrap(),
            S3Location {
                bucket: "trail-bucket".into(),
                prefix: "a/b/".into()
            }
        );
        assert_eq!(S3Location::read("s3://trail-bucket").unwrap().prefix, "");
        assert_eq!(S3Location::read("https://b/x"), Err(S3LocationProblem::Scheme));
        for bad in ["s3://ab", "s3://UPPER", "s3://a..b", "s3://192.168.1.1/x"] {
            assert_eq!(S3Location::read(bad), Err(S3LocationProblem::Bucket), "{bad}");
        }
        for bad in ["s3://bucket/a//b", "s3://bucket/a/../b", "s3://bucket/./b"] {
            assert_eq!(S3Location::read(bad), Err(S3LocationProblem::Prefix), "{bad}");
        }
    }
}
