//! "Authorize exactly what you execute", through the real `nimbus up`.
//!
//! The matrix test is generated from the services' own action tables (`nimbus admin actions`
//! lists every action with the parameters that name resources): for every action and every
//! resource parameter, a RAM user allowed `*` but denied that one canonical resource is refused
//! under every identifier form the API accepts, and the tenant's state does not change. A new
//! service or kind without a fixture here fails the test until it gets one.

mod common;

use common::{ECS, Region, bin, p};
use nimbus::client::{Reply, RpcClient};
use nimbus_store::Store;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::process::Command;

const RAM: &str = "2015-05-01";
const STS: &str = "2015-04-01";
const KMS: &str = "2016-01-20";

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn denied(r: &Reply) -> bool {
    r.status == 403 && matches!(r.code(), Some("Forbidden.RAM" | "NoPermission" | "Forbidden.NoPermission"))
}

fn call(c: &RpcClient, version: &str, action: &str, params: &[(&str, &str)]) -> Reply {
    c.call(version, action, &params.iter().map(|(k, v)| p(k, v)).collect::<Vec<_>>()).expect("call")
}

fn admin(r: &Region, args: &[&str]) -> String {
    let out = Command::new(bin()).arg("admin").args(args).arg("--data-dir").arg(&r.dir).output().expect("admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh tenant account (so the region's own first-start work never shows in its state).
fn tenant(r: &Region, name: &str) -> (String, RpcClient) {
    let c: Value = serde_json::from_str(&admin(r, &["account", "create", "--name", name])).expect("json");
    let client = r.client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("secret"));
    (c["AccountId"].as_str().expect("account").to_string(), client)
}

/// A RAM user of `root`'s account allowed everything except `deny` (any action on those ARNs).
fn narrow_user(r: &Region, root: &RpcClient, name: &str, deny: &[String]) -> RpcClient {
    let doc = serde_json::json!({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": deny},
    ]})
    .to_string();
    ok(call(root, RAM, "CreatePolicy", &[("PolicyName", &format!("{name}-pol")), ("PolicyDocument", &doc)]));
    ok(call(root, RAM, "CreateUser", &[("UserName", name)]));
    ok(call(
        root,
        RAM,
        "AttachPolicyToUser",
        &[("UserName", name), ("PolicyType", "Custom"), ("PolicyName", &format!("{name}-pol"))],
    ));
    let k = ok(call(root, RAM, "CreateAccessKey", &[("UserName", name)]));
    r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("secret"),
    )
}

/// A digest of every row the account owns (resources, AccessKeys, jobs): equal before and after
/// means nothing was written.
fn state_of(r: &Region, account: &str) -> String {
    let url = format!("sqlite://{}", r.dir.join("state.db").display());
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(async {
        let s = Store::open(&url).await.expect("open");
        let mut h = Sha256::new();
        for table in ["resources", "access_keys", "jobs"] {
            let mut after: Option<String> = None;
            loop {
                let page = s.export_page(table, after.as_deref(), 500).await.expect("page");
                for row in &page.rows {
                    if row.get("account_id").and_then(Value::as_str) == Some(account) {
                        h.update(serde_json::to_vec(row).expect("json"));
                    }
                }
                match page.last_key {
                    Some(k) if page.rows.len() == 500 => after = Some(k),
                    _ => break,
                }
            }
        }
        s.close().await;
        hex::encode(h.finalize())
    })
}

/// For each resource kind (as `Service::product()/kind`): the ARN to deny (written in a case the
/// request does not use, where names are case-insensitive) and the identifier forms of that
/// same resource the API accepts.
struct Fixture {
    deny: String,
    forms: Vec<String>,
}

