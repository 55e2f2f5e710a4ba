//! Who may touch a bucket, through the real `nimbus up` (issue 13): cross-account calls need the
//! caller's own RAM as well as the owner's grant, denials reveal neither the owner nor whether a
//! copy source exists, and a bucket policy can never lock the owner's root out of the policy.

mod common;

use common::{Region, bin, p};
use nimbus::client::{Reply, RpcClient};
use nimbus::oss_client::{OssClient, OssReply};
use serde_json::Value;
use std::process::Command;

const RAM: &str = "2015-05-01";
const STS: &str = "2015-04-01";

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn ram(c: &RpcClient, action: &str, params: &[(&str, &str)]) -> Value {
    ok(c.call(RAM, action, &params.iter().map(|(k, v)| p(k, v)).collect::<Vec<_>>()).expect("call"))
}

fn oss(r: &Region, ak: &str, secret: &str) -> OssClient {
    OssClient::new(&r.oss_http, ak, secret, None).expect("client")
}

fn root_oss(r: &Region) -> OssClient {
    let c = r.creds();
    oss(r, &c.access_key_id, &c.access_key_secret)
}

fn status(reply: OssReply) -> (u16, String) {
    (reply.status, reply.code().unwrap_or_default())
}

/// A second tenant: (account id, RPC client, OSS client), both as its root.
fn tenant(r: &Region, name: &str) -> (String, RpcClient, OssClient) {
    let out = Command::new(bin())
        .args(["admin", "account", "create", "--name", name, "--data-dir"])
        .arg(&r.dir)
        .output()
        .expect("admin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let (ak, sk) = (v["AccessKeyId"].as_str().expect("id"), v["AccessKeySecret"].as_str().expect("secret"));
    (v["AccountId"].as_str().expect("account").to_string(), r.client_with(ak, sk), oss(r, ak, sk))
}

/// A RAM user of `root`'s account with `doc` attached (none when empty); its OSS client.
fn user(r: &Region, root: &RpcClient, name: &str, doc: &str) -> OssClient {
    ram(root, "CreateUser", &[("UserName", name)]);
    if !doc.is_empty() {
        ram(root, "CreatePolicy", &[("PolicyName", name), ("PolicyDocument", doc)]);
        ram(root, "AttachPolicyToUser", &[("UserName", name), ("PolicyType", "Custom"), ("PolicyName", name)]);
    }
    let k = ram(root, "CreateAccessKey", &[("UserName", name)]);
    oss(
        r,
        k["AccessKey"]["AccessKeyId"].as_str().expect("id"),
        k["AccessKey"]["AccessKeySecret"].as_str().expect("secret"),
    )
}

fn put_bucket(c: &OssClient, bucket: &str) {
    c.request("PUT", Some(bucket), None, &[], &[], &[]).expect("put bucket").ok().expect("bucket created");
}

fn put_policy(c: &OssClient, bucket: &str, doc: &str) -> OssReply {
    c.request("PUT", Some(bucket), None, &[("policy", "")], &[("content-type", "application/json")], doc.as_bytes())
        .expect("put policy")
}

const ALLOW_ALL: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// Finding 2: a bucket shared by A with account B is readable by B's root and by B principals
/// whose own policies allow it, never by a B user whose policies deny OSS (or allow nothing), nor
/// by a B role session whose session policy denies OSS.
#[test]
fn cross_account_access_needs_the_callers_own_ram_as_well_as_the_owners_grant() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let a = root_oss(&r);
    let a_account = r.creds().account_id;
    put_bucket(&a, "shared-a");
    a.put_object("shared-a", "doc.txt", b"shared").expect("put").ok().expect("put ok");
    let (b_account, b_rpc, b_root) = tenant(&r, "tenant-b");
    let policy = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":["{b_account}"],"Action":["oss:GetObject"],"Resource":["acs:oss:*:{a_account}:shared-a/*"]}}]}}"#
    );
    put_policy(&a, "shared-a", &policy).ok().expect("policy set");

    let reader = user(&r, &b_rpc, "reader", ALLOW_ALL);
    let denied = user(
        &r,
        &b_rpc,
        "denied",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"oss:*","Resource":"*"}]}"#,
    );
    let bare = user(&r, &b_rpc, "bare", "");
    let trust = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"RAM":["acs:ram::{b_account}:root"]}}}}]}}"#
    );
    ram(&b_rpc, "CreateRole", &[("RoleName", "worker"), ("AssumeRolePolicyDocument", &trust)]);
    ram(&b_rpc, "CreatePolicy", &[("PolicyName", "everything"), ("PolicyDocument", ALLOW_ALL)]);
    ram(
        &b_rpc,
        "AttachPolicyToRole",
        &[("RoleName", "worker"), ("PolicyType", "Custom"), ("PolicyName", "everything")],
    );
    let session = |policy: &str| {
        let c = ok(b_rpc
            .call(
                STS,
                "AssumeRole",
                &[
                    p("RoleArn", &format!("acs:ram::{b_account}:role/worker")),
                    p("RoleSessionName", "session"),
                    p("Policy", policy),
                ],
            )
            .expect("assume"));
        let c = &c["Credentials"];
        oss(&r, c["AccessKeyId"].as_str().expect("id"), c["AccessKeySecret"].as_str().expect("secret"))
            .with_security_token(c["SecurityToken"].as_str().expect("token"))
    };
    let open_session = session(ALLOW_ALL);
    let no_oss_session = session(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"oss:*","Resource":"*"}]}"#,
    );

    let get = |c: &OssClient| status(c.get_object("shared-a", "doc.txt").expect("get"));
    assert_eq!(get(&b_root).0, 200, "B's root is allowed by its own account");
    assert_eq!(get(&reader).0, 200, "a B user whose policies allow it");
    assert_eq!(get(&open_session).0, 200, "a B session whose policies allow it");
    assert_eq!(get(&denied), (403, "AccessDenied".into()), "a B user whose own policy denies oss:*");
    assert_eq!(get(&bare), (403, "AccessDenied".into()), "a B user whose policies allow nothing");
    assert_eq!(get(&no_oss_session), (403, "AccessDenied".into()), "a B session whose session policy denies OSS");
    // The same rule for a copy source: the denied user may not read A's object through a copy
    // (into a bucket of B that lets B's users write).
    put_bucket(&b_root, "dest-b");
    let dest_policy = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":["{b_account}"],"Action":["oss:PutObject"],"Resource":["acs:oss:*:{b_account}:dest-b/*"]}}]}}"#
    );
    put_policy(&b_root, "dest-b", &dest_policy).ok().expect("policy set");
    let copy = |c: &OssClient| {
        status(
            c.request("PUT", Some("dest-b"), Some("copy.txt"), &[], &[("x-oss-copy-source", "/shared-a/doc.txt")], &[])
                .expect("copy"),
        )
    };
    assert_eq!(copy(&b_root).0, 200);
    assert_eq!(copy(&no_oss_session).0, 403);
    r.stop();
}

/// Finding 4: CopyObject and UploadPartCopy from a bucket the caller may not read answer 403
/// whether the source key (or version) exists or not; only a caller who may read it learns that
/// it is missing.
#[test]
fn copies_from_an_unreadable_bucket_do_not_reveal_whether_the_source_exists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let a = root_oss(&r);
    let a_account = r.creds().account_id;
    put_bucket(&a, "private-a");
    a.put_object("private-a", "exists.txt", b"secret").expect("put").ok().expect("put ok");
    let (b_account, _b_rpc, b) = tenant(&r, "tenant-b");
    put_bucket(&b, "dest-b");
    let upload = b.request("POST", Some("dest-b"), Some("big"), &[("uploads", "")], &[], &[]).expect("initiate");
    let upload_id = nimbus::oss_client::between(&upload.ok().expect("initiated").text(), "<UploadId>", "</UploadId>")
        .expect("upload id");

    let copy = |source: &str| {
        status(b.request("PUT", Some("dest-b"), Some("c"), &[], &[("x-oss-copy-source", source)], &[]).expect("copy"))
    };
    let part_copy = |source: &str| {
        status(
            b.request(
                "PUT",
                Some("dest-b"),
                Some("big"),
                &[("partNumber", "1"), ("uploadId", &upload_id)],
                &[("x-oss-copy-source", source)],
                &[],
            )
            .expect("part copy"),
        )
    };
    let denied = (403, "AccessDenied".to_string());
    for source in ["/private-a/exists.txt", "/private-a/missing.txt", "/private-a/exists.txt?versionId=nope"] {
        assert_eq!(copy(source), denied, "CopyObject from {source}");
        assert_eq!(part_copy(source), denied, "UploadPartCopy from {source}");
    }
    // A reader B is allowed to be learns what exists.
    let policy = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Principal":["{b_account}"],"Action":["oss:GetObject"],"Resource":["acs:oss:*:{a_account}:private-a/*"]}}]}}"#
    );
    put_policy(&a, "private-a", &policy).ok().expect("policy set");
    assert_eq!(copy("/private-a/missing.txt"), (404, "NoSuchKey".into()));
    assert_eq!(copy("/private-a/exists.txt").0, 200);
    assert_eq!(part_copy("/private-a/exists.txt").0, 200);
    // An object whose own ACL is public-read is readable through a copy without any policy.
    a.request("DELETE", Some("private-a"), None, &[("policy", "")], &[], &[]).expect("delete policy");
    assert_eq!(copy("/private-a/exists.txt"), denied);
    a.request(
        "PUT",
        Some("private-a"),
        Some("exists.txt"),
        &[("acl", "")],
        &[("x-oss-object-acl", "public-read")],
        &[],
    )
    .expect("acl")
    .ok()
    .expect("acl set");
    assert_eq!(copy("/private-a/exists.txt").0, 200);
    r.stop();
}

/// Finding 4: an AccessDenied answer to anyone outside the owning account does not name the
/// bucket owner's account id (in the body, or in HEAD's `x-oss-err`).
#[test]
fn access_denied_does_not_name_the_bucket_owner_to_outsiders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let a = root_oss(&r);
    let a_account = r.creds().account_id;
    put_bucket(&a, "private-a");
    a.put_object("private-a", "k.txt", b"x").expect("put").ok().expect("put ok");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}/private-a/k.txt", r.oss_http);
    let mut anon = agent.get(&url).call().expect("anonymous get");
    assert_eq!(anon.status().as_u16(), 403);
    let body = anon.body_mut().read_to_string().expect("body");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(!body.contains(&a_account), "the owner's account id leaks to anonymous callers: {body}");
    let head = agent.head(&url).call().expect("anonymous head");
    assert_eq!(head.status().as_u16(), 403);
    let err = head.headers().get("x-oss-err").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let err = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, err).expect("b64"))
        .expect("utf8");
    assert!(err.contains("AccessDenied") && !err.contains(&a_account), "{err}");
    let (_, _, b) = tenant(&r, "tenant-b");
    let other = b.get_object("private-a", "k.txt").expect("get");
    assert_eq!(other.status, 403);
    assert!(!other.text().contains(&a_account), "{}", other.text());
    r.stop();
}

/// Finding 7: a bucket policy denying `oss:*` to everyone still lets the owning account's root
/// read, replace and delete the policy (and nothing else, and nobody else).
#[test]
fn a_deny_everything_bucket_policy_never_locks_the_owners_root_out_of_the_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = Region::start(&tmp.path().join("d"), &[]);
    let a = root_oss(&r);
    let a_account = r.creds().account_id;
    put_bucket(&a, "locked");
    a.put_object("locked", "k.txt", b"x").expect("put").ok().expect("put ok");
    let deny = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Deny","Principal":["*"],"Action":["oss:*"],"Resource":["acs:oss:*:{a_account}:locked","acs:oss:*:{a_account}:locked/*"]}}]}}"#
    );
    put_policy(&a, "locked", &deny).ok().expect("policy set");
    let admin_user = user(&r, &r.client_http(), "admin", ALLOW_ALL);

    assert_eq!(status(a.get_object("locked", "k.txt").expect("get")).0, 403, "the policy still binds the data");
    let get_policy =
        |c: &OssClient| status(c.request("GET", Some("locked"), None, &[("policy", "")], &[], &[]).expect("get"));
    assert_eq!(get_policy(&admin_user).0, 403, "only the root is exempt");
    assert_eq!(get_policy(&a).0, 200, "the owner's root reads the policy");
    assert_eq!(put_policy(&a, "locked", &deny).status, 200, "and replaces it");
    assert_eq!(
        a.request("DELETE", Some("locked"), None, &[("policy", "")], &[], &[]).expect("delete").status,
        204,
        "and deletes it"
    );
    assert_eq!(status(a.get_object("locked", "k.txt").expect("get")).0, 200, "after which the data is back");
    r.stop();
}
