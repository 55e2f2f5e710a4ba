//! RAM, STS and authorization on every call, through the real `nimbus up`.

mod common;

use common::{ECS, Region, bin, p};
use nimbus::client::{Reply, RpcClient};
use nimbus_store::Store;
use serde_json::Value;
use std::process::Command;

const RAM: &str = "2015-05-01";
const STS: &str = "2015-04-01";

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn err(r: Reply, status: u16, code: &str) -> Value {
    assert_eq!((r.status, r.code()), (status, Some(code)), "{}", r.body);
    r.body
}

fn ram(c: &RpcClient, action: &str, params: &[(&str, &str)]) -> Reply {
    c.call(RAM, action, &params.iter().map(|(k, v)| p(k, v)).collect::<Vec<_>>()).expect("call")
}

/// A RAM user with one AccessKey; returns a client signing as that user.
fn user_with_key(r: &Region, root: &RpcClient, name: &str) -> RpcClient {
    ok(ram(root, "CreateUser", &[("UserName", name)]));
    let k = ok(ram(root, "CreateAccessKey", &[("UserName", name)]));
    r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("secret"),
    )
}

fn policy(root: &RpcClient, name: &str, doc: &str) {
    ok(ram(root, "CreatePolicy", &[("PolicyName", name), ("PolicyDocument", doc)]));
}

fn attach(root: &RpcClient, user: &str, ptype: &str, name: &str) {
    ok(ram(root, "AttachPolicyToUser", &[("UserName", user), ("PolicyType", ptype), ("PolicyName", name)]));
}