fn fixtures(account: &str, key_id: &str) -> BTreeMap<&'static str, Fixture> {
    let ecs = |rel: &str| format!("acs:ecs:local-1:{account}:{rel}");
    let vpc = |rel: &str| format!("acs:vpc:local-1:{account}:{rel}");
    let ram = |rel: &str| format!("acs:ram::{account}:{rel}");
    let f = |deny: String, forms: &[&str]| Fixture { deny, forms: forms.iter().map(|s| s.to_string()).collect() };
    let mut m = BTreeMap::new();
    m.insert("Ram/user", f(ram("user/Victim"), &["victim", "VICTIM", "vIcTiM"]));
    m.insert("Ram/group", f(ram("group/Victim-Group"), &["victim-group", "VICTIM-GROUP"]));
    m.insert("Ram/role", f(ram("role/Victim-Role"), &["victim-role", "VICTIM-ROLE"]));
    m.insert("Ram/policy", f(ram("policy/Victim-Pol"), &["victim-pol", "VICTIM-POL"]));
    let serial = ram("mfa/victim-mfa");
    m.insert(
        "Ram/mfa",
        f(ram("mfa/Victim-MFA"), &["victim-mfa", &serial, &serial.to_uppercase().replace("ACS:RAM", "acs:ram")]),
    );
    m.insert(
        "Sts/role",
        f(ram("role/victim-role"), &[&ram("role/victim-role"), &ram("role/VICTIM-ROLE"), &ram("role/Victim-Role")]),
    );
    let key_arn = format!("acs:kms:local-1:{account}:key/{key_id}");
    m.insert("Kms/key", f(key_arn.clone(), &[key_id, &key_arn, "alias/victim"]));
    m.insert("Kms/alias", f(key_arn, &["alias/victim"]));
    m.insert("Ecs/instance", f(ecs("instance/i-victim"), &["i-victim"]));
    m.insert("Ecs/securitygroup", f(ecs("securitygroup/sg-victim"), &["sg-victim"]));
    m.insert("Ecs/image", f(ecs("image/m-victim"), &["m-victim"]));
    m.insert("Ecs/keypair", f(ecs("keypair/victim-kp"), &["victim-kp"]));
    m.insert("Ecs/role", f(ram("role/Victim-Role"), &["victim-role", "VICTIM-ROLE"]));
    m.insert("Vpc/vpc", f(vpc("vpc/vpc-victim"), &["vpc-victim"]));
    m.insert("Vpc/vswitch", f(vpc("vswitch/vsw-victim"), &["vsw-victim"]));
    m.insert("Vpc/eip", f(vpc("eip/eip-victim"), &["eip-victim"]));
    m.insert("Vpc/routetable", f(vpc("routetable/vtb-victim"), &["vtb-victim"]));
    m.insert("Vpc/instance", f(ecs("instance/i-victim"), &["i-victim"]));
    m.insert(
        "Actiontrail/trail",
        f(format!("acs:actiontrail:local-1:{account}:trail/victim-trail"), &["victim-trail"]),
    );
    m
}

/// The parameter pairs that carry `id` in `form`, beside an innocent decoy where the form is a list.
fn encode(param: &str, form: &str, id: &str) -> Vec<(String, String)> {
    let decoy = "decoy-0";
    match form {
        "One" => vec![(param.into(), id.into())],
        "JsonList" => vec![(param.into(), serde_json::json!([decoy, id]).to_string())],
        "Repeat" => vec![(format!("{param}.1"), decoy.into()), (format!("{param}.2"), id.into())],
        "Comma" => vec![(param.into(), format!("{decoy},{id}"))],
        other => panic!("a resource parameter form this test does not know: {other}"),
    }
}

