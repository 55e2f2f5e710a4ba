//! System policies: built in, the same in every account, not editable.

/// `(name, description, document)`.
pub const SYSTEM_POLICIES: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "Full access to all Nimbus services and resources.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        "Read-only access to all Nimbus services and resources.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["*:Describe*","*:List*","*:Get*","*:Query*","*:Lookup*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunECSFullAccess",
        "Full access to ECS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunECSReadOnlyAccess",
        "Read-only access to ECS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunVPCFullAccess",
        "Full access to VPC.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"vpc:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunVPCReadOnlyAccess",
        "Read-only access to VPC.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["vpc:Describe*","vpc:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunOSSFullAccess",
        "Full access to OSS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunOSSReadOnlyAccess",
        "Read-only access to OSS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:Get*","oss:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunRAMFullAccess",
        "Full access to RAM (users, groups, roles, policies).",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunRAMReadOnlyAccess",
        "Read-only access to RAM.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ram:Get*","ram:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunSTSAssumeRoleAccess",
        "May call STS AssumeRole.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    ),
    (
        "AliyunKMSFullAccess",
        "Full access to KMS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunActionTrailFullAccess",
        "Full access to ActionTrail.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"actiontrail:*","Resource":"*"}]}"#,
    ),
];

pub fn find(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    SYSTEM_POLICIES.iter().copied().find(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_system_policy_parses() {
        for (name, _, doc) in super::SYSTEM_POLICIES {
            nimbus_policy::Policy::parse(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
