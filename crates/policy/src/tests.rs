use super::*;
use proptest::prelude::*;
use std::net::IpAddr;

fn p(doc: &str) -> Policy {
    Policy::parse(doc).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn allow(action: &str, resource: &str) -> String {
    format!(r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#)
}

fn ctx() -> Context {
    Context::standard("198.18.0.7".parse().expect("ip"), true, false, chrono::Utc::now())
}

fn decide(policies: &[&Policy], action: &str, resource: &str, c: &Context) -> Decision {
    evaluate(policies, action, &[resource.to_string()], c)
}

#[test]
fn malformed_documents_are_refused_with_a_reason() {
    for (doc, why) in [
        ("", "1 to 6144"),
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        (r#"{"Version":"2","Statement":[]}"#, "Version"),
        (r#"{"Version":"1","Statement":[]}"#, "1 to 100"),
        (r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#, "Effect"),
        (r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}"#, "Action or NotAction"),
        (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","NotAction":"a:b","Resource":"*"}]}"#, "both"),
        (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}"#, "Resource or NotResource"),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecsDescribe","Resource":"*"}]}"#,
            "<service>:<Action>",
        ),
        (r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#, "must not be empty"),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Cond":{}}]}"#,
            "unknown element",
        ),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSortOf":{"a":"b"}}}]}"#,
            "unknown condition operator",
        ),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"300.1.1.1"}}}]}"#,
            "IP address",
        ),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"k":"ten"}}}]}"#,
            "number",
        ),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"k":"soon"}}}]}"#,
            "date",
        ),
        (
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"k":"maybe"}}}]}"#,
            "true or false",
        ),
    ] {
        let e = Policy::parse(doc).expect_err(doc);
        assert!(e.0.contains(why), "{doc}: {e}");
    }
    let star = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"{}","Resource":"*"}}]}}"#,
        "e:*".repeat(20)
    );
    assert!(Policy::parse(&star).expect_err("wildcard abuse").0.contains("wildcards"));
    let long = format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"*","Resource":"{}"}}]}}"#,
        "r".repeat(6200)
    );
    assert!(Policy::parse(&long).expect_err("too long").0.contains("6144"));
}

#[test]
fn deny_beats_allow_beats_implicit_deny() {
    let c = ctx();
    let all = p(&allow("ecs:*", "*"));
    let deny_stop = p(
        r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ecs:StopInstance","Resource":"acs:ecs:*:*:instance/i-prod*"}]}"#,
    );
    assert_eq!(decide(&[&all], "ecs:StopInstance", "acs:ecs:local-1:1:instance/i-prod1", &c), Decision::Allow);
    assert_eq!(
        decide(&[&all, &deny_stop], "ecs:StopInstance", "acs:ecs:local-1:1:instance/i-prod1", &c),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&[&all, &deny_stop], "ecs:StopInstance", "acs:ecs:local-1:1:instance/i-dev1", &c),
        Decision::Allow
    );
    assert_eq!(decide(&[&all], "vpc:CreateVpc", "*", &c), Decision::ImplicitDeny);
    assert_eq!(decide(&[], "ecs:DescribeRegions", "*", &c), Decision::ImplicitDeny);
    // Actions are case-insensitive; resources are not.
    assert_eq!(decide(&[&p(&allow("ECS:describe*", "*"))], "ecs:DescribeRegions", "x", &c), Decision::Allow);
    assert_eq!(
        decide(&[&p(&allow("*", "acs:oss:*:*:Bucket/*"))], "oss:GetObject", "acs:oss:*:*:bucket/k", &c),
        Decision::ImplicitDeny
    );
    // Every resource of a call must be allowed.
    let one = p(&allow("ecs:*", "acs:ecs:*:*:instance/i-1"));
    let res = ["acs:ecs:r:1:instance/i-1".to_string(), "acs:ecs:r:1:instance/i-2".to_string()];
    assert_eq!(evaluate(&[&one], "ecs:StopInstances", &res, &c), Decision::ImplicitDeny);
}

#[test]
fn not_action_and_not_resource() {
    let c = ctx();
    let pol = p(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","NotAction":"ram:*","NotResource":"acs:ecs:*:*:instance/i-secret"}]}"#,
    );
    assert_eq!(decide(&[&pol], "ecs:StartInstance", "acs:ecs:r:1:instance/i-1", &c), Decision::Allow);
    assert_eq!(decide(&[&pol], "ram:CreateUser", "acs:ram::1:user/x", &c), Decision::ImplicitDeny);
    assert_eq!(decide(&[&pol], "ecs:StartInstance", "acs:ecs:*:*:instance/i-secret", &c), Decision::ImplicitDeny);
}

fn with_condition(cond: &str) -> Policy {
    p(&format!(
        r#"{{"Version":"1","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{cond}}}]}}"#
    ))
}