#[test]
fn every_action_refuses_a_denied_resource_under_every_identifier_form() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "matrix");
    let key = ok(call(&root, KMS, "CreateKey", &[("RegionId", "local-1")]));
    let key_id = key["KeyMetadata"]["KeyId"].as_str().expect("key id").to_string();
    ok(call(&root, KMS, "CreateAlias", &[("RegionId", "local-1"), ("AliasName", "alias/victim"), ("KeyId", &key_id)]));
    let fx = fixtures(&account, &key_id);
    let deny: Vec<String> = fx.values().map(|f| f.deny.clone()).collect();
    let mallory = narrow_user(&r, &root, "mallory", &deny);
    // The Allow is real: an action on nothing denied goes through.
    ok(call(&mallory, ECS, "DescribeRegions", &[]));

    let actions: Vec<Value> = serde_json::from_str(&admin(&r, &["actions"])).expect("actions json");
    let before = state_of(&r, &account);
    let (mut tried, mut failures) = (0, vec![]);
    for a in &actions {
        let (product, version, action) =
            (a["Product"].as_str().expect("p"), a["Version"].as_str().expect("v"), a["Action"].as_str().expect("a"));
        for res in a["Resources"].as_array().expect("resources") {
            let (param, kind, form) =
                (res["Param"].as_str().expect("p"), res["Kind"].as_str().expect("k"), res["Form"].as_str().expect("f"));
            let Some(f) = fx.get(format!("{product}/{kind}").as_str()) else {
                panic!("no fixture for {product}/{kind} ({action} {param}): add one to this test");
            };
            for id in &f.forms {
                let mut params = vec![p("RegionId", "local-1")];
                params.extend(encode(param, form, id));
                let reply = root_call(&mallory, version, action, &params);
                tried += 1;
                if !denied(&reply) {
                    failures.push(format!("{action} {param}={id} ({form}): {} {}", reply.status, reply.body));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {tried} calls were not refused:\n{}", failures.len(), failures.join("\n"));
    assert!(tried > 150, "the matrix covers the action tables ({tried} calls)");
    assert_eq!(state_of(&r, &account), before, "a refused call wrote something");
}

fn root_call(c: &RpcClient, version: &str, action: &str, params: &[(String, String)]) -> Reply {
    c.call(version, action, params).expect("call")
}

/// Deny on `user/admin`; the case variant `Admin` used to get an AccessKey; roles and policies
/// likewise.
#[test]
fn ram_names_are_authorized_as_the_service_compares_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "case");
    ok(call(&root, RAM, "CreateUser", &[("UserName", "admin")]));
    ok(call(
        &root,
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "narrow-pol"),
            (
                "PolicyDocument",
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:DescribeRegions","Resource":"*"}]}"#,
            ),
        ],
    ));
    let trust = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{account}:root"]}}}}]}}"#
    );
    ok(call(&root, RAM, "CreateRole", &[("RoleName", "ops"), ("AssumeRolePolicyDocument", &trust)]));
    let arn = |rel: &str| format!("acs:ram::{account}:{rel}");
    let eve = narrow_user(&r, &root, "eve", &[arn("user/admin"), arn("role/ops"), arn("policy/narrow-pol")]);
    for (action, params) in [
        ("CreateAccessKey", vec![("UserName", "Admin")]),
        ("UpdateRole", vec![("RoleName", "OPS"), ("NewAssumeRolePolicyDocument", &trust)]),
        (
            "CreatePolicyVersion",
            vec![
                ("PolicyName", "Narrow-Pol"),
                ("PolicyDocument", r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
            ],
        ),
    ] {
        let reply = call(&eve, RAM, action, &params);
        assert!(denied(&reply), "{action}: {} {}", reply.status, reply.body);
    }
    let reply = call(&eve, STS, "AssumeRole", &[("RoleArn", &arn("role/OPS")), ("RoleSessionName", "s1")]);
    assert!(denied(&reply), "AssumeRole with a case-variant ARN: {}", reply.body);
    // The Allow written in display case still allows: RAM ARNs match case-insensitively.
    let k = ok(call(&root, RAM, "ListAccessKeys", &[("UserName", "ADMIN")]));
    assert_eq!(k["AccessKeys"]["AccessKey"].as_array().map(Vec::len), Some(0), "no key was made for admin");
}

