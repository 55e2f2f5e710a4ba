//! CORS: the rules a bucket keeps (`PutBucketCors`), answering browser preflights (`OPTIONS`) and
//! adding `Access-Control-*` headers to actual requests whose `Origin` a rule allows.

use crate::xml;
use nimbus_api::ApiError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub max_age: Option<u32>,
}

const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

pub fn parse(text: &str) -> Result<Vec<Rule>, ApiError> {
    let doc = xml::parse(text, "CORSConfiguration")?;
    let mut rules = vec![];
    for r in xml::children(doc.root_element(), "CORSRule") {
        let all = |name: &'static str| -> Vec<String> {
            xml::children(r, name).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
        };
        let rule = Rule {
            origins: all("AllowedOrigin"),
            methods: all("AllowedMethod"),
            headers: all("AllowedHeader").into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            expose: all("ExposeHeader"),
            max_age: xml::child_text(r, "MaxAgeSeconds")
                .map(|m| m.trim().parse().map_err(|_| xml::malformed("MaxAgeSeconds must be a whole number")))
                .transpose()?,
        };
        if rule.origins.is_empty() || rule.methods.is_empty() {
            return Err(xml::malformed("every CORSRule needs an AllowedOrigin and an AllowedMethod"));
        }
        if let Some(m) = rule.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(ApiError::new(
                400,
                "InvalidArgument",
                format!("CORS method {m:?} is not one of {}.", METHODS.join(", ")),
            ));
        }
        if rule.origins.iter().chain(rule.headers.iter()).any(|o| o.matches('*').count() > 1) {
            return Err(ApiError::new(
                400,
                "InvalidArgument",
                "An AllowedOrigin or AllowedHeader may hold at most one '*'.",
            ));
        }
        rules.push(rule);
    }
    if rules.is_empty() || rules.len() > 10 {
        return Err(xml::malformed("between 1 and 10 CORSRule elements are required"));
    }
    Ok(rules)
}

/// `pattern` with at most one `*` matching any run of characters.
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((a, b)) => {
            value.len() >= a.len() + b.len()
                && value[..a.len()].eq_ignore_ascii_case(a)
                && value[value.len() - b.len()..].eq_ignore_ascii_case(b)
        }
    }
}

/// The first rule allowing `origin` to use `method` with `headers` (a preflight's
/// `Access-Control-Request-Headers`; none for an actual request).
pub fn find<'a>(rules: &'a [Rule], origin: &str, method: &str, headers: &[String]) -> Option<&'a Rule> {
    rules.iter().find(|r| {
        r.origins.iter().any(|o| matches(o, origin))
            && r.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            && headers.iter().all(|h| r.headers.iter().any(|p| matches(p, h)))
    })
}

/// The `Access-Control-*` response headers a matching rule grants.
pub fn response_headers(rule: &Rule, origin: &str, preflight: bool) -> Vec<(String, String)> {
    let any = rule.origins.iter().any(|o| o == "*");
    let mut h =
        vec![("access-control-allow-origin".to_string(), if any { "*".to_string() } else { origin.to_string() })];
    if !any {
        h.push(("vary".into(), "Origin".into()));
    }
    if preflight {
        h.push(("access-control-allow-methods".into(), rule.methods.join(", ")));
        if !rule.headers.is_empty() {
            h.push(("access-control-allow-headers".into(), rule.headers.join(", ")));
        }
        if let Some(m) = rule.max_age {
            h.push(("access-control-max-age".into(), m.to_string()));
        }
    }
    if !rule.expose.is_empty() {
        h.push(("access-control-expose-headers".into(), rule.expose.join(", ")));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_origin_method_and_headers() {
        let rules = parse(
            "<CORSConfiguration><CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
             <AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-oss-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
             <MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        )
        .expect("valid");
        assert!(find(&rules, "https://app.example.com", "PUT", &["x-oss-meta-a".into()]).is_some());
        assert!(find(&rules, "https://app.example.com", "DELETE", &[]).is_none());
        assert!(find(&rules, "https://evil.com", "GET", &[]).is_none());
        assert!(find(&rules, "https://app.example.com", "GET", &["authorization".into()]).is_none());
        let h = response_headers(&rules[0], "https://app.example.com", true);
        assert!(h.contains(&("access-control-allow-origin".into(), "https://app.example.com".into())));
        assert!(h.contains(&("access-control-max-age".into(), "60".into())));
        assert!(
            parse("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>")
                .is_err()
        );
        assert!(parse("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>").is_err());
    }
}
