//! The workspace's guardrails in a room: attendees cannot install cluster-scoped policies,
//! so `provision` does, with bindings of the room's own (`kindlab-<rule>-<room>`) that hold
//! in the namespaces labelled with the room. `teardown` removes those bindings; the policies
//! stay with the workspace (`up`/`down` own them too), inert without a binding.

use kube::Api;
use kube::api::DeleteParams;

use super::plan::ROOM_LABEL;
use crate::error::Result;
use crate::guardrails::{self, Desired, Rule, Scope};
use crate::lab::LabEnv;

/// Installs or repairs the room's guardrails as kindlab.yaml says (removes them when all are
/// off): what was done, in words.
pub async fn provision(env: &LabEnv<'_>, room: &str) -> Result<Vec<String>> {
    let owner = env.workspace.ensure_identity()?.id;
    let desired = Desired::new(
        &env.workspace.guardrails,
        &env.registry_host,
        Scope::Label {
            key: ROOM_LABEL.to_string(),
            value: room.to_string(),
        },
    )
    .owned_by(&owner)
    .for_room(room);
    let seen = guardrails::observe(&env.client, &owner, Some(room)).await?;
    let objects = desired.objects();
    let steps = guardrails::plan(&objects, &seen)?;
    guardrails::reconcile::act(&env.client, &objects, &steps).await?;
    Ok(steps.iter().map(guardrails::GuardrailStep::done).collect())
}

/// Deletes the room's bindings.
pub async fn teardown(client: &kube::Client, room: &str) -> Result<()> {
    let bindings: Api<
        k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    > = Api::all(client.clone());
    for rule in Rule::ALL {
        let name = guardrails::policy::binding_name(rule, Some(room));
        match bindings.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(guardrails::GuardrailError::Api {
                    action: "delete",
                    kind: "ValidatingAdmissionPolicyBinding".into(),
                    name,
                    message: e.to_string(),
                }
                .into());
            }
        }
    }
    Ok(())
}
