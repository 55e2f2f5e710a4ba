//! Bucket names and object keys as OSS accepts them.

use nimbus_api::ApiError;

/// 3–63 characters of lowercase letters, digits and `-`, starting and ending with a letter or digit.
pub fn check_bucket(name: &str) -> Result<(), ApiError> {
    let ok = (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            "InvalidBucketName",
            format!(
                "The specified bucket {name:?} is not valid: use 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit."
            ),
        ))
    }
}

/// Longest object key (bytes of UTF-8).
pub const MAX_KEY_BYTES: usize = 1023;

/// 1–1023 bytes, not starting with `/` or `\`, no control characters.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && !key.starts_with('/')
        && !key.starts_with('\\')
        && !key.chars().any(|c| c.is_control() && c != '\t');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            "InvalidObjectName",
            format!("The specified object name is not valid: 1-{MAX_KEY_BYTES} bytes, not starting with '/' or '\\'."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket-1", "a".repeat(63).as_str()] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a_b", "a.b", "a".repeat(64).as_str(), ""] {
            assert_eq!(check_bucket(bad).expect_err(bad).code, "InvalidBucketName");
        }
    }

    #[test]
    fn object_keys() {
        assert!(check_key("dir/a b+c.txt").is_ok());
        assert!(check_key(&"é".repeat(511)).is_ok());
        for bad in ["", "/a", "\\a", "a\u{0}b"] {
            assert_eq!(check_key(bad).expect_err(bad).code, "InvalidObjectName");
        }
        assert!(check_key(&"k".repeat(1024)).is_err());
    }
}
