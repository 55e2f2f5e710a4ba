//! Makes the host match the store for one VPC, whatever state a crash left either in.

use crate::{VPC, VSWITCH};
use nimbus_host::net::NetDriver;
use nimbus_store::{Store, StoreError};
use serde_json::json;

/// Reconciles `vpc_id` of `account`: a VPC that exists gets its namespace and one bridge per
/// vSwitch (bridges of deleted vSwitches go); a VPC that is gone loses its namespace. Marks the
/// VPC and its vSwitches `Available` once the host matches.
pub async fn reconcile(store: &Store, net: &NetDriver, account: &str, vpc_id: &str) -> Result<(), String> {
    let vpc = match store.get_resource(account, vpc_id).await {
        Ok(r) if r.kind == VPC => Some(r),
        Ok(_) | Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.to_string()),
    };
    let Some(vpc) = vpc else {
        let (net, id) = (net.clone(), vpc_id.to_string());
        return tokio::task::spawn_blocking(move || net.remove_vpc(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string());
    };
    let vswitches: Vec<_> = store
        .all_resources(account, VSWITCH)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|v| v.spec["VpcId"] == vpc_id)
        .collect();
    let wanted: Vec<(String, ipnet::Ipv4Net)> = vswitches
        .iter()
        .filter_map(|v| v.spec["CidrBlock"].as_str().and_then(|c| c.parse().ok()).map(|c| (v.id.clone(), c)))
        .collect();
    {
        let (net, id, wanted) = (net.clone(), vpc_id.to_string(), wanted.clone());
        tokio::task::spawn_blocking(move || -> Result<(), nimbus_host::net::NetError> {
            net.ensure_vpc(&id)?;
            for (vsw, block) in &wanted {
                net.ensure_vswitch(&id, vsw, *block)?;
            }
            // Bridges whose vSwitch is gone.
            for (bridge, _) in net.bridges(&id)? {
                if !wanted.iter().any(|(vsw, _)| NetDriver::bridge(vsw) == bridge) {
                    net.remove_bridge(&id, &bridge)?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    }
    for r in std::iter::once(vpc).chain(vswitches) {
        mark_available(store, account, r).await?;
    }
    Ok(())
}

/// Sets `Status: Available`, re-reading when a concurrent change (a rename) moved the version on;
/// a resource deleted meanwhile is left alone.
async fn mark_available(store: &Store, account: &str, mut r: nimbus_store::Resource) -> Result<(), String> {
    for _ in 0..5 {
        if r.status["Status"] == "Available" {
            return Ok(());
        }
        r.status = json!({"Status": "Available"});
        match store.update_resource(&r).await {
            Ok(_) | Err(StoreError::NotFound) => return Ok(()),
            Err(StoreError::Conflict) => match store.get_resource(account, &r.id).await {
                Ok(fresh) => r = fresh,
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            },
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{} kept changing; the job retries", r.id))
}