fn admin(r: &Region, args: &[&str]) -> String {
    let out = Command::new(bin()).arg("admin").args(args).arg("--data-dir").arg(&r.dir).output().expect("admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn row_counts(r: &Region) -> (i64, i64) {
    let url = format!("sqlite://{}", r.dir.join("state.db").display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(async {
        let s = Store::open(&url).await.expect("open");
        let n = (s.count_rows("resources").await.expect("count"), s.count_rows("access_keys").await.expect("count"));
        s.close().await;
        n
    })
}

#[test]
fn a_user_can_do_exactly_what_its_policies_allow() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    let alice = user_with_key(&r, &root, "alice");

    // No policy: nothing, not even reads.
    let d = err(alice.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");
    assert_eq!(d["AccessDeniedDetail"]["AuthAction"], "ecs:DescribeRegions");
    assert_eq!(d["AccessDeniedDetail"]["NoPermissionType"], "ImplicitDeny");
    err(ram(&alice, "ListUsers", &[]), 403, "NoPermission");

    policy(
        &root,
        "regions-only",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:DescribeRegions","Resource":"*"}]}"#,
    );
    attach(&root, "alice", "Custom", "regions-only");
    ok(alice.call(ECS, "DescribeRegions", &[]).expect("call"));
    err(alice.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call"), 403, "Forbidden.RAM");

    // A group's policy applies to its members.
    ok(ram(&root, "CreateGroup", &[("GroupName", "readers")]));
    ok(ram(
        &root,
        "AttachPolicyToGroup",
        &[("GroupName", "readers"), ("PolicyType", "System"), ("PolicyName", "ReadOnlyAccess")],
    ));
    ok(ram(&root, "AddUserToGroup", &[("UserName", "alice"), ("GroupName", "readers")]));
    ok(alice.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call"));
    let users = ok(ram(&alice, "ListUsers", &[]));
    assert_eq!(users["Users"]["User"][0]["UserName"], "alice");
    err(ram(&alice, "CreateUser", &[("UserName", "mallory")]), 403, "NoPermission");

    // An explicit Deny wins over every Allow.
    policy(
        &root,
        "no-zones",
        r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ecs:DescribeZones","Resource":"*"}]}"#,
    );
    attach(&root, "alice", "Custom", "no-zones");
    let d = err(alice.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call"), 403, "Forbidden.RAM");
    assert_eq!(d["AccessDeniedDetail"]["NoPermissionType"], "ExplicitDeny");

    // Conditions see the request: HTTPS only.
    let bob = user_with_key(&r, &root, "bob");
    policy(
        &root,
        "tls-only",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:SecureTransport":"true"},"IpAddress":{"acs:SourceIp":"127.0.0.0/8"}}}]}"#,
    );
    attach(&root, "bob", "Custom", "tls-only");
    err(bob.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");
    // bob over HTTPS (a second key, on the TLS listener): allowed.
    let keys = ok(ram(&root, "CreateAccessKey", &[("UserName", "bob")]));
    let bob_tls = RpcClient::new(
        &r.https,
        keys["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        keys["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
        Some(&r.ca()),
    )
    .expect("client");
    ok(bob_tls.call(ECS, "DescribeRegions", &[]).expect("call"));

    // Revocation takes effect at once: detach, and disable a key.
    ok(ram(
        &root,
        "DetachPolicyFromUser",
        &[("UserName", "alice"), ("PolicyType", "Custom"), ("PolicyName", "regions-only")],
    ));
    ok(ram(&root, "RemoveUserFromGroup", &[("UserName", "alice"), ("GroupName", "readers")]));
    err(alice.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");
    ok(ram(
        &root,
        "UpdateAccessKey",
        &[
            ("UserName", "bob"),
            ("UserAccessKeyId", keys["AccessKey"]["AccessKeyId"].as_str().expect("id")),
            ("Status", "Inactive"),
        ],
    ));
    err(bob_tls.call(ECS, "DescribeRegions", &[]).expect("call"), 400, "InvalidAccessKeyId.Inactive");
}

#[test]
fn ram_bad_input_gets_the_documented_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    let malformed = |doc: &str| {
        let b = err(
            ram(&root, "CreatePolicy", &[("PolicyName", "p"), ("PolicyDocument", doc)]),
            400,
            "MalformedPolicyDocument",
        );
        b["Message"].as_str().expect("msg").to_string()
    };
    assert!(malformed("{not json").contains("not valid JSON"));
    assert!(malformed(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSortOf":{"a":"b"}}}]}"#).contains("unknown condition operator"));
    assert!(
        malformed(&format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"{}","Resource":"*"}}]}}"#,
            "e:*".repeat(20)
        ))
        .contains("wildcards")
    );
    let big = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"*","Resource":"{}"}}]}}"#,
        "r".repeat(7000)
    );
    assert!(malformed(&big).contains("6144"));
    err(ram(&root, "CreateUser", &[("UserName", "bad name!")]), 400, "InvalidParameter.UserName.InvalidChars");
    err(ram(&root, "CreateUser", &[("UserName", &"a".repeat(65))]), 400, "InvalidParameter.UserName.Length");
    err(ram(&root, "CreateUser", &[]), 400, "MissingUserName");

    ok(ram(&root, "CreateUser", &[("UserName", "carol")]));
    err(ram(&root, "CreateUser", &[("UserName", "CAROL")]), 409, "EntityAlreadyExists.User");
    err(ram(&root, "GetUser", &[("UserName", "dave")]), 404, "EntityNotExist.User");
    for _ in 0..2 {
        ok(ram(&root, "CreateAccessKey", &[("UserName", "carol")]));
    }
    err(ram(&root, "CreateAccessKey", &[("UserName", "carol")]), 409, "LimitExceeded.User.AccessKey");
    err(ram(&root, "DeleteUser", &[("UserName", "carol")]), 409, "DeleteConflict.User.AccessKey");
    let keys = ok(ram(&root, "ListAccessKeys", &[("UserName", "carol")]));
    for k in keys["AccessKeys"]["AccessKey"].as_array().expect("keys") {
        assert!(k.get("AccessKeySecret").is_none(), "secrets are returned only at creation");
        ok(ram(
            &root,
            "DeleteAccessKey",
            &[("UserName", "carol"), ("UserAccessKeyId", k["AccessKeyId"].as_str().expect("id"))],
        ));
    }

    policy(&root, "p1", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#);
    attach(&root, "carol", "Custom", "p1");
    err(
        ram(&root, "AttachPolicyToUser", &[("UserName", "carol"), ("PolicyType", "Custom"), ("PolicyName", "p1")]),
        409,
        "EntityAlreadyExists.User.Policy",
    );
    err(ram(&root, "DeletePolicy", &[("PolicyName", "p1")]), 409, "DeleteConflict.Policy.User");
    err(ram(&root, "DeleteUser", &[("UserName", "carol")]), 409, "DeleteConflict.User.Policy");
    let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}]}"#;
    for _ in 0..4 {
        ok(ram(&root, "CreatePolicyVersion", &[("PolicyName", "p1"), ("PolicyDocument", doc)]));
    }
    err(
        ram(&root, "CreatePolicyVersion", &[("PolicyName", "p1"), ("PolicyDocument", doc)]),
        409,
        "LimitExceeded.Policy.Version",
    );
    let v = ok(ram(
        &root,
        "CreatePolicyVersion",
        &[
            ("PolicyName", "p1"),
            ("PolicyDocument", doc),
            ("SetAsDefault", "True"),
            ("RotateStrategy", "DeleteOldestNonDefaultVersionWhenLimitExceeded"),
        ],
    ));
    assert_eq!(
        (v["PolicyVersion"]["VersionId"].as_str(), v["PolicyVersion"]["IsDefaultVersion"].as_bool()),
        (Some("v6"), Some(true))
    );
    err(
        ram(&root, "DeletePolicyVersion", &[("PolicyName", "p1"), ("VersionId", "v6")]),
        409,
        "DeleteConflict.Policy.Version.Default",
    );
    let g = ok(ram(&root, "GetPolicy", &[("PolicyName", "p1"), ("PolicyType", "Custom")]));
    assert_eq!(g["Policy"]["AttachmentCount"], 1);
    assert_eq!(g["DefaultPolicyVersion"]["PolicyDocument"], doc);
    err(
        ram(&root, "CreateRole", &[("RoleName", "r"), ("AssumeRolePolicyDocument", doc)]),
        400,
        "MalformedPolicyDocument",
    );
}

