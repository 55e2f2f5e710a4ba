//! Makes the host match the store for one VPC, whatever state a crash left either in.

use crate::model::{Phase, PhaseState, VSwitchKind, VpcKind};
use nimbus_host::net::NetDriver;
use nimbus_store::{Kind, Store, StoreError};

/// Reconciles `vpc_id` of `account`: a VPC that exists gets its namespace and one bridge per
/// vSwitch (bridges of deleted vSwitches go); a VPC that is gone loses its namespace. Marks the
/// VPC and its vSwitches `Available` once the host matches.
pub async fn reconcile(store: &Store, net: &NetDriver, account: &str, vpc_id: &str) -> Result<(), String> {
    let vpc = store.repo::<VpcKind>().find(account, vpc_id).await.map_err(|e| e.to_string())?;
    let Some(vpc) = vpc else {
        let (net, id) = (net.clone(), vpc_id.to_string());
        return tokio::task::spawn_blocking(move || net.remove_vpc(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string());
    };
    let vswitches: Vec<_> = store
        .repo::<VSwitchKind>()
        .all(account)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|v| v.spec.vpc_id == vpc_id)
        .collect();
    let wanted: Vec<(String, ipnet::Ipv4Net)> =
        vswitches.iter().filter_map(|v| v.spec.block().map(|c| (v.id.clone(), c))).collect();
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
    mark_available::<VpcKind>(store, account, &vpc.id).await?;
    for v in vswitches {
        mark_available::<VSwitchKind>(store, account, &v.id).await?;
    }
    Ok(())
}

/// Sets `Status: Available`, re-reading when a concurrent change (a rename) moved the version on;
/// a resource deleted meanwhile is left alone.
async fn mark_available<K: Kind<Status = Phase>>(store: &Store, account: &str, id: &str) -> Result<(), String> {
    let r = store
        .repo::<K>()
        .update_with(account, id, |r| {
            r.status = Phase::new(PhaseState::Available);
            Ok::<_, StoreError>(())
        })
        .await;
    match r {
        Ok(_) | Err(StoreError::NotFound) => Ok(()),
        Err(StoreError::Conflict) => Err(format!("{id} kept changing; the job retries")),
        Err(e) => Err(e.to_string()),
    }
}
