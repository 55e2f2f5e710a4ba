//! Policy evaluations per second for a user with 10 attached policies of 20 statements each
//! (200 statements, wildcards and conditions), the case issue #3 names. Prints figures; asserts
//! nothing. Run: cargo bench -p nimbus-policy

use nimbus_policy::{Context, Decision, Policy, evaluate};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn policy(i: usize) -> Policy {
    let statements: Vec<String> = (0..20)
        .map(|j| {
            let effect = if j == 19 && i == 9 { "Deny" } else { "Allow" };
            format!(
                r#"{{"Effect":"{effect}","Action":["ecs:Describe{i}{j}*","vpc:Create{j}*"],"Resource":"acs:ecs:*:*:instance/i-{i}{j}*","Condition":{{"IpAddress":{{"acs:SourceIp":["10.{i}.{j}.0/24","198.18.0.0/15"]}},"Bool":{{"acs:SecureTransport":"true"}}}}}}"#
            )
        })
        .collect();
    Policy::parse(&format!(r#"{{"Version":"1","Statement":[{}]}}"#, statements.join(","))).expect("bench policy parses")
}

fn run(label: &str, policies: &[&Policy], action: &str, resource: &str, ctx: &Context, expect: Decision) {
    let res = [resource.to_string()];
    assert_eq!(evaluate(policies, action, &res, ctx), expect, "{label}");
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..1000 {
            black_box(evaluate(black_box(policies), black_box(action), black_box(&res), black_box(ctx)));
        }
        n += 1000;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{label:<48} {:>12.0} evaluations/s  {:>8.2} µs each", n as f64 / secs, secs * 1e6 / n as f64);
}

fn main() {
    let owned: Vec<Policy> = (0..10).map(policy).collect();
    let policies: Vec<&Policy> = owned.iter().collect();
    let ctx = Context::standard("198.18.3.4".parse().expect("ip"), true, false, chrono::Utc::now());
    println!(
        "RAM policy evaluation: 10 policies x 20 statements (wildcard actions and resources, IpAddress + Bool conditions), one core"
    );
    run(
        "allowed by the last statement of the last Allow",
        &policies,
        "ecs:Describe818Instances",
        "acs:ecs:local-1:1:instance/i-818x",
        &ctx,
        Decision::Allow,
    );
    run(
        "explicitly denied",
        &policies,
        "ecs:Describe919Instances",
        "acs:ecs:local-1:1:instance/i-919x",
        &ctx,
        Decision::ExplicitDeny,
    );
    run(
        "implicitly denied (every statement checked)",
        &policies,
        "oss:GetObject",
        "acs:oss:*:1:bucket/key",
        &ctx,
        Decision::ImplicitDeny,
    );
}