#[test]
fn every_action_denies_a_user_without_policies_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    let nobody = user_with_key(&r, &root, "nobody");
    let actions: Vec<Value> = serde_json::from_str(&admin(&r, &["actions"])).expect("json");
    assert!(actions.len() > 40, "RAM, STS and ECS actions are listed");
    let before = row_counts(&r);
    // Plausible parameters for every action, naming things that exist so a missing check would bite.
    let params: Vec<(String, String)> = [
        ("RegionId", "local-1"),
        ("UserName", "nobody"),
        ("GroupName", "g"),
        ("RoleName", "r"),
        ("PolicyName", "AdministratorAccess"),
        ("PolicyType", "System"),
        ("PolicyDocument", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
        (
            "AssumeRolePolicyDocument",
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":"*"}}]}"#,
        ),
        ("VersionId", "v1"),
        ("UserAccessKeyId", "LTAIx"),
        ("Status", "Inactive"),
        ("AccountAlias", "taken-over"),
        ("RoleArn", &format!("acs:ram::{}:role/r", r.creds().account_id)),
        ("RoleSessionName", "s1"),
        ("MinimumPasswordLength", "8"),
    ]
    .iter()
    .map(|(k, v)| p(k, v))
    .collect();
    for a in &actions {
        let (version, action, ram_action) =
            (a["Version"].as_str().expect("v"), a["Action"].as_str().expect("a"), a["RamAction"].as_str().expect("r"));
        let reply = nobody.call(version, action, &params).expect("call");
        if ram_action == "sts:GetCallerIdentity" {
            assert_eq!(reply.status, 200, "GetCallerIdentity needs no permission");
            continue;
        }
        assert_eq!(reply.status, 403, "{action}: {}", reply.body);
        let code = reply.code().expect("code");
        // Each product's documented denial: most say Forbidden.RAM, RAM/STS NoPermission, KMS Forbidden.NoPermission.
        assert!(["Forbidden.RAM", "NoPermission", "Forbidden.NoPermission"].contains(&code), "{action}: {code}");
    }
    assert_eq!(row_counts(&r), before, "denied calls wrote nothing");
}