/// Login-profile and MFA actions are the user's: a Deny on the user stops a console takeover,
/// and a policy scoped to a user's own ARN allows the user to manage its own sign-in.
#[test]
fn login_profile_and_mfa_actions_are_authorized_on_the_user() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "console");
    ok(call(&root, RAM, "CreateUser", &[("UserName", "admin")]));
    ok(call(&root, RAM, "CreateLoginProfile", &[("UserName", "admin"), ("Password", "Orig1nal-Passw0rd!")]));
    let eve = narrow_user(&r, &root, "eve", &[format!("acs:ram::{account}:user/admin")]);
    for (action, params) in [
        ("UnbindMFADevice", vec![("UserName", "admin")]),
        ("UpdateLoginProfile", vec![("UserName", "admin"), ("Password", "Tak3n-Over-Passw0rd!")]),
        ("DeleteLoginProfile", vec![("UserName", "ADMIN")]),
        ("GetLoginProfile", vec![("UserName", "admin")]),
        (
            "BindMFADevice",
            vec![
                ("UserName", "admin"),
                ("SerialNumber", "x"),
                ("AuthenticationCode1", "1"),
                ("AuthenticationCode2", "2"),
            ],
        ),
    ] {
        let reply = call(&eve, RAM, action, &params);
        assert!(denied(&reply), "{action}: {} {}", reply.status, reply.body);
    }

    // Self-service: bob may manage only his own login profile.
    ok(call(&root, RAM, "CreateUser", &[("UserName", "bob")]));
    let doc = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":["ram:*LoginProfile","ram:*MFA*"],"Resource":"acs:ram::{account}:user/Bob"}}]}}"#
    );
    ok(call(&root, RAM, "CreatePolicy", &[("PolicyName", "self"), ("PolicyDocument", &doc)]));
    ok(call(
        &root,
        RAM,
        "AttachPolicyToUser",
        &[("UserName", "bob"), ("PolicyType", "Custom"), ("PolicyName", "self")],
    ));
    let k = ok(call(&root, RAM, "CreateAccessKey", &[("UserName", "bob")]));
    let bob = r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
    );
    ok(call(&bob, RAM, "CreateLoginProfile", &[("UserName", "bob"), ("Password", "B0b-Passw0rd-Ok!")]));
    ok(call(&bob, RAM, "GetUserMFAInfo", &[("UserName", "bob")]).with_status_ok_or(404));
    let reply = call(&bob, RAM, "UpdateLoginProfile", &[("UserName", "admin"), ("Password", "Tak3n-Over-Passw0rd!")]);
    assert!(denied(&reply), "bob on admin: {}", reply.body);
}

trait OkOr {
    fn with_status_ok_or(self, other: u16) -> Reply;
}
impl OkOr for Reply {
    /// A reply that passed authorization: 200, or `other` (e.g. 404 for a missing device).
    fn with_status_ok_or(mut self, other: u16) -> Reply {
        assert!(!denied(&self), "refused: {}", self.body);
        if self.status == other {
            self.status = 200;
        }
        self
    }
}

/// A Deny on `key/<id>` also holds when the key is reached through its alias or its ARN.
#[test]
fn kms_aliases_are_authorized_as_their_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "kms");
    let key = ok(call(&root, KMS, "CreateKey", &[("RegionId", "local-1")]));
    let id = key["KeyMetadata"]["KeyId"].as_str().expect("id").to_string();
    ok(call(&root, KMS, "CreateAlias", &[("RegionId", "local-1"), ("AliasName", "alias/guarded"), ("KeyId", &id)]));
    let eve = narrow_user(&r, &root, "eve", &[format!("acs:kms:local-1:{account}:key/{id}")]);
    for (action, extra) in [
        ("Encrypt", vec![("Plaintext", "aGk=")]),
        ("DisableKey", vec![]),
        ("ScheduleKeyDeletion", vec![("PendingWindowInDays", "7")]),
    ] {
        let mut params = vec![("RegionId", "local-1"), ("KeyId", "alias/guarded")];
        params.extend(extra);
        let reply = call(&eve, KMS, action, &params);
        assert!(denied(&reply), "{action} through the alias: {}", reply.body);
        // The refusal names what eve sent, not the key behind it.
        let message = reply.body["Message"].as_str().unwrap_or_default();
        assert!(!message.contains(&id), "{action}: the message reveals the key: {message}");
    }
    let d = ok(call(&root, KMS, "DescribeKey", &[("RegionId", "local-1"), ("KeyId", &id)]));
    assert_eq!(d["KeyMetadata"]["KeyState"], "Enabled", "the key was not touched");
}

