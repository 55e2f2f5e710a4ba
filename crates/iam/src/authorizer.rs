//! The RAM authorizer: decides every call from the caller's policies.
//!
//! - An account's root identity may do anything in its own account.
//! - A RAM user: the policies attached to the user and to each of its groups, unioned.
//! - An assumed-role session: the role's policies, intersected with the session policy.
//! - `sts:GetCallerIdentity` is always allowed (it only tells callers who they are).
//!
//! Policies are read from the store on each call, so a grant or revocation takes effect at once;
//! parsed documents are cached by their text (a policy version never changes once written).

use crate::ram::Directory;
use nimbus_api::{Authorizer, BoxFut, Caller, Decision, PrincipalType};
use nimbus_policy::{Context, Policy, evaluate, evaluate_session};
use nimbus_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct RamAuthorizer {
    store: Store,
    parsed: Mutex<HashMap<String, Arc<Policy>>>,
}

impl RamAuthorizer {
    pub fn new(store: Store) -> Self {
        RamAuthorizer { store, parsed: Mutex::new(HashMap::new()) }
    }

    fn parse(&self, doc: &str) -> Option<Arc<Policy>> {
        let mut cache = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(doc) {
            return Some(p.clone());
        }
        match Policy::parse(doc) {
            Ok(p) => {
                if cache.len() > 10_000 {
                    cache.clear();
                }
                let p = Arc::new(p);
                cache.insert(doc.to_string(), p.clone());
                Some(p)
            }
            Err(e) => {
                // Documents are validated when written; one that no longer parses grants nothing.
                tracing::error!(error = %e, "stored policy document does not parse; ignoring it");
                None
            }
        }
    }

    async fn decide(&self, caller: &Caller, action: &str, resources: &[String]) -> Decision {
        if action.eq_ignore_ascii_case("sts:GetCallerIdentity") {
            return Decision::Allow;
        }
        let dir = Directory { store: &self.store, account: &caller.account_id };
        let docs = match caller.principal_type {
            PrincipalType::Root => return Decision::Allow,
            PrincipalType::User => dir.user_policy_documents(&caller.principal_name).await,
            PrincipalType::AssumedRole => dir.role_policy_documents(&caller.principal_name).await,
        };
        let docs = match docs {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "could not load policies; denying");
                return Decision::ImplicitDeny;
            }
        };
        let policies: Vec<Arc<Policy>> = docs.iter().filter_map(|d| self.parse(d)).collect();
        let refs: Vec<&Policy> = policies.iter().map(|p| p.as_ref()).collect();
        let ctx =
            Context::standard(caller.source_ip, caller.secure_transport, caller.mfa_present, nimbus_core::clock::now());
        let session = caller.session.as_ref().and_then(|s| s.policy.as_deref()).map(|d| self.parse(d));
        let d = match session {
            // A session policy that no longer parses narrows to nothing.
            Some(None) => return Decision::ImplicitDeny,
            Some(Some(sp)) => evaluate_session(&refs, Some(&sp), action, resources, &ctx),
            None => evaluate(&refs, action, resources, &ctx),
        };
        match d {
            nimbus_policy::Decision::Allow => Decision::Allow,
            nimbus_policy::Decision::ExplicitDeny => Decision::ExplicitDeny,
            nimbus_policy::Decision::ImplicitDeny => Decision::ImplicitDeny,
        }
    }
}

impl Authorizer for RamAuthorizer {
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        ram_action: &'a str,
        resources: &'a [String],
    ) -> BoxFut<'a, Decision> {
        Box::pin(self.decide(caller, ram_action, resources))
    }
}
