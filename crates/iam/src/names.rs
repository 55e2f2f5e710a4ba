//! Resource ids, ARNs and name rules of RAM entities.

use nimbus_api::ApiError;

pub const USER: &str = "ram.user";
pub const GROUP: &str = "ram.group";
pub const ROLE: &str = "ram.role";
pub const POLICY: &str = "ram.policy";
pub const ATTACHMENT: &str = "ram.attachment";
pub const MEMBERSHIP: &str = "ram.membership";
pub const ACCOUNT: &str = "ram.account";
pub const LOGIN: &str = "ram.login";
pub const MFA: &str = "ram.mfa";

pub fn user_id(account: &str, name: &str) -> String {
    format!("ram-user:{account}:{}", name.to_ascii_lowercase())
}
pub fn group_id(account: &str, name: &str) -> String {
    format!("ram-group:{account}:{}", name.to_ascii_lowercase())
}
pub fn role_id(account: &str, name: &str) -> String {
    format!("ram-role:{account}:{}", name.to_ascii_lowercase())
}
pub fn policy_id(account: &str, name: &str) -> String {
    format!("ram-policy:{account}:{}", name.to_ascii_lowercase())
}
pub fn login_id(account: &str, user: &str) -> String {
    format!("ram-login:{account}:{}", user.to_ascii_lowercase())
}
pub fn mfa_id(account: &str, device: &str) -> String {
    format!("ram-mfa:{account}:{}", device.to_ascii_lowercase())
}
pub fn account_settings_id(account: &str) -> String {
    format!("ram-account:{account}")
}

/// `User`, `Group` or `Role`, as the attach actions name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::Group => "Group",
            PrincipalKind::Role => "Role",
        }
    }
    fn key(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
            PrincipalKind::Role => "role",
        }
    }
}

/// Prefix of every attachment of one principal.
pub fn attachments_of(account: &str, kind: PrincipalKind, name: &str) -> String {
    format!("ram-att:{account}:{}:{}:", kind.key(), name.to_ascii_lowercase())
}
pub fn attachment_id(account: &str, kind: PrincipalKind, name: &str, policy_type: &str, policy: &str) -> String {
    format!(
        "{}{}:{}",
        attachments_of(account, kind, name),
        policy_type.to_ascii_lowercase(),
        policy.to_ascii_lowercase()
    )
}
pub fn all_attachments(account: &str) -> String {
    format!("ram-att:{account}:")
}
/// Prefix of a user's group memberships.
pub fn memberships_of(account: &str, user: &str) -> String {
    format!("ram-mem:{account}:{}:", user.to_ascii_lowercase())
}
pub fn membership_id(account: &str, user: &str, group: &str) -> String {
    format!("{}{}", memberships_of(account, user), group.to_ascii_lowercase())
}
pub fn all_memberships(account: &str) -> String {
    format!("ram-mem:{account}:")
}

/// `acs:ram::<account>:<relative>`: RAM ARNs have no region.
pub fn arn(account: &str, relative: &str) -> String {
    format!("acs:ram::{account}:{relative}")
}

/// Checks a name: `1..=max` characters, each allowed by `ok`.
pub fn check(param: &str, value: &str, max: usize, ok: fn(char) -> bool, allowed: &str) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{param}.Length"),
            format!("{param} must be 1 to {max} characters."),
        ));
    }
    if !value.chars().all(ok) {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{param}.InvalidChars"),
            format!("{param} may contain only {allowed}."),
        ));
    }
    Ok(())
}

pub fn user_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}
pub fn group_or_policy_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}
pub fn role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// Optional free text: at most `max` characters.
pub fn check_text(param: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::new(
            400,
            format!("InvalidParameter.{param}.Length"),
            format!("{param} must be at most {max} characters."),
        )),
        _ => Ok(()),
    }
}

/// A random numeric id of `len` digits (UserId, RoleId), not starting with 0.
pub fn numeric_id(len: usize) -> String {
    use rand::Rng;
    let mut r = rand::rng();
    let mut s = String::with_capacity(len);
    s.push(char::from(b'1' + r.random_range(0..9u8)));
    for _ in 1..len {
        s.push(char::from(b'0' + r.random_range(0..10u8)));
    }
    s
}
