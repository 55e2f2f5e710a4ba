//! Images: the region's system image and customers' own, each a set of OSS objects (kernel,
//! initrd, qcow2 disk) whose SHA-256 digests are recorded when the image is made. Every boot
//! reads the objects back and checks them against those digests: a changed object, whoever
//! changed it, makes the image refuse to boot.

use nimbus_api::{ApiError, BoxFut, CallContext, Params};
use nimbus_store::{Resource, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const KIND: &str = "ecs.image";
/// The public image Nimbus builds from the host's Debian packages.
/// The status of an image whose build failed for good (Alibaba's); its reason is in
/// `status.Reason` and DescribeImages `StatusReason`.
pub const CREATE_FAILED: &str = "CreateFailed";
pub const SYSTEM_IMAGE_ID: &str = "nimbus_busybox_x64_dropbear";
/// The three objects of an image, in boot order.
pub const PARTS: [&str; 3] = ["kernel", "initrd", "disk"];
const MAX_SHARES: usize = 10;

/// Where image objects live: OSS, reached in-process (see `nimbus_oss::Oss::get_internal`).
pub trait ImageObjects: Send + Sync {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFut<'a, Result<bytes::Bytes, ApiError>>;
    fn put<'a>(&'a self, bucket: &'a str, key: &'a str, body: bytes::Bytes) -> BoxFut<'a, Result<(), ApiError>>;
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The image's objects, read and checked against the digests recorded at creation.
pub async fn fetch_verified(objects: &dyn ImageObjects, image: &Resource) -> Result<Vec<bytes::Bytes>, ApiError> {
    let bucket = image.spec["Bucket"].as_str().unwrap_or_default();
    let mut out = vec![];
    for part in PARTS {
        let o = &image.spec["Objects"][part];
        let (key, want) = (o["Key"].as_str().unwrap_or_default(), o["Sha256"].as_str().unwrap_or_default());
        let body = objects.get(bucket, key).await.map_err(|e| {
            ApiError::new(
                400,
                "InvalidImage.IntegrityCheckFailed",
                format!(
                    "Image {} cannot be read from OSS (oss://{bucket}/{key}: {}); refusing to boot it.",
                    image.id, e.code
                ),
            )
        })?;
        let got = sha256_hex(&body);
        if got != want {
            return Err(ApiError::new(
                400,
                "InvalidImage.IntegrityCheckFailed",
                format!(
                    "Image {} failed its integrity check: oss://{bucket}/{key} has SHA-256 {got}, but {want} was recorded when the image was made. Refusing to boot a tampered image.",
                    image.id
                ),
            ));
        }
        out.push(body);
    }
    Ok(out)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, "InvalidImageId.NotFound", format!("The specified ImageId {id:?} does not exist."))
}

/// Who may use an image: system images everyone, custom images their owner and the accounts
/// they are shared with.
pub fn usable_by(image: &Resource, account: &str) -> bool {
    image.spec["ImageOwnerAlias"] == "system"
        || image.account_id == account
        || image.spec["SharedWith"].as_array().is_some_and(|a| a.iter().any(|x| x == account))
}

/// An image the caller may use (for RunInstances), or `InvalidImageId.NotFound`.
pub async fn usable(ctx: &CallContext, id: &str) -> Result<Resource, ApiError> {
    let all = ctx.store.all_resources_all_accounts(KIND).await?;
    all.into_iter().find(|i| i.id == id && usable_by(i, &ctx.caller.account_id)).ok_or_else(|| not_found(id))
}