#[test]
fn condition_operators() {
    let mut c = ctx();
    c.set("acs:ResourceTag/env", "Prod");
    c.set("n", "10");
    c.set_many("acs:TagKeys", vec!["env".into(), "team".into()]);
    let yes = |cond: &str, c: &Context| decide(&[&with_condition(cond)], "ecs:Any", "r", c) == Decision::Allow;
    assert!(yes(r#"{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","198.18.0.0/15"]}}"#, &c));
    assert!(!yes(r#"{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, &c));
    assert!(yes(r#"{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, &c));
    assert!(yes(r#"{"IpAddress":{"acs:SourceIp":"198.18.0.7"}}"#, &c));
    assert!(yes(r#"{"Bool":{"acs:SecureTransport":"true"}}"#, &c));
    assert!(!yes(r#"{"Bool":{"acs:MFAPresent":true}}"#, &c));
    assert!(yes(r#"{"StringEquals":{"acs:ResourceTag/env":"Prod"}}"#, &c));
    assert!(!yes(r#"{"StringEquals":{"acs:ResourceTag/env":"prod"}}"#, &c));
    assert!(yes(r#"{"StringEqualsIgnoreCase":{"acs:ResourceTag/env":"prod"}}"#, &c));
    assert!(yes(r#"{"StringNotEquals":{"acs:ResourceTag/env":"dev"}}"#, &c));
    assert!(!yes(r#"{"StringNotEqualsIgnoreCase":{"acs:ResourceTag/env":"PROD"}}"#, &c));
    assert!(yes(r#"{"StringLike":{"ACS:RESOURCETAG/ENV":"P*"}}"#, &c), "keys are case-insensitive");
    assert!(yes(r#"{"StringNotLike":{"acs:ResourceTag/env":"D?v"}}"#, &c));
    assert!(yes(r#"{"NumericLessThan":{"n":"11"}}"#, &c) && !yes(r#"{"NumericLessThan":{"n":10}}"#, &c));
    assert!(yes(r#"{"NumericLessThanEquals":{"n":10}}"#, &c) && yes(r#"{"NumericGreaterThanEquals":{"n":"10"}}"#, &c));
    assert!(yes(r#"{"NumericGreaterThan":{"n":"9.5"}}"#, &c) && yes(r#"{"NumericEquals":{"n":["1","10"]}}"#, &c));
    assert!(yes(r#"{"NumericNotEquals":{"n":"11"}}"#, &c));
    assert!(yes(r#"{"DateGreaterThan":{"acs:CurrentTime":"2020-01-01T00:00:00Z"}}"#, &c));
    assert!(yes(r#"{"DateLessThan":{"acs:CurrentTime":"2999-01-01T00:00:00Z"}}"#, &c));
    assert!(!yes(r#"{"DateLessThanEquals":{"acs:CurrentTime":"2020-01-01T00:00:00Z"}}"#, &c));
    assert!(yes(r#"{"DateGreaterThanEquals":{"acs:CurrentTime":"1577836800"}}"#, &c), "epoch seconds too");
    assert!(yes(r#"{"DateNotEquals":{"acs:CurrentTime":"2020-01-01T00:00:00Z"}}"#, &c));
    // Keys and operators within a statement are ANDed.
    assert!(!yes(r#"{"Bool":{"acs:SecureTransport":"true"},"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}"#, &c));
    // A missing key satisfies only negated operators.
    assert!(!yes(r#"{"StringEquals":{"acs:ResourceTag/missing":"x"}}"#, &c));
    assert!(yes(r#"{"StringNotEquals":{"acs:ResourceTag/missing":"x"}}"#, &c));
    // Set qualifiers on a multi-valued key.
    assert!(yes(r#"{"ForAnyValue:StringEquals":{"acs:TagKeys":["team","cost"]}}"#, &c));
    assert!(!yes(r#"{"ForAllValues:StringEquals":{"acs:TagKeys":["team","cost"]}}"#, &c));
    assert!(yes(r#"{"ForAllValues:StringEquals":{"acs:TagKeys":["team","env","cost"]}}"#, &c));
}

#[test]
fn session_policy_only_narrows() {
    let c = ctx();
    let role = p(&allow("ecs:*", "*"));
    let session = p(&allow("ecs:Describe*", "*"));
    let wide_session = p(&allow("*", "*"));
    let r = ["x".to_string()];
    assert_eq!(evaluate_session(&[&role], Some(&session), "ecs:DescribeRegions", &r, &c), Decision::Allow);
    assert_eq!(evaluate_session(&[&role], Some(&session), "ecs:StopInstance", &r, &c), Decision::ImplicitDeny);
    assert_eq!(
        evaluate_session(&[&role], Some(&wide_session), "ram:CreateUser", &r, &c),
        Decision::ImplicitDeny,
        "cannot widen"
    );
    assert_eq!(evaluate_session(&[&role], None, "ecs:StopInstance", &r, &c), Decision::Allow);
}

#[test]
fn trust_policies() {
    let c = ctx();
    let t = p(
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::111:root"]}},
        {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":["ecs.aliyuncs.com"]}}]}"#,
    );
    assert!(t.is_trust_policy());
    let alice = ["acs:ram::111:user/alice".to_string(), "acs:ram::111:root".to_string()];
    let mallory = ["acs:ram::222:user/m".to_string(), "acs:ram::222:root".to_string()];
    assert!(t.trusts(&alice, None, "sts:AssumeRole", &c));
    assert!(!t.trusts(&mallory, None, "sts:AssumeRole", &c));
    assert!(t.trusts(&[], Some("ECS.aliyuncs.com"), "sts:AssumeRole", &c));
    assert!(!t.trusts(&alice, None, "sts:GetFederationToken", &c));
    let deny = p(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":"*"}},
        {"Effect":"Deny","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::111:user/alice"]}}]}"#);
    assert!(!deny.trusts(&alice, None, "sts:AssumeRole", &c));
    assert!(deny.trusts(&mallory, None, "sts:AssumeRole", &c));
    assert!(!p(&allow("*", "*")).is_trust_policy());
}

fn action() -> impl Strategy<Value = String> {
    "(ecs|vpc|oss|ram):[A-Za-z]{1,12}"
}

fn resource() -> impl Strategy<Value = String> {
    "acs:(ecs|vpc|oss):(local-1|\\*)?:[0-9]{0,3}:[a-z]{1,8}/[a-z0-9*?-]{0,10}"
}

proptest! {
    #[test]
    fn parse_never_panics(doc in ".{0,300}") {
        let _ = Policy::parse(&doc);
    }

    #[test]
    fn parse_never_panics_on_policy_shaped_json(
        effect in "(Allow|Deny|x)", a in "[a-z*?:]{0,12}", r in "[a-z*?:/]{0,12}", op in "[A-Za-z:]{0,20}", k in ".{0,8}", v in ".{0,8}"
    ) {
        let doc = serde_json::json!({"Version":"1","Statement":[{"Effect":effect,"Action":a,"Resource":r,"Condition":{op:{k:v}}}]}).to_string();
        let _ = Policy::parse(&doc);
    }

    /// An explicit Deny on a pattern that matches wins over any number of Allows.
    #[test]
    fn explicit_deny_always_wins(a in action(), r in resource(), extra in proptest::collection::vec((action(), resource()), 0..5)) {
        let c = ctx();
        let deny = p(&format!(r#"{{"Version":"1","Statement":[{{"Effect":"Deny","Action":"{a}","Resource":"*"}}]}}"#));
        let mut allows: Vec<Policy> = extra.iter().map(|(a, r)| p(&allow(a, r))).collect();
        allows.push(p(&allow("*", "*")));
        let mut all: Vec<&Policy> = allows.iter().collect();
        all.push(&deny);
        prop_assert_eq!(evaluate(&all, &a, std::slice::from_ref(&r), &c), Decision::ExplicitDeny);
    }

    /// Adding Allow-only policies never takes a permission away; with none, everything is denied.
    #[test]
    fn allows_are_monotonic(a in action(), r in resource(), grants in proptest::collection::vec((action(), resource()), 0..6)) {
        let c = ctx();
        let ps: Vec<Policy> = grants.iter().map(|(a, r)| p(&allow(a, r))).collect();
        let mut prev = Decision::ImplicitDeny;
        for i in 0..=ps.len() {
            let refs: Vec<&Policy> = ps[..i].iter().collect();
            let d = evaluate(&refs, &a, std::slice::from_ref(&r), &c);
            prop_assert!(!(prev == Decision::Allow && d != Decision::Allow));
            prev = d;
        }
        prop_assert_eq!(evaluate(&[], &a, &[r], &c), Decision::ImplicitDeny);
    }

    /// A literal grant allows exactly its own action; NotAction of it allows exactly the others.
    #[test]
    fn literal_grants_and_their_complement(a in action(), b in action()) {
        let c = ctx();
        let only = p(&allow(&a, "*"));
        let not = p(&format!(r#"{{"Version":"1","Statement":[{{"Effect":"Allow","NotAction":"{a}","Resource":"*"}}]}}"#));
        let same = a.eq_ignore_ascii_case(&b);
        prop_assert_eq!(decide(&[&only], &b, "x", &c) == Decision::Allow, same);
        prop_assert_eq!(decide(&[&not], &b, "x", &c) == Decision::Allow, !same);
    }

    /// IpAddress on a CIDR agrees with ipnet's own containment.
    #[test]
    fn ip_conditions_agree_with_cidr_math(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), len in 0u8..=32) {
        let net = ipnet::Ipv4Net::new(a.into(), len).expect("prefix").trunc();
        let ip4 = std::net::Ipv4Addr::from(b);
        let ip = IpAddr::from(ip4);
        let mut c = Context::new();
        c.set("acs:SourceIp", ip.to_string());
        let pol = with_condition(&format!(r#"{{"IpAddress":{{"acs:SourceIp":"{net}"}}}}"#));
        prop_assert_eq!(decide(&[&pol], "ecs:X", "r", &c) == Decision::Allow, net.contains(&ip4));
    }
}