#[test]
fn tenants_never_see_each_other() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let a = r.client_http();
    let b_creds: Value = serde_json::from_str(&admin(&r, &["account", "create", "--name", "tenant-b"])).expect("json");
    let b =
        r.client_with(b_creds["AccessKeyId"].as_str().expect("id"), b_creds["AccessKeySecret"].as_str().expect("s"));
    let a_account = r.creds().account_id;

    ok(ram(&a, "CreateUser", &[("UserName", "alice")]));
    policy(&a, "secret-policy", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#);
    ok(ram(&a, "CreateGroup", &[("GroupName", "team")]));
    let trust_a = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{a_account}:root"]}}}}]}}"#
    );
    ok(ram(&a, "CreateRole", &[("RoleName", "ops"), ("AssumeRolePolicyDocument", &trust_a)]));

    // B cannot read, list or change A's things, and cannot tell whether they exist.
    let exists = ram(&b, "GetUser", &[("UserName", "alice")]);
    let missing = ram(&b, "GetUser", &[("UserName", "zed")]);
    assert_eq!((exists.status, exists.code()), (missing.status, missing.code()));
    err(exists, 404, "EntityNotExist.User");
    err(ram(&b, "DeleteUser", &[("UserName", "alice")]), 404, "EntityNotExist.User");
    err(
        ram(&b, "GetPolicy", &[("PolicyName", "secret-policy"), ("PolicyType", "Custom")]),
        404,
        "EntityNotExist.Policy",
    );
    err(ram(&b, "GetGroup", &[("GroupName", "team")]), 404, "EntityNotExist.Group");
    err(ram(&b, "GetRole", &[("RoleName", "ops")]), 404, "EntityNotExist.Role");
    ok(ram(&b, "CreateUser", &[("UserName", "bee")]));
    err(
        ram(
            &b,
            "AttachPolicyToUser",
            &[("UserName", "bee"), ("PolicyType", "Custom"), ("PolicyName", "secret-policy")],
        ),
        404,
        "EntityNotExist.Policy",
    );
    let listed = ok(ram(&b, "ListUsers", &[]));
    let names: Vec<&str> =
        listed["Users"]["User"].as_array().expect("users").iter().filter_map(|u| u["UserName"].as_str()).collect();
    assert_eq!(names, ["bee"]);
    let pols = ok(ram(&b, "ListPolicies", &[("PolicyType", "Custom")]));
    assert!(pols["Policies"]["Policy"].as_array().expect("list").is_empty());
    // Names are per account: B may have its own alice.
    ok(ram(&b, "CreateUser", &[("UserName", "alice")]));
    // A role of A that does not trust B, and a role of A that does not exist: the same answer.
    let arn = |n: &str| format!("acs:ram::{a_account}:role/{n}");
    let real = b.call(STS, "AssumeRole", &[p("RoleArn", &arn("ops")), p("RoleSessionName", "x1")]).expect("call");
    let fake = b.call(STS, "AssumeRole", &[p("RoleArn", &arn("nope")), p("RoleSessionName", "x1")]).expect("call");
    assert_eq!((real.status, real.code()), (fake.status, fake.code()));
    err(real, 403, "NoPermission");
    // A's own view is untouched.
    let a_users = ok(ram(&a, "ListUsers", &[]));
    assert_eq!(a_users["Users"]["User"].as_array().expect("list").len(), 1);
    // A disabled tenant's keys stop working.
    admin(&r, &["account", "disable", b_creds["AccountId"].as_str().expect("id")]);
    r.advance_clock(11.0); // past the credential cache interval
    err(ram(&b, "ListUsers", &[]), 400, "InvalidAccessKeyId.Inactive");
}