async fn own(ctx: &CallContext, id: &str) -> Result<Resource, ApiError> {
    match ctx.store.get_resource(&ctx.caller.account_id, id).await {
        Ok(r) if r.kind == KIND && r.spec["ImageOwnerAlias"] != "system" => Ok(r),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

fn view(i: &Resource, caller: &str) -> Value {
    let alias = if i.spec["ImageOwnerAlias"] == "system" {
        "system"
    } else if i.account_id == caller {
        "self"
    } else {
        "others"
    };
    let mut v = json!({
        "ImageId": i.id, "ImageName": i.spec["ImageName"], "Description": i.spec["Description"],
        "OSName": i.spec["OSName"], "OSNameEn": i.spec["OSName"], "OSType": "linux", "Platform": "Debian",
        "Architecture": "x86_64", "Size": 1, "Status": i.status["Status"].as_str().unwrap_or("Creating"),
        "Progress": format!("{}%", i.status["Progress"].as_i64().unwrap_or(0)),
        "CreationTime": i.spec["CreationTime"], "ImageOwnerAlias": alias, "IsPublic": alias == "system",
        "Usage": "instance", "BootMode": "BIOS", "ImageFamily": "", "ImageVersion": "1",
        "DiskDeviceMappings": {"DiskDeviceMapping": [{"Device": "/dev/xvda", "Size": "1", "Type": "system", "SnapshotId": ""}]},
        "Tags": {"Tag": []},
    });
    if let Some(reason) = i.status["Reason"].as_str() {
        v["StatusReason"] = json!(reason); // a Nimbus addition: why the image is CreateFailed
    }
    v
}

pub async fn describe(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let page = p.int("PageNumber", 1, 1_000_000)?.unwrap_or(1) as usize;
    let size = p.int("PageSize", 1, 100)?.unwrap_or(10) as usize;
    let alias = p.get("ImageOwnerAlias").filter(|v| !v.is_empty());
    if let Some(a) = alias
        && !["system", "self", "others", "marketplace"].contains(&a)
    {
        return Err(ApiError::invalid("ImageOwnerAlias", "system, self, others or marketplace"));
    }
    let ids: Vec<&str> = p.get("ImageId").map(|v| v.split(',').map(str::trim).collect()).unwrap_or_default();
    let name = p.get("ImageName").filter(|v| !v.is_empty());
    let me = ctx.caller.account_id.as_str();
    let mut images: Vec<Value> = ctx
        .store
        .all_resources_all_accounts(KIND)
        .await?
        .iter()
        .filter(|i| usable_by(i, me))
        .map(|i| view(i, me))
        .filter(|v| alias.is_none_or(|a| v["ImageOwnerAlias"] == a))
        .filter(|v| ids.is_empty() || ids.iter().any(|id| v["ImageId"] == *id))
        .filter(|v| name.is_none_or(|n| v["ImageName"] == n))
        .filter(|v| p.get("Status").filter(|s| !s.is_empty()).is_none_or(|s| v["Status"] == s))
        .collect();
    images.sort_by(|a, b| b["CreationTime"].as_str().cmp(&a["CreationTime"].as_str()));
    let total = images.len();
    let page_items: Vec<Value> = images.into_iter().skip((page - 1) * size).take(size).collect();
    Ok(
        json!({"Images": {"Image": page_items}, "TotalCount": total, "PageNumber": page, "PageSize": size, "RegionId": ctx.region.id}),
    )
}

pub async fn delete(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let id = p.require("ImageId")?;
    let img = own(ctx, id).await?;
    ctx.store.delete_resource(&ctx.caller.account_id, &img.id, img.version).await?;
    Ok(json!({}))
}

pub async fn modify_share(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let mut img = own(ctx, p.require("ImageId")?).await?;
    let mut shared: Vec<String> = serde_json::from_value(img.spec["SharedWith"].clone()).unwrap_or_default();
    for a in p.list("AddAccount") {
        if a == img.account_id {
            return Err(ApiError::invalid("AddAccount", "an image cannot be shared with its owner"));
        }
        // Whether an account exists is not the caller's to learn (Alibaba does not reveal it):
        // any well-formed id is recorded as asked; one that names no account gives nobody anything.
        if a.is_empty() || a.len() > 32 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid("AddAccount", "an account id is a string of digits"));
        }
        if !shared.iter().any(|s| s == a) {
            shared.push(a.to_string());
        }
    }
    let remove = p.list("RemoveAccount");
    shared.retain(|s| !remove.contains(&s.as_str()));
    if shared.len() > MAX_SHARES {
        return Err(ApiError::new(
            400,
            "QuotaExceed.ShareImageUser",
            format!("An image may be shared with at most {MAX_SHARES} accounts."),
        ));
    }
    img.spec["SharedWith"] = json!(shared);
    ctx.store.update_resource(&img).await?;
    Ok(json!({}))
}

pub async fn describe_share(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let img = own(ctx, p.require("ImageId")?).await?;
    let accounts: Vec<Value> =
        img.spec["SharedWith"].as_array().into_iter().flatten().map(|a| json!({"AliyunId": a})).collect();
    let total = accounts.len();
    Ok(json!({"ImageId": img.id, "RegionId": ctx.region.id, "Accounts": {"Account": accounts},
              "ShareGroups": {"ShareGroup": []}, "TotalCount": total, "PageNumber": 1, "PageSize": 100}))
}

pub const CREATE_JOB: &str = "ecs.create_image";

/// CreateImage from an instance: the image record now (Creating), its objects by the agent's
/// `ecs.create_image` job (the instance's disk flattened into a new qcow2; kernel and initrd
/// copied from the instance's image).
pub async fn create(ctx: &CallContext, p: &Params) -> Result<Value, ApiError> {
    let iid = p.get("InstanceId").filter(|v| !v.is_empty()).ok_or_else(|| ApiError::missing("InstanceId"))?;
    let inst = crate::instance::load(ctx, iid).await?;
    let st = inst.status["Status"].as_str().unwrap_or_default();
    if st != "Running" && st != "Stopped" {
        return Err(ApiError::new(
            403,
            "IncorrectInstanceStatus",
            format!("Instance {iid} is {st}; an image is made from a Running or Stopped instance."),
        ));
    }
    let name = p.get("ImageName").filter(|v| !v.is_empty()).unwrap_or(iid);
    if name.chars().count() > 128 || name.starts_with("http://") || name.starts_with("https://") {
        return Err(ApiError::invalid("ImageName", "2 to 128 characters, not starting with http(s)://"));
    }
    let mine = ctx.store.all_resources(&ctx.caller.account_id, KIND).await?;
    if mine.iter().any(|i| i.spec["ImageName"] == name) {
        return Err(ApiError::new(
            400,
            "InvalidImageName.Duplicated",
            format!("An image named {name:?} already exists."),
        ));
    }
    let id = nimbus_core::ids::resource_id("m-");
    let spec = json!({
        "ImageName": name, "Description": p.get("Description").unwrap_or_default(), "ImageOwnerAlias": "self",
        "OSName": "Nimbus busybox x64", "CreationTime": nimbus_core::clock::iso8601(nimbus_core::clock::now_millis()),
        "SharedWith": [], "SourceInstanceId": iid, "SourceImageId": inst.spec["ImageId"], "SourceImageOwner": inst.spec["ImageOwner"],
    });
    let mut r = Resource::new(&id, &ctx.caller.account_id, KIND, &ctx.region.id, spec);
    r.status = json!({"Status": "Creating", "Progress": 0});
    ctx.store.create_resource(&r).await?;
    ctx.store
        .enqueue_job(&nimbus_store::NewJob {
            kind: CREATE_JOB.into(),
            account_id: ctx.caller.account_id.clone(),
            payload: json!({"ImageId": id, "InstanceId": iid}),
            max_attempts: 5,
        })
        .await?;
    Ok(json!({"ImageId": id}))
}