/// Plural and batch forms name every id: a Deny on one instance or key pair holds inside a list.
#[test]
fn plural_ecs_actions_are_authorized_on_every_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "plural");
    ok(call(&root, ECS, "CreateKeyPair", &[("RegionId", "local-1"), ("KeyPairName", "prod")]));
    let ecs = |rel: &str| format!("acs:ecs:local-1:{account}:{rel}");
    let eve = narrow_user(&r, &root, "eve", &[ecs("instance/i-prod"), ecs("keypair/prod")]);
    for (action, params) in [
        ("DeleteInstances", vec![("InstanceId.1", "i-other"), ("InstanceId.2", "i-prod"), ("Force", "true")]),
        ("StartInstances", vec![("InstanceId.1", "i-prod")]),
        ("StopInstances", vec![("InstanceId.1", "i-other"), ("InstanceId.2", "i-prod")]),
        ("DescribeInstances", vec![("InstanceIds", r#"["i-other","i-prod"]"#)]),
        ("DeleteKeyPairs", vec![("KeyPairNames", r#"["other","prod"]"#)]),
    ] {
        let mut ps = vec![("RegionId", "local-1")];
        ps.extend(params);
        let reply = call(&eve, ECS, action, &ps);
        assert!(denied(&reply), "{action}: {}", reply.body);
    }
    // A gap in a `.N` list is refused, never skipped (the old handler stopped at the gap).
    let reply = call(
        &root,
        ECS,
        "DeleteInstances",
        &[("RegionId", "local-1"), ("InstanceId.1", "i-a"), ("InstanceId.3", "i-prod")],
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    let k = ok(call(&root, ECS, "DescribeKeyPairs", &[("RegionId", "local-1")]));
    assert_eq!(k["TotalCount"], 1, "the key pair is still there");
}

/// Handing a role to an instance needs `ram:PassRole` on that role, not just `ecs:*`.
#[test]
fn giving_an_instance_a_role_requires_pass_role_on_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "passrole");
    let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#;
    ok(call(&root, RAM, "CreatePolicy", &[("PolicyName", "ecs-all"), ("PolicyDocument", doc)]));
    ok(call(&root, RAM, "CreateUser", &[("UserName", "dev")]));
    ok(call(
        &root,
        RAM,
        "AttachPolicyToUser",
        &[("UserName", "dev"), ("PolicyType", "Custom"), ("PolicyName", "ecs-all")],
    ));
    let k = ok(call(&root, RAM, "CreateAccessKey", &[("UserName", "dev")]));
    let dev = r.client_with(
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
    );
    let attach = [("RegionId", "local-1"), ("InstanceIds", r#"["i-x"]"#), ("RamRoleName", "Admin-Role")];
    let run = [
        ("RegionId", "local-1"),
        ("ImageId", "m-x"),
        ("InstanceType", "ecs.t6-c1m0.small"),
        ("RamRoleName", "admin-role"),
    ];
    for (action, params) in [("AttachInstanceRamRole", &attach[..]), ("RunInstances", &run[..])] {
        let reply = call(&dev, ECS, action, params);
        assert!(denied(&reply), "{action} without ram:PassRole: {}", reply.body);
        assert_eq!(reply.body["AccessDeniedDetail"]["AuthAction"], "ram:PassRole");
    }
    // With PassRole on exactly that role, authorization lets the call through to the handler.
    let pass = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"ram:PassRole","Resource":"acs:ram::{account}:role/admin-role"}}]}}"#
    );
    ok(call(&root, RAM, "CreatePolicy", &[("PolicyName", "pass"), ("PolicyDocument", &pass)]));
    ok(call(
        &root,
        RAM,
        "AttachPolicyToUser",
        &[("UserName", "dev"), ("PolicyType", "Custom"), ("PolicyName", "pass")],
    ));
    let reply = call(&dev, ECS, "AttachInstanceRamRole", &attach);
    assert!(!denied(&reply), "allowed PassRole: {}", reply.body);
}

