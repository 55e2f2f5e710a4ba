//! Identifiers in the shapes Alibaba Cloud uses, so SDK users see familiar ids.

use rand::Rng;
use rand::distr::Alphanumeric;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

/// A resource id: `prefix` + 20 lowercase alphanumerics, e.g. `i-bp67acfmxazb4ph3xxxx`.
pub fn resource_id(prefix: &str) -> String {
    format!("{prefix}{}", random_from(LOWER_ALNUM, 20))
}

/// A request id: an uppercase UUID, as the RPC gateway returns.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// An account id: 16 decimal digits, never starting with 0.
pub fn account_id() -> String {
    let mut rng = rand::rng();
    let first = rng.random_range(1..=9u8);
    let rest: String = (0..15).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    format!("{first}{rest}")
}

/// A long-term AccessKey id: `LTAI` + 20 alphanumerics.
pub fn access_key_id() -> String {
    let s: String = rand::rng().sample_iter(&Alphanumeric).take(20).map(char::from).collect();
    format!("LTAI{s}")
}

/// An AccessKey secret: 30 alphanumerics (≈178 bits).
pub fn access_key_secret() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(30).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = resource_id("i-");
        assert!(id.starts_with("i-") && id.len() == 22);
        let a = account_id();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_digit()) && !a.starts_with('0'));
        assert!(access_key_id().starts_with("LTAI"));
        assert_eq!(access_key_secret().len(), 30);
        assert_ne!(request_id(), request_id());
    }
}
