//! Response bodies in Alibaba's shapes: JSON (default) or XML (`Format=XML`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use nimbus_api::ApiError;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// `Format` is matched case-insensitively; anything but XML is JSON (the SDKs ask for JSON).
    pub fn from_param(v: Option<&str>) -> Self {
        match v {
            Some(f) if f.eq_ignore_ascii_case("xml") => Format::Xml,
            _ => Format::Json,
        }
    }
}

pub fn success(format: Format, action: &str, request_id: &str, body: Value) -> Response<Full<Bytes>> {
    let mut obj = Map::new();
    obj.insert("RequestId".into(), Value::from(request_id));
    if let Value::Object(m) = body {
        obj.extend(m.into_iter().filter(|(k, _)| k != "RequestId"));
    }
    let root = if action.is_empty() { "Response".to_string() } else { format!("{action}Response") };
    respond(format, 200, &root, obj, request_id, None)
}

pub fn error(format: Format, request_id: &str, host_id: &str, product: &str, e: &ApiError) -> Response<Full<Bytes>> {
    let mut obj = Map::new();
    obj.insert("RequestId".into(), Value::from(request_id));
    obj.insert("HostId".into(), Value::from(host_id));
    obj.insert("Code".into(), Value::from(e.code.as_ref()));
    obj.insert("Message".into(), Value::from(e.message.as_str()));
    obj.insert(
        "Recommend".into(),
        Value::from(format!(
            "https://api.aliyun.com/troubleshoot?q={}&product={product}&requestId={request_id}",
            e.code
        )),
    );
    if let Some(d) = &e.access_denied_detail {
        obj.insert("AccessDeniedDetail".into(), (**d).clone());
    }
    respond(format, e.status, "Error", obj, request_id, e.retry_after_ms)
}

fn respond(
    format: Format,
    status: u16,
    xml_root: &str,
    obj: Map<String, Value>,
    request_id: &str,
    retry_after_ms: Option<u64>,
) -> Response<Full<Bytes>> {
    let (body, ctype) = match format {
        Format::Json => (Value::Object(obj).to_string(), "application/json;charset=utf-8"),
        Format::Xml => {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            xml_element(xml_root, &Value::Object(obj), &mut s);
            (s, "text/xml;charset=utf-8")
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-acs-request-id", v);
    }
    if let Some(ms) = retry_after_ms {
        h.insert("x-acs-retry-after", HeaderValue::from(ms));
    }
    r
}

/// JSON → XML as Alibaba's gateway does: objects become nested elements, an array repeats its
/// parent's element name (`{"Region":[a,b]}` → `<Region>a</Region><Region>b</Region>`).
fn xml_element(name: &str, v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| xml_element(name, i, out)),
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            m.iter().for_each(|(k, v)| xml_element(k, v, out));
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn body_of(r: Response<Full<Bytes>>) -> String {
        let b = r.into_body().collect().await.expect("full body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf8")
    }

    #[test]
    fn xml_wraps_lists_like_alibaba() {
        let r = success(
            Format::Xml,
            "DescribeRegions",
            "RID",
            json!({"Regions": {"Region": [{"RegionId": "a<b"}, {"RegionId": "c"}]}}),
        );
        let rt = tokio_test_block_on(body_of(r));
        assert_eq!(
            rt,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeRegionsResponse><RequestId>RID</RequestId><Regions><Region><RegionId>a&lt;b</RegionId></Region><Region><RegionId>c</RegionId></Region></Regions></DescribeRegionsResponse>"
        );
    }

    #[test]
    fn json_error_has_the_fields_sdks_read() {
        let e = ApiError::new(400, "SignatureDoesNotMatch", "x. server string to sign is:GET&%2F&A");
        let r = error(Format::Json, "RID", "ecs.local-1.nimbus.internal", "Ecs", &e);
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-acs-request-id"], "RID");
        let v: Value = serde_json::from_str(&tokio_test_block_on(body_of(r))).expect("json");
        assert_eq!(v["Code"], "SignatureDoesNotMatch");
        assert_eq!(v["RequestId"], "RID");
        assert_eq!(v["HostId"], "ecs.local-1.nimbus.internal");
        assert!(v["Message"].as_str().expect("msg").split(':').nth(1) == Some("GET&%2F&A"));
    }

    fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
    }
}