#[test]
fn assumed_role_credentials_work_narrow_and_expire() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &["--sts-min-duration-secs", "2"]);
    let root = r.client_http();
    let acct = r.creds().account_id;
    let dev = user_with_key(&r, &root, "dev");
    attach(&root, "dev", "System", "AliyunSTSAssumeRoleAccess");
    let trust = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{acct}:root"]}}}}]}}"#
    );
    ok(ram(&root, "CreateRole", &[("RoleName", "reader"), ("AssumeRolePolicyDocument", &trust)]));
    ok(ram(
        &root,
        "AttachPolicyToRole",
        &[("RoleName", "reader"), ("PolicyType", "System"), ("PolicyName", "AliyunECSReadOnlyAccess")],
    ));
    let arn = format!("acs:ram::{acct}:role/reader");

    let assume = |extra: &[(&str, &str)]| {
        let mut ps = vec![p("RoleArn", &arn), p("RoleSessionName", "dev-session")];
        ps.extend(extra.iter().map(|(k, v)| p(k, v)));
        dev.call(STS, "AssumeRole", &ps).expect("call")
    };
    let creds = ok(assume(&[]));
    let c = &creds["Credentials"];
    assert!(c["AccessKeyId"].as_str().expect("id").starts_with("STS."));
    assert_eq!(creds["AssumedRoleUser"]["Arn"], format!("acs:ram::{acct}:role/reader/dev-session"));
    let session = r
        .client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(c["SecurityToken"].as_str().expect("t"));
    ok(session.call(ECS, "DescribeRegions", &[]).expect("call"));
    err(ram(&session, "ListUsers", &[]), 403, "NoPermission");
    let who = ok(session.call(STS, "GetCallerIdentity", &[]).expect("call"));
    assert_eq!(
        (who["IdentityType"].as_str(), who["Arn"].as_str()),
        (Some("AssumedRoleUser"), Some(format!("acs:ram::{acct}:assumed-role/reader/dev-session").as_str()))
    );

    // A session policy narrows, never widens.
    let narrow = ok(assume(&[(
        "Policy",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ecs:DescribeZones","ram:*"],"Resource":"*"}]}"#,
    )]));
    let n = &narrow["Credentials"];
    let narrowed = r
        .client_with(n["AccessKeyId"].as_str().expect("id"), n["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(n["SecurityToken"].as_str().expect("t"));
    err(narrowed.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");
    ok(narrowed.call(ECS, "DescribeZones", &[p("RegionId", "local-1")]).expect("call"));
    err(ram(&narrowed, "ListUsers", &[]), 403, "NoPermission");

    // Bad tokens: missing, forged, and expired.
    let bare = r.client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("s"));
    err(bare.call(ECS, "DescribeRegions", &[]).expect("call"), 400, "MissingSecurityToken");
    let mut forged = c["SecurityToken"].as_str().expect("t").to_string();
    let last = forged.pop().expect("char");
    forged.push(if last == '0' { '1' } else { '0' });
    let forged_client = r
        .client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(&forged);
    err(forged_client.call(ECS, "DescribeRegions", &[]).expect("call"), 400, "InvalidSecurityToken.Malformed");
    let short = ok(assume(&[("DurationSeconds", "2")]));
    let s = &short["Credentials"];
    let brief = r
        .client_with(s["AccessKeyId"].as_str().expect("id"), s["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(s["SecurityToken"].as_str().expect("t"));
    ok(brief.call(ECS, "DescribeRegions", &[]).expect("call"));
    r.advance_clock(2.5);
    err(brief.call(ECS, "DescribeRegions", &[]).expect("call"), 400, "InvalidSecurityToken.Expired");

    // Trust and bounds.
    err(assume(&[("DurationSeconds", "99999")]), 400, "InvalidParameter.DurationSeconds");
    err(
        dev.call(STS, "AssumeRole", &[p("RoleArn", &format!("acs:ram::{acct}:role/none")), p("RoleSessionName", "s1")])
            .expect("call"),
        404,
        "EntityNotExist.Role",
    );
    let other = user_with_key(&r, &root, "other");
    err(
        other.call(STS, "AssumeRole", &[p("RoleArn", &arn), p("RoleSessionName", "s1")]).expect("call"),
        403,
        "NoPermission",
    );
    // A trust condition on ExternalId (the confused-deputy guard).
    let guarded = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{acct}:root"]}},"Condition":{{"StringEquals":{{"sts:ExternalId":"abc-123"}}}}}}]}}"#
    );
    ok(ram(&root, "CreateRole", &[("RoleName", "guarded"), ("AssumeRolePolicyDocument", &guarded)]));
    let garn = format!("acs:ram::{acct}:role/guarded");
    err(
        dev.call(STS, "AssumeRole", &[p("RoleArn", &garn), p("RoleSessionName", "s1")]).expect("call"),
        403,
        "NoPermission",
    );
    err(
        dev.call(STS, "AssumeRole", &[p("RoleArn", &garn), p("RoleSessionName", "s1"), p("ExternalId", "wrong")])
            .expect("call"),
        403,
        "NoPermission",
    );
    ok(dev
        .call(STS, "AssumeRole", &[p("RoleArn", &garn), p("RoleSessionName", "s1"), p("ExternalId", "abc-123")])
        .expect("call"));

    // Deleting the role ends what its sessions may do at once.
    ok(ram(
        &root,
        "DetachPolicyFromRole",
        &[("RoleName", "reader"), ("PolicyType", "System"), ("PolicyName", "AliyunECSReadOnlyAccess")],
    ));
    ok(ram(&root, "DeleteRole", &[("RoleName", "reader")]));
    // A session of a deleted role is refused at authentication: it belongs to that role, not its name.
    err(session.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "InvalidSecurityToken.RoleNotExist");

    // No secret of any kind in the logs or, in plaintext, in the data directory.
    let secrets =
        [c["AccessKeySecret"].as_str().expect("s").to_string(), c["SecurityToken"].as_str().expect("t").to_string()];
    let log = r.stderr();
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "secret in the logs");
    }
    for entry in std::fs::read_dir(&r.dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            for s in &secrets {
                assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "plaintext secret in {}", path.display());
            }
        }
    }
}

