//! A signed OSS client (signature v1, as oss2 signs), used by `nimbus oss …` and the tests.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use nimbus_core::secret::Secret;
use nimbus_gateway::signature::oss::{self, SubresourceSet};
use nimbus_gateway::signature::pct;

/// An answer: status, headers (lowercase names), body.
#[derive(Debug)]
pub struct OssReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OssReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `<Code>` of an error document.
    pub fn code(&self) -> Option<String> {
        let t = self.text();
        let a = t.find("<Code>")? + "<Code>".len();
        let b = t[a..].find("</Code>")?;
        Some(t[a..a + b].to_string())
    }

    /// Fails with the server's error code and message unless the status is 2xx.
    pub fn ok(self) -> Result<OssReply> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let t = self.text();
        let msg =
            t.find("<Message>").and_then(|a| t[a + 9..].find("</Message>").map(|b| t[a + 9..a + 9 + b].to_string()));
        bail!("{} {}: {}", self.status, self.code().unwrap_or_default(), msg.unwrap_or_default())
    }
}

pub struct OssClient {
    endpoint: String,
    access_key_id: String,
    secret: Secret,
    security_token: Option<Secret>,
    agent: ureq::Agent,
}

/// Encodes a key for a URL path: `/` kept.
fn encode_key(key: &str) -> String {
    key.split('/').map(pct).collect::<Vec<_>>().join("/")
}

impl OssClient {
    pub fn new(endpoint: &str, access_key_id: &str, secret: &str, ca_pem: Option<&[u8]>) -> Result<Self> {
        // Long timeout: one request may carry a whole large object.
        let (endpoint, agent) = crate::client::agent(endpoint, std::time::Duration::from_secs(600), ca_pem)?;
        Ok(OssClient {
            endpoint,
            access_key_id: access_key_id.into(),
            secret: Secret::new(secret),
            security_token: None,
            agent,
        })
    }

    pub fn with_security_token(mut self, token: &str) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    fn url(&self, bucket: Option<&str>, key: Option<&str>, query: &[(&str, &str)]) -> String {
        let mut u = self.endpoint.clone();
        if let Some(b) = bucket {
            u.push('/');
            u.push_str(b);
            u.push('/');
            if let Some(k) = key {
                u.push_str(&encode_key(k));
            }
        } else {
            u.push('/');
        }
        if !query.is_empty() {
            u.push('?');
            u.push_str(
                &query
                    .iter()
                    .map(|(k, v)| if v.is_empty() { pct(k) } else { format!("{}={}", pct(k), pct(v)) })
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        }
        u
    }

    /// One signed request.
    pub fn request(
        &self,
        method: &str,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<OssReply> {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let mut hs: Vec<(String, String)> =
            headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        if let Some(t) = &self.security_token {
            hs.push(("x-oss-security-token".into(), t.expose().to_string()));
        }
        let has_body = matches!(method, "PUT" | "POST");
        if has_body && !hs.iter().any(|(k, _)| k == "content-type") {
            hs.push(("content-type".into(), "application/octet-stream".into()));
        }
        let get = |n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
        let q: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let resource = oss::v1_resource(bucket, key, &q, SubresourceSet::Oss2);
        let sts = oss::v1_string_to_sign(method, &get("content-md5"), &get("content-type"), &date, &hs, &resource);
        let auth = format!("OSS {}:{}", self.access_key_id, oss::v1_sign(self.secret.expose(), &sts));
        let url = self.url(bucket, key, query);
        let mut resp = {
            macro_rules! with_headers {
                ($req:expr) => {{
                    let mut r = $req.header("date", &date).header("authorization", &auth);
                    for (k, v) in &hs {
                        r = r.header(k.as_str(), v.as_str());
                    }
                    r
                }};
            }
            match method {
                "GET" => with_headers!(self.agent.get(&url)).call(),
                "HEAD" => with_headers!(self.agent.head(&url)).call(),
                "DELETE" => with_headers!(self.agent.delete(&url)).call(),
                "PUT" => with_headers!(self.agent.put(&url)).send(body),
                "POST" => with_headers!(self.agent.post(&url)).send(body),
                m => bail!("unsupported method {m}"),
            }
        }
        .with_context(|| format!("calling {}", self.endpoint))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
            .collect();
        let body = if method == "HEAD" {
            vec![]
        } else {
            resp.body_mut().with_config().limit(u64::MAX).read_to_vec().context("reading the response")?
        };
        Ok(OssReply { status, headers, body })
    }

    pub fn put_object(&self, bucket: &str, key: &str, data: &[u8]) -> Result<OssReply> {
        let md5 = base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(data));
        self.request("PUT", Some(bucket), Some(key), &[], &[("content-md5", &md5)], data)
    }

    pub fn get_object(&self, bucket: &str, key: &str) -> Result<OssReply> {
        self.request("GET", Some(bucket), Some(key), &[], &[], &[])
    }

    /// A presigned v1 URL valid for `expires_secs`.
    pub fn presign(&self, method: &str, bucket: &str, key: &str, expires_secs: i64) -> String {
        let expires = (chrono::Utc::now().timestamp() + expires_secs).to_string();
        let mut q: Vec<(String, String)> = vec![];
        if let Some(t) = &self.security_token {
            q.push(("security-token".into(), t.expose().to_string()));
        }
        let resource = oss::v1_resource(Some(bucket), Some(key), &q, SubresourceSet::Oss2);
        let sts = oss::v1_string_to_sign(method, "", "", &expires, &[], &resource);
        let sig = oss::v1_sign(self.secret.expose(), &sts);
        let mut all: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend([
            ("OSSAccessKeyId", self.access_key_id.as_str()),
            ("Expires", expires.as_str()),
            ("Signature", sig.as_str()),
        ]);
        self.url(Some(bucket), Some(key), &all)
    }

    /// Uploads in parts of `part_size` (InitiateMultipartUpload → UploadPart… → Complete),
    /// calling `progress(bytes_done)` after each part.
    pub fn multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        mut reader: impl std::io::Read,
        part_size: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<OssReply> {
        let init = self.request("POST", Some(bucket), Some(key), &[("uploads", "")], &[], &[])?.ok()?;
        let text = init.text();
        let upload_id = between(&text, "<UploadId>", "</UploadId>").context("no UploadId in the answer")?;
        let mut parts = String::new();
        let (mut n, mut done) = (1u32, 0u64);
        let mut buf = vec![0u8; part_size];
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                let r = reader.read(&mut buf[filled..])?;
                if r == 0 {
                    break;
                }
                filled += r;
            }
            if filled == 0 && n > 1 {
                break;
            }
            let num = n.to_string();
            let r = self
                .request(
                    "PUT",
                    Some(bucket),
                    Some(key),
                    &[("partNumber", &num), ("uploadId", &upload_id)],
                    &[],
                    &buf[..filled],
                )
                .and_then(OssReply::ok);
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    let _ = self.request("DELETE", Some(bucket), Some(key), &[("uploadId", &upload_id)], &[], &[]);
                    return Err(e);
                }
            };
            parts += &format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                r.header("etag").unwrap_or_default()
            );
            done += filled as u64;
            progress(done);
            n += 1;
            if filled < buf.len() {
                break;
            }
        }
        let body = format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        self.request(
            "POST",
            Some(bucket),
            Some(key),
            &[("uploadId", &upload_id)],
            &[("content-type", "application/xml")],
            body.as_bytes(),
        )?
        .ok()
    }
}

pub fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let a = text.find(open)? + open.len();
    let b = text[a..].find(close)?;
    Some(text[a..a + b].to_string())
}
