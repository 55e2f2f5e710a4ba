//! XML in and out. Responses are written directly (they are small and their element order is
//! fixed by the SDKs' parsers); request documents are parsed with `roxmltree`.

use chrono::{DateTime, TimeZone, Utc};
use nimbus_api::ApiError;

pub const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// `<name>escaped value</name>`.
pub fn el(name: &str, value: impl AsRef<str>) -> String {
    format!("<{name}>{}</{name}>", escape(value.as_ref()))
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `2015-12-05T11:10:29.000Z`: oss2 requires the literal `.000`.
pub fn iso(ms: i64) -> String {
    at(ms).format("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}

/// RFC 1123 with a two-digit day: `Sat, 05 Dec 2015 11:10:29 GMT`.
pub fn http_date(ms: i64) -> String {
    at(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn parse_http_date(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(s.trim()).ok().map(|d| d.timestamp_millis())
}

pub fn malformed(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, "MalformedXML", format!("The XML you provided was not well-formed or did not validate: {why}."))
}

/// Parses a request document whose root must be `root`.
pub fn parse<'a>(body: &'a str, root: &str) -> Result<roxmltree::Document<'a>, ApiError> {
    let doc = roxmltree::Document::parse(body).map_err(malformed)?;
    if doc.root_element().tag_name().name() != root {
        return Err(malformed(format!("the root element must be <{root}>")));
    }
    Ok(doc)
}

/// Text of the first child element named `name`.
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name).map(|c| c.text().unwrap_or(""))
}

pub fn children<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(move |c| c.is_element() && c.tag_name().name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sdks_parse() {
        assert_eq!(iso(1_449_313_829_000), "2015-12-05T11:10:29.000Z");
        assert_eq!(http_date(1_449_313_829_000), "Sat, 05 Dec 2015 11:10:29 GMT");
        assert_eq!(http_date(1_704_067_200_000), "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(parse_http_date("Sat, 05 Dec 2015 11:10:29 GMT"), Some(1_449_313_829_000));
        assert_eq!(escape("a<b&'c'"), "a&lt;b&amp;&apos;c&apos;");
    }

    #[test]
    fn parses_request_documents() {
        let d = parse("<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object></Delete>", "Delete").expect("ok");
        let keys: Vec<&str> = children(d.root_element(), "Object").filter_map(|o| child_text(o, "Key")).collect();
        assert_eq!(keys, ["a&b"]);
        assert_eq!(parse("<Nope/>", "Delete").expect_err("root").code, "MalformedXML");
        assert_eq!(parse("<Delete>", "Delete").expect_err("broken").code, "MalformedXML");
    }
}