fn sign_in(r: &Region, account: &str, user: &str, password: &str, mfa: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut form = vec![("AccountId", account), ("UserName", user), ("Password", password)];
    if let Some(code) = mfa {
        form.push(("MFACode", code));
    }
    let mut resp = agent.post(format!("{}/console/signin", r.http)).send_form(form).expect("sign-in");
    let status = resp.status().as_u16();
    let body = serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json");
    Reply { status, body }
}

fn session_client(r: &Region, body: &Value) -> RpcClient {
    let c = &body["Credentials"];
    r.client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(c["SecurityToken"].as_str().expect("t"))
}

#[test]
fn console_sign_in_enforces_password_policy_lockout_and_mfa() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    let acct = r.creds().account_id;
    ok(ram(
        &root,
        "SetPasswordPolicy",
        &[
            ("MinimumPasswordLength", "10"),
            ("RequireSymbols", "true"),
            ("MaxLoginAttemps", "3"),
            ("PasswordReusePrevention", "2"),
        ],
    ));

    // Password policy when a password is set.
    ok(ram(&root, "CreateUser", &[("UserName", "eve")]));
    let weak = err(
        ram(&root, "CreateLoginProfile", &[("UserName", "eve"), ("Password", "Short1!")]),
        400,
        "InvalidParameter.Password",
    );
    assert!(weak["Message"].as_str().expect("m").contains("10 to 32"));
    err(
        ram(&root, "CreateLoginProfile", &[("UserName", "eve"), ("Password", "NoSymbolsHere1")]),
        400,
        "InvalidParameter.Password",
    );
    ok(ram(&root, "CreateLoginProfile", &[("UserName", "eve"), ("Password", "Str0ng!Pass#1")]));
    err(
        ram(&root, "UpdateLoginProfile", &[("UserName", "eve"), ("Password", "Str0ng!Pass#1")]),
        400,
        "InvalidParameter.Password",
    );
    err(ram(&root, "DeleteUser", &[("UserName", "eve")]), 409, "DeleteConflict.User.LoginProfile");

    // Wrong account, user or password all read the same; the limit locks the user out.
    err(sign_in(&r, "1234567890123456", "eve", "Str0ng!Pass#1", None), 403, "Login.Failed");
    err(sign_in(&r, &acct, "nobody", "Str0ng!Pass#1", None), 403, "Login.Failed");
    err(sign_in(&r, &acct, "eve", "wrong-1", None), 403, "Login.Failed");
    err(sign_in(&r, &acct, "eve", "wrong-2", None), 403, "Login.Failed");
    err(sign_in(&r, &acct, "eve", "wrong-3", None), 403, "Login.Locked");
    err(sign_in(&r, &acct, "eve", "Str0ng!Pass#1", None), 403, "Login.Locked");

    // A good sign-in yields a working user session that is still bound by the user's policies.
    ok(ram(&root, "CreateUser", &[("UserName", "frank")]));
    ok(ram(&root, "CreateLoginProfile", &[("UserName", "frank"), ("Password", "Fr4nk!Secret")]));
    let s = ok(sign_in(&r, &acct, "frank", "Fr4nk!Secret", None));
    assert_eq!(s["MFAPresent"], false);
    let frank = session_client(&r, &s);
    let who = ok(frank.call(STS, "GetCallerIdentity", &[]).expect("call"));
    assert_eq!(
        (who["IdentityType"].as_str(), who["Arn"].as_str()),
        (Some("RAMUser"), Some(format!("acs:ram::{acct}:user/frank").as_str()))
    );
    err(frank.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");

    // Bind a virtual MFA device with two consecutive real TOTP codes.
    let dev = ok(ram(&root, "CreateVirtualMFADevice", &[("VirtualMFADeviceName", "frank-phone")]));
    let seed = dev["VirtualMFADevice"]["Base32StringSeed"].as_str().expect("seed").to_string();
    let serial = dev["VirtualMFADevice"]["SerialNumber"].as_str().expect("serial").to_string();
    let code = |t: u64| nimbus_iam::secrets::totp(&seed, t).expect("code");
    // Keep clear of a 30-second step boundary so this test and the region agree on the step:
    // near one, the region's clock is moved past it (codes are computed on the region's time).
    if (chrono::Utc::now().timestamp() + r.clock_offset_secs()) % 30 >= 27 {
        r.advance_clock(5.0);
    }
    let now = (chrono::Utc::now().timestamp() + r.clock_offset_secs()) as u64;
    err(
        ram(
            &root,
            "BindMFADevice",
            &[
                ("SerialNumber", &serial),
                ("UserName", "frank"),
                ("AuthenticationCode1", &code(now)),
                ("AuthenticationCode2", &code(now)),
            ],
        ),
        400,
        "InvalidParameter.AuthenticationCode",
    );
    // As a person binds: the code shown a moment ago, then the one shown now.
    ok(ram(
        &root,
        "BindMFADevice",
        &[
            ("SerialNumber", &serial),
            ("UserName", "frank"),
            ("AuthenticationCode1", &code(now - 30)),
            ("AuthenticationCode2", &code(now)),
        ],
    ));
    assert_eq!(
        ok(ram(&root, "GetUserMFAInfo", &[("UserName", "frank")]))["MFADevice"]["SerialNumber"],
        serial.as_str()
    );
    err(
        ram(&root, "DeleteVirtualMFADevice", &[("SerialNumber", &serial)]),
        409,
        "DeleteConflict.VirtualMFADevice.User",
    );

    // Sign-in now needs a code; each code works once (the bind used this step's).
    err(sign_in(&r, &acct, "frank", "Fr4nk!Secret", None), 400, "MissingMFACode");
    err(sign_in(&r, &acct, "frank", "Fr4nk!Secret", Some("000000")), 403, "Login.InvalidMFACode");
    err(sign_in(&r, &acct, "frank", "Fr4nk!Secret", Some(&code(now))), 403, "Login.InvalidMFACode");
    let fresh = code(now + 30); // the next step, inside the one-step drift window
    let mfa = ok(sign_in(&r, &acct, "frank", "Fr4nk!Secret", Some(&fresh)));
    assert_eq!(mfa["MFAPresent"], true);
    err(sign_in(&r, &acct, "frank", "Fr4nk!Secret", Some(&fresh)), 403, "Login.InvalidMFACode");

    // A policy that demands MFA: the MFA session may, a long-term key may not.
    policy(
        &root,
        "mfa-only",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"acs:MFAPresent":"true"}}}]}"#,
    );
    attach(&root, "frank", "Custom", "mfa-only");
    ok(session_client(&r, &mfa).call(ECS, "DescribeRegions", &[]).expect("call"));
    err(frank.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");
    let k = ok(ram(&root, "CreateAccessKey", &[("UserName", "frank")]));
    let frank_key = r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
    );
    err(frank_key.call(ECS, "DescribeRegions", &[]).expect("call"), 403, "Forbidden.RAM");

    ok(ram(&root, "UnbindMFADevice", &[("UserName", "frank")]));
    ok(ram(&root, "DeleteVirtualMFADevice", &[("SerialNumber", &serial)]));

    // Sign-ins are audited in the account they name, failures included; the password never is.
    let url = format!("sqlite://{}", r.dir.join("state.db").display());
    let codes: Vec<String> =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(async {
            let s = Store::open(&url).await.expect("open");
            let filter = [(nimbus_store::trail::TrailKey::EventName, "ConsoleSignin".to_string())];
            let rows = s.lookup_trail(&acct, 0, i64::MAX, &filter, None, true, 100).await.expect("lookup");
            rows.into_iter().map(|r| r.error_code).collect()
        });
    assert!(codes.iter().any(|c| c == "Login.Locked") && codes.iter().any(|c| c.is_empty()), "{codes:?}");
    let log = r.stderr();
    for secret in ["Fr4nk!Secret", "Str0ng!Pass#1", seed.as_str()] {
        assert!(!log.contains(secret), "secret in the logs");
        for entry in std::fs::read_dir(&r.dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read");
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "plaintext secret in {}",
                    path.display()
                );
            }
        }
    }
}