/// A role session belongs to the role it was issued for: deleting the role and making a new one
/// of the same name does not revive it.
#[test]
fn a_session_of_a_deleted_role_stays_dead_when_the_name_is_reused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "reuse");
    let trust = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{account}:root"]}}}}]}}"#
    );
    let make_role = || {
        ok(call(&root, RAM, "CreateRole", &[("RoleName", "worker"), ("AssumeRolePolicyDocument", &trust)]));
        ok(call(
            &root,
            RAM,
            "AttachPolicyToRole",
            &[("RoleName", "worker"), ("PolicyType", "System"), ("PolicyName", "AliyunECSReadOnlyAccess")],
        ));
    };
    make_role();
    let s = ok(call(
        &root,
        STS,
        "AssumeRole",
        &[("RoleArn", &format!("acs:ram::{account}:role/worker")), ("RoleSessionName", "old")],
    ));
    let c = &s["Credentials"];
    let session = r
        .client_with(c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("s"))
        .with_security_token(c["SecurityToken"].as_str().expect("token"));
    ok(call(&session, ECS, "DescribeRegions", &[]));
    ok(call(
        &root,
        RAM,
        "DetachPolicyFromRole",
        &[("RoleName", "worker"), ("PolicyType", "System"), ("PolicyName", "AliyunECSReadOnlyAccess")],
    ));
    ok(call(&root, RAM, "DeleteRole", &[("RoleName", "worker")]));
    make_role();
    let reply = call(&session, ECS, "DescribeRegions", &[]);
    assert_eq!((reply.status, reply.code()), (403, Some("InvalidSecurityToken.RoleNotExist")), "{}", reply.body);
}

/// Without `UserName`, RAM's AccessKey actions act on the calling user — resolved and authorized
/// as the user's own ARN — so a policy scoped to that ARN is enough, and one scoped elsewhere is not.
#[test]
fn access_key_actions_without_a_user_name_act_on_the_caller() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let (account, root) = tenant(&r, "keys");
    let user_with_policy = |name: &str, resource: &str| {
        let doc = format!(
            r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"ram:*AccessKey*","Resource":"{resource}"}}]}}"#
        );
        ok(call(&root, RAM, "CreatePolicy", &[("PolicyName", &format!("{name}-keys")), ("PolicyDocument", &doc)]));
        ok(call(&root, RAM, "CreateUser", &[("UserName", name)]));
        ok(call(
            &root,
            RAM,
            "AttachPolicyToUser",
            &[("UserName", name), ("PolicyType", "Custom"), ("PolicyName", &format!("{name}-keys"))],
        ));
        let k = ok(call(&root, RAM, "CreateAccessKey", &[("UserName", name)]));
        r.client_with(
            k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
            k["AccessKey"]["AccessKeySecret"].as_str().expect("s"),
        )
    };
    let carol = user_with_policy("carol", &format!("acs:ram::{account}:user/carol"));
    let created = ok(call(&carol, RAM, "CreateAccessKey", &[]));
    let new_id = created["AccessKey"]["AccessKeyId"].as_str().expect("id").to_string();
    let listed = ok(call(&carol, RAM, "ListAccessKeys", &[]));
    assert!(listed.to_string().contains(&new_id), "carol's own keys: {listed}");
    ok(call(&carol, RAM, "UpdateAccessKey", &[("UserAccessKeyId", &new_id), ("Status", "Inactive")]));
    ok(call(&carol, RAM, "DeleteAccessKey", &[("UserAccessKeyId", &new_id)]));
    // The key landed on carol, not elsewhere: root sees carol's keys back to one.
    let keys = ok(call(&root, RAM, "ListAccessKeys", &[("UserName", "carol")]));
    assert_eq!(keys["AccessKeys"]["AccessKey"].as_array().map(Vec::len), Some(1), "{keys}");

    // dave may manage carol's keys only: his own, implied by the missing name, are refused.
    let dave = user_with_policy("dave", &format!("acs:ram::{account}:user/carol"));
    let before = state_of(&r, &account);
    let reply = call(&dave, RAM, "CreateAccessKey", &[]);
    assert!(denied(&reply), "{} {}", reply.status, reply.body);
    assert_eq!(state_of(&r, &account), before, "nothing written");
}
