//! Password hashing (Argon2id) and TOTP one-time codes (RFC 6238).
//!
//! TOTP is written here rather than taken from `totp-rs`: RFC 6238 is a dozen lines over the
//! workspace's pinned HMAC-SHA1, checked below against the RFC's own test vectors, and `totp-rs` 6
//! would bring a second HMAC/SHA line into the build.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{KeyInit, Mac};
use rand::RngCore;

/// An Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random 16-byte salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("Argon2id with default parameters and a 16-byte salt")
        .to_string()
}

/// Constant-time verification of `password` against a PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&Argon2::default(), password.as_bytes(), phc).is_ok()
}

/// A fresh 160-bit TOTP seed, Base32 (what authenticator apps take).
pub fn new_totp_seed() -> String {
    let mut seed = [0u8; 20];
    rand::rng().fill_bytes(&mut seed);
    data_encoding::BASE32_NOPAD.encode(&seed)
}

const STEP_SECS: u64 = 30;

/// The 6-digit code of `seed_base32` for time step `counter` (HOTP, RFC 4226, with SHA-1).
fn hotp(seed: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(digits)
}

fn decode_seed(seed_base32: &str) -> Option<Vec<u8>> {
    data_encoding::BASE32_NOPAD.decode(seed_base32.trim_end_matches('=').as_bytes()).ok()
}

/// The code for unix time `now_secs`.
pub fn totp(seed_base32: &str, now_secs: u64) -> Option<String> {
    Some(format!("{:06}", hotp(&decode_seed(seed_base32)?, now_secs / STEP_SECS, 6)))
}

/// The time step (`now / 30`) whose code `code` is, looking one step either side for clock drift;
/// compared in constant time.
pub fn totp_step(seed_base32: &str, code: &str, now_secs: u64) -> Option<u64> {
    let seed = decode_seed(seed_base32)?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_secs / STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expect = format!("{:06}", hotp(&seed, step, 6));
        let same = expect.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B: seed "12345678901234567890", 8 digits.
        let seed = b"12345678901234567890";
        for (t, code) in [(59u64, 94287082u32), (1111111109, 7081804), (1234567890, 89005924), (2000000000, 69279037)] {
            assert_eq!(hotp(seed, t / 30, 8), code, "t={t}");
        }
        let b32 = data_encoding::BASE32_NOPAD.encode(seed);
        assert_eq!(totp(&b32, 59).as_deref(), Some("287082"));
        assert_eq!(totp_step(&b32, "287082", 59 + 30), Some(1), "one step of drift is accepted");
        assert_eq!(totp_step(&b32, "287082", 59 + 90), None, "three steps is not");
        assert_eq!(totp_step(&b32, "28708", 59), None);
    }

    #[test]
    fn passwords() {
        let h = hash_password("Correct-Horse-1");
        assert!(h.starts_with("$argon2id$") && !h.contains("Correct-Horse-1"));
        assert!(verify_password("Correct-Horse-1", &h));
        assert!(!verify_password("correct-horse-1", &h));
        assert!(!verify_password("x", "not a phc string"));
        assert_ne!(h, hash_password("Correct-Horse-1"), "salted");
    }
}
