//! Static website configuration: the index document suffix and the error document key.

use crate::xml;
use nimbus_api::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub index: String,
    pub error: Option<String>,
}

pub fn parse(text: &str) -> Result<Site, ApiError> {
    let doc = xml::parse(text, "WebsiteConfiguration")?;
    let root = doc.root_element();
    let index = xml::children(root, "IndexDocument")
        .next()
        .and_then(|n| xml::child_text(n, "Suffix"))
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .ok_or_else(|| xml::malformed("IndexDocument/Suffix is required and may not contain '/'"))?
        .to_string();
    let error = xml::children(root, "ErrorDocument")
        .next()
        .and_then(|n| xml::child_text(n, "Key"))
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    Ok(Site { index, error })
}