/// A retried CreateAccessKey with the same ClientToken gets the same key and secret back, and the
/// reply kept for that replay is sealed: the secret is nowhere in the data directory.
#[test]
fn client_token_replays_of_secrets_are_sealed_at_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    ok(ram(&root, "CreateUser", &[("UserName", "retrier")]));
    let first = ok(ram(&root, "CreateAccessKey", &[("UserName", "retrier"), ("ClientToken", "tok-1")]));
    let again = ok(ram(&root, "CreateAccessKey", &[("UserName", "retrier"), ("ClientToken", "tok-1")]));
    assert_eq!(first["AccessKey"], again["AccessKey"], "the retry gets the first answer");
    let secret = first["AccessKey"]["AccessKeySecret"].as_str().expect("secret").to_string();
    let keys = ok(ram(&root, "ListAccessKeys", &[("UserName", "retrier")]));
    assert_eq!(keys["AccessKeys"]["AccessKey"].as_array().expect("keys").len(), 1, "created once");
    r.stop();
    for entry in std::fs::read_dir(tmp.path().join("d")).expect("dir").flatten() {
        let path = entry.path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "root-credentials") {
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "plaintext secret in {}",
                path.display()
            );
        }
    }
}

/// Issue 13, finding 6: a ClientToken is the calling principal's own. A RAM user allowed only
/// `ecs:CreateKeyPair`, replaying the root's token with the root's parameters, does not get the
/// root's PrivateKeyBody: its call runs on its own (and fails, the name being taken). The root's
/// own retry still gets its first answer.
#[test]
fn a_client_token_replayed_by_another_principal_never_returns_the_first_callers_secret() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let root = r.client_http();
    let mallory = user_with_key(&r, &root, "mallory");
    policy(
        &root,
        "keypairs-only",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:CreateKeyPair","Resource":"*"}]}"#,
    );
    attach(&root, "mallory", "Custom", "keypairs-only");
    let params = [p("RegionId", "local-1"), p("KeyPairName", "deploy"), p("ClientToken", "tok-shared")];
    let first = ok(root.call(ECS, "CreateKeyPair", &params).expect("call"));
    let private = first["PrivateKeyBody"].as_str().expect("private key").to_string();
    assert!(private.contains("PRIVATE KEY"), "{first}");

    let replayed = mallory.call(ECS, "CreateKeyPair", &params).expect("call");
    assert_ne!(
        replayed.body["PrivateKeyBody"].as_str(),
        Some(private.as_str()),
        "another principal got the first caller's private key"
    );
    assert_ne!(replayed.status, 200, "the user's own call runs and finds the name taken: {}", replayed.body);
    let again = ok(root.call(ECS, "CreateKeyPair", &params).expect("call"));
    assert_eq!(again["PrivateKeyBody"].as_str(), Some(private.as_str()), "the first caller's retry is a replay");
    // The user's own token works for the user.
    let own = [p("RegionId", "local-1"), p("KeyPairName", "mallorys"), p("ClientToken", "tok-shared")];
    let mine = ok(mallory.call(ECS, "CreateKeyPair", &own).expect("call"));
    let mine_again = ok(mallory.call(ECS, "CreateKeyPair", &own).expect("call"));
    assert_eq!(mine["PrivateKeyBody"], mine_again["PrivateKeyBody"]);
    assert_ne!(mine["PrivateKeyBody"].as_str(), Some(private.as_str()));
    r.stop();
}
