//! What a lab looks at: the target Deployment, its ReplicaSets and pods, the events about
//! those pods, and the EndpointSlices of its Service, gathered into one [`Snapshot`]. Whether
//! a symptom shows is a pure function of a snapshot; detection keeps a snapshot current with
//! watches (reflector stores) and re-judges on every change, so it notices a symptom as soon
//! as the API server reports it.

use crate::k8s::event_time;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::Serialize;

use super::spec::{LabError, Symptom};
use super::target::ResolvedTarget;
use crate::error::Result;
use crate::interrupt::{Interrupt, Interrupted};
use crate::k8s::K8sError;

const REVISION: &str = "deployment.kubernetes.io/revision";
const TEMPLATE_HASH: &str = "pod-template-hash";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How long an event counts as a symptom that still shows.
const RECENT_EVENT: Duration = Duration::from_secs(20);

/// Everything a lab judges, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub deployment: Option<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    /// Pods matching the Deployment's selector (any ReplicaSet).
    pub pods: Vec<Pod>,
    /// Events about pods in the namespace.
    pub events: Vec<Event>,
    /// EndpointSlices of the target's Service.
    pub slices: Vec<EndpointSlice>,
}

impl Snapshot {
    /// Reads everything once (for `lab check`; detection uses [`wait_for_symptoms`]).
    pub async fn list(client: &kube::Client, target: &ResolvedTarget) -> Result<Snapshot> {
        let ns = &target.target.namespace;
        let api_err = |what: String| {
            move |source| K8sError::Api {
                action: what,
                source,
            }
        };
        let by_selector = ListParams::default().labels(&target.selector);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        let service = target.placeholders()["service"].clone();
        let (deployment, rs, pod_list, event_list, slice_list) = tokio::try_join!(
            async {
                deployments
                    .get_opt(&target.target.deployment)
                    .await
                    .map_err(api_err(format!("read {}", target.target.describe())))
            },
            async {
                replica_sets
                    .list(&by_selector)
                    .await
                    .map_err(api_err(format!("list ReplicaSets in {ns}")))
            },
            async {
                pods.list(&by_selector)
                    .await
                    .map_err(api_err(format!("list pods in {ns}")))
            },
            async {
                events
                    .list(&ListParams::default().fields("involvedObject.kind=Pod"))
                    .await
                    .map_err(api_err(format!("list events in {ns}")))
            },
            async {
                slices
                    .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={service}")))
                    .await
                    .map_err(api_err(format!("list EndpointSlices in {ns}")))
            },
        )?;
        Ok(Snapshot {
            deployment,
            replica_sets: rs.items,
            pods: pod_list.items,
            events: event_list.items,
            slices: slice_list.items,
        })
    }

    /// The pod-template-hash of the Deployment's current ReplicaSet: the one at the
    /// Deployment's revision, once the controller has observed the latest spec. None while a
    /// change is not yet observed, so pods of the previous ReplicaSet never count as new.
    pub fn current_hash(&self) -> Option<String> {
        let deployment = self.deployment.as_ref()?;
        let generation = deployment.metadata.generation.unwrap_or(0);
        let observed = deployment
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        if observed < generation {
            return None;
        }
        let revision = deployment.metadata.annotations.as_ref()?.get(REVISION)?;
        let uid = deployment.metadata.uid.as_deref();
        self.replica_sets
            .iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| Some(o.uid.as_str()) == uid)
            })
            .find(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION))
                    == Some(revision)
            })
            .and_then(|rs| rs.metadata.labels.as_ref()?.get(TEMPLATE_HASH).cloned())
    }

    /// Pods of the current ReplicaSet that are not being deleted.
    pub fn current_pods(&self) -> Vec<&Pod> {
        let Some(hash) = self.current_hash() else {
            return Vec::new();
        };
        self.pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(TEMPLATE_HASH))
                    == Some(&hash)
            })
            .collect()
    }

    /// The evidence that `symptom` still shows at `now`: as [`Snapshot::evidence`], except
    /// that an event counts only if it happened within [`RECENT_EVENT`] (an event is history:
    /// one Unhealthy probe of a pod that is Ready since is not a symptom any more).
    pub fn still_shows(
        &self,
        symptom: &Symptom,
        target: &ResolvedTarget,
        now: Timestamp,
    ) -> Option<String> {
        if let Symptom::Event(m) = symptom {
            let recent = |e: &Event| {
                event_time(e).is_some_and(|t| {
                    now.duration_since(t)
                        .try_into()
                        .is_ok_and(|d: Duration| d < RECENT_EVENT)
                })
            };
            let uids: Vec<&str> = self
                .current_pods()
                .iter()
                .filter_map(|p| p.metadata.uid.as_deref())
                .collect();
            let still = self.events.iter().any(|e| {
                e.involved_object
                    .uid
                    .as_deref()
                    .is_some_and(|u| uids.contains(&u))
                    && e.reason.as_deref() == Some(m.reason.as_str())
                    && recent(e)
            });
            if !still {
                return None;
            }
        }
        self.state_evidence(symptom, target)
    }

    /// The evidence that `symptom` showed: in the objects' state now or, for a waiting reason
    /// the kubelet only held for a moment, in the event it recorded when it did
    /// (`Error: ImagePullBackOff`), so a watch that missed the moment still sees it.
    pub fn evidence(&self, symptom: &Symptom, target: &ResolvedTarget) -> Option<String> {
        self.state_evidence(symptom, target)
            .or_else(|| match symptom {
                Symptom::WaitingReason(reason) => self.event_evidence(reason),
                _ => None,
            })
    }

    /// A kubelet event about a current pod that reports `reason` as its error.
    fn event_evidence(&self, reason: &str) -> Option<String> {
        let pods = self.current_pods();
        let uids: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        let said = format!("Error: {reason}");
        self.events
            .iter()
            .filter(|e| {
                e.involved_object
                    .uid
                    .as_deref()
                    .is_some_and(|u| uids.contains(&u))
            })
            .find(|e| e.message.as_deref() == Some(said.as_str()))
            .map(|e| {
                format!(
                    "pod {} waiting: {reason} (event: {said})",
                    e.involved_object.name.as_deref().unwrap_or_default()
                )
            })
    }

    /// The evidence that `symptom` shows in the objects' state now, or None.
    fn state_evidence(&self, symptom: &Symptom, target: &ResolvedTarget) -> Option<String> {
        let container = &target.target.container;
        let pods = self.current_pods();
        let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
        let statuses = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| &c.name == container)
                .collect::<Vec<_>>()
        };
        match symptom {
            Symptom::WaitingReason(reason) => pods.iter().find_map(|p| {
                statuses(p).iter().find_map(|c| {
                    let waiting = c.state.as_ref()?.waiting.as_ref()?;
                    (waiting.reason.as_deref() == Some(reason)).then(|| {
                        format!(
                            "pod {} waiting: {reason}{}",
                            name(p),
                            waiting
                                .message
                                .as_deref()
                                .map(|m| format!(" ({m})"))
                                .unwrap_or_default()
                        )
                    })
                })
            }),
            Symptom::TerminatedReason(reason) => pods.iter().find_map(|p| {
                statuses(p).iter().find_map(|c| {
                    let states = [c.state.as_ref(), c.last_state.as_ref()];
                    states.into_iter().flatten().find_map(|s| {
                        let t = s.terminated.as_ref()?;
                        (t.reason.as_deref() == Some(reason)).then(|| {
                            format!(
                                "pod {} container {container} terminated: {reason} (exit code {})",
                                name(p),
                                t.exit_code
                            )
                        })
                    })
                })
            }),
            Symptom::RestartCount(at_least) => pods.iter().find_map(|p| {
                statuses(p).iter().find_map(|c| {
                    (c.restart_count >= i32::try_from(*at_least).unwrap_or(i32::MAX))
                        .then(|| format!("pod {} restarted {} times", name(p), c.restart_count))
                })
            }),
            Symptom::PodCondition(m) => pods.iter().find_map(|p| {
                p.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| {
                        c.type_ == m.type_
                            && m.status.as_ref().is_none_or(|s| &c.status == s)
                            && m.reason
                                .as_ref()
                                .is_none_or(|r| c.reason.as_ref() == Some(r))
                    })
                    .map(|c| {
                        format!(
                            "pod {} condition {}={}{}",
                            name(p),
                            c.type_,
                            c.status,
                            c.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        )
                    })
            }),
            Symptom::Event(m) => {
                let uids: Vec<&str> = pods
                    .iter()
                    .filter_map(|p| p.metadata.uid.as_deref())
                    .collect();
                self.events
                    .iter()
                    .filter(|e| {
                        e.involved_object
                            .uid
                            .as_deref()
                            .is_some_and(|u| uids.contains(&u))
                    })
                    .find(|e| {
                        e.reason.as_deref() == Some(m.reason.as_str())
                            && m.type_.as_ref().is_none_or(|t| e.type_.as_ref() == Some(t))
                    })
                    .map(|e| {
                        format!(
                            "event {} on pod {}: {}",
                            m.reason,
                            e.involved_object.name.as_deref().unwrap_or_default(),
                            e.message.as_deref().unwrap_or_default()
                        )
                    })
            }
            Symptom::DeploymentCondition(m) => self
                .deployment
                .as_ref()?
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| {
                    c.type_ == m.type_
                        && m.status.as_ref().is_none_or(|s| &c.status == s)
                        && m.reason
                            .as_ref()
                            .is_none_or(|r| c.reason.as_ref() == Some(r))
                })
                .map(|c| {
                    format!(
                        "Deployment condition {}={} ({})",
                        c.type_,
                        c.status,
                        c.reason.as_deref().unwrap_or_default()
                    )
                }),
            Symptom::ServiceWithoutEndpoints(service) => {
                let service = target.render(service);
                let ready = self
                    .slices
                    .iter()
                    .filter(|s| {
                        s.metadata
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(SERVICE_NAME_LABEL))
                            == Some(&service)
                    })
                    .flat_map(|s| s.endpoints.iter())
                    .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
                    .count();
                (ready == 0).then(|| format!("Service {service} has no ready endpoints"))
            }
            // A refusal changed nothing: there is no state to show it.
            Symptom::Refused(_) => None,
        }
    }
}

/// The `refused` symptoms the break's own words show (`refused by POLICY: MESSAGE`), seen
/// at `at`; and the symptoms left to watch for. A refused symptom the break does not show
/// is returned as not seen, by its description.
pub fn refused_symptoms(
    symptoms: &[Symptom],
    broke: &[String],
    at: Instant,
) -> (Vec<Seen>, Vec<Symptom>, Vec<String>) {
    let mut seen = Vec::new();
    let mut watch = Vec::new();
    let mut missing = Vec::new();
    for symptom in symptoms {
        let Symptom::Refused(text) = symptom else {
            watch.push(symptom.clone());
            continue;
        };
        match broke
            .iter()
            .find(|b| b.starts_with("refused by ") && b.contains(text.as_str()))
        {
            Some(line) => seen.push(Seen {
                symptom: symptom.clone(),
                at,
                wall: SystemTime::now(),
                evidence: line.clone(),
            }),
            None => missing.push(describe(symptom)),
        }
    }
    (seen, watch, missing)
}

/// One symptom, first seen.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub symptom: Symptom,
    #[serde(skip)]
    pub at: Instant,
    #[serde(serialize_with = "serialize_wall")]
    pub wall: SystemTime,
    pub evidence: String,
}

fn serialize_wall<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::lab::session::rfc3339(*t))
}

/// Watches the target until every symptom has shown (each recorded the first time it shows),
/// or `within` passes: then the error says what was and was not seen. An interrupt ends the
/// wait with [`Interrupted`] (the caller restores the lab).
pub async fn wait_for_symptoms(
    client: &kube::Client,
    target: &ResolvedTarget,
    symptoms: &[Symptom],
    within: Duration,
    interrupt: &Interrupt,
    mut on_seen: impl FnMut(&Seen),
) -> Result<Vec<Seen>> {
    let ns = target.target.namespace.as_str();
    let service = target.placeholders()["service"].clone();
    let by_selector = watcher::Config::default().labels(&target.selector);
    let (deployments, deployments_w) = reflector::store::<Deployment>();
    let (replica_sets, replica_sets_w) = reflector::store::<ReplicaSet>();
    let (pods, pods_w) = reflector::store::<Pod>();
    let (events, events_w) = reflector::store::<Event>();
    let (slices, slices_w) = reflector::store::<EndpointSlice>();
    let streams: Vec<BoxStream<'static, (usize, WatchUpdate)>> = vec![
        reflect(
            deployments_w,
            Api::namespaced(client.clone(), ns),
            watcher::Config::default()
                .fields(&format!("metadata.name={}", target.target.deployment)),
        ),
        reflect(
            replica_sets_w,
            Api::namespaced(client.clone(), ns),
            by_selector.clone(),
        ),
        reflect(pods_w, Api::namespaced(client.clone(), ns), by_selector),
        reflect(
            events_w,
            Api::namespaced(client.clone(), ns),
            watcher::Config::default().fields("involvedObject.kind=Pod"),
        ),
        reflect(
            slices_w,
            Api::namespaced(client.clone(), ns),
            watcher::Config::default().labels(&format!("{SERVICE_NAME_LABEL}={service}")),
        ),
    ];
    let streams: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.map(move |(_, u)| (i, u)).boxed())
        .collect();
    let mut listed = vec![false; streams.len()];
    let mut updates = futures::stream::select_all(streams);
    let snapshot = || Snapshot {
        deployment: deployments.state().first().map(|d| (**d).clone()),
        replica_sets: owned(&replica_sets),
        pods: owned(&pods),
        events: owned(&events),
        slices: owned(&slices),
    };

    let deadline = tokio::time::Instant::now() + within;
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, updates.next()) => next,
            _ = interrupt.requested() => {
                return Err(Interrupted {
                    during: "the wait for the lab's symptoms".into(),
                    left: "the lab's break is applied".into(),
                    next: "`kindlab reset` restores the workspace's desired state".into(),
                }
                .into());
            }
        };
        match next {
            Err(_elapsed) => break,
            Ok(None) => break,
            Ok(Some((_, Err(e)))) if is_fatal(&e) => {
                return Err(K8sError::Watch {
                    what: format!("the lab's objects in {ns}"),
                    source: e,
                }
                .into());
            }
            Ok(Some((_, Err(e)))) => {
                tracing::debug!(error = %e, "lab watch interrupted, resuming");
                continue;
            }
            Ok(Some((index, Ok(init_done)))) => {
                if init_done && let Some(flag) = listed.get_mut(index) {
                    *flag = true;
                }
            }
        }
        // Judge only once every store holds its first full list.
        if !listed.iter().all(|l| *l) {
            continue;
        }
        let now = Instant::now();
        let wall = SystemTime::now();
        let snap = snapshot();
        for symptom in symptoms {
            if seen.iter().any(|s| &s.symptom == symptom) {
                continue;
            }
            if let Some(evidence) = snap.evidence(symptom, target) {
                let found = Seen {
                    symptom: symptom.clone(),
                    at: now,
                    wall,
                    evidence,
                };
                on_seen(&found);
                seen.push(found);
            }
        }
        if seen.len() == symptoms.len() {
            return Ok(seen);
        }
    }
    let missing: Vec<String> = symptoms
        .iter()
        .filter(|s| !seen.iter().any(|x| &x.symptom == *s))
        .map(describe)
        .collect();
    let saw = if seen.is_empty() {
        "none of them".to_string()
    } else {
        seen.iter()
            .map(|s| s.evidence.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(LabError::NotObserved {
        expected: missing.join(", "),
        within,
        seen: saw,
    }
    .into())
}

/// One update of one watch: `Ok(true)` when its initial list is complete.
type WatchUpdate = std::result::Result<bool, watcher::Error>;

fn reflect<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    config: watcher::Config,
) -> BoxStream<'static, (usize, WatchUpdate)>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    reflector::reflector(writer, watcher(api, config).default_backoff())
        .map(|event| (0, event.map(|e| matches!(e, watcher::Event::InitDone))))
        .boxed()
}

fn owned<K: Clone + Resource>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .iter()
        .map(|o| Arc::as_ref(o).clone())
        .collect()
}

/// A symptom in words (`ErrImagePull`, `Service orders-api without endpoints`).
pub fn describe(symptom: &Symptom) -> String {
    match symptom {
        Symptom::WaitingReason(r) | Symptom::TerminatedReason(r) => r.clone(),
        Symptom::RestartCount(n) => format!("{n} restarts"),
        Symptom::PodCondition(c) | Symptom::DeploymentCondition(c) => format!(
            "{}={}{}",
            c.type_,
            c.status.as_deref().unwrap_or("?"),
            c.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Symptom::Event(e) => format!("event {}", e.reason),
        Symptom::ServiceWithoutEndpoints(s) => format!("Service {s} without endpoints"),
        Symptom::Refused(text) => format!("refused at admission ({text})"),
    }
}

/// Errors retrying cannot fix: the request itself is refused (no permission) or malformed.
fn is_fatal(err: &watcher::Error) -> bool {
    crate::k8s::is_fatal_watch_error(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::spec::{ConditionMatch, EventMatch};
    use serde_json::json;

    fn target() -> ResolvedTarget {
        crate::lab::target::sample_target()
    }

    /// A Deployment at revision 2 (observed), its two ReplicaSets, and one pod of each.
    fn snapshot(new_pod_status: serde_json::Value) -> Snapshot {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "orders-api", "namespace": "dev", "uid": "d1", "generation": 2,
                         "annotations": {REVISION: "2"}},
            "spec": {"selector": {"matchLabels": {"app": "orders-api"}}, "template": {}},
            "status": {"observedGeneration": 2}
        }))
        .unwrap();
        let rs = |name: &str, hash: &str, revision: &str| -> ReplicaSet {
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {TEMPLATE_HASH: hash},
                             "annotations": {REVISION: revision},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": "orders-api", "uid": "d1"}]},
                "spec": {"selector": {}}
            }))
            .unwrap()
        };
        let pod = |name: &str, hash: &str, status: serde_json::Value| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": format!("uid-{name}"),
                             "labels": {"app": "orders-api", TEMPLATE_HASH: hash}},
                "status": status
            }))
            .unwrap()
        };
        let healthy = json!({"conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": true,
                                   "restartCount": 0, "state": {"running": {}}}]});
        Snapshot {
            deployment: Some(deployment),
            replica_sets: vec![rs("old", "h1", "1"), rs("new", "h2", "2")],
            pods: vec![
                pod("old-pod", "h1", healthy),
                pod("new-pod", "h2", new_pod_status),
            ],
            events: vec![
                serde_json::from_value(json!({
                    "metadata": {"name": "e1"}, "reason": "Unhealthy", "type": "Warning",
                    "message": "Readiness probe failed: HTTP probe failed with statuscode: 404",
                    "involvedObject": {"kind": "Pod", "name": "new-pod", "uid": "uid-new-pod"}
                }))
                .unwrap(),
                serde_json::from_value(json!({
                    "metadata": {"name": "e2"}, "reason": "Killing", "type": "Normal",
                    "involvedObject": {"kind": "Pod", "name": "old-pod", "uid": "uid-old-pod"}
                }))
                .unwrap(),
            ],
            slices: Vec::new(),
        }
    }

    fn waiting(reason: &str) -> serde_json::Value {
        json!({"conditions": [{"type": "Ready", "status": "False"}],
               "containerStatuses": [{"name": "api", "image": "x", "imageID": "", "ready": false,
                   "restartCount": 3,
                   "state": {"waiting": {"reason": reason, "message": "back-off"}},
                   "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]})
    }

    #[test]
    fn only_pods_of_the_current_replicaset_count() {
        let snap = snapshot(waiting("CrashLoopBackOff"));
        let names: Vec<_> = snap
            .current_pods()
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["new-pod"]);
        let t = target();
        assert!(
            snap.evidence(&Symptom::WaitingReason("CrashLoopBackOff".into()), &t)
                .unwrap()
                .contains("new-pod")
        );
        assert!(
            snap.evidence(&Symptom::TerminatedReason("OOMKilled".into()), &t)
                .unwrap()
                .contains("exit code 137")
        );
        assert!(snap.evidence(&Symptom::RestartCount(3), &t).is_some());
        assert!(snap.evidence(&Symptom::RestartCount(4), &t).is_none());
        // The Killing event is about the old pod: not the lab's symptom.
        let killing = Symptom::Event(EventMatch {
            reason: "Killing".into(),
            type_: None,
        });
        assert!(snap.evidence(&killing, &t).is_none());
        let unhealthy = Symptom::Event(EventMatch {
            reason: "Unhealthy".into(),
            type_: Some("Warning".into()),
        });
        assert!(snap.evidence(&unhealthy, &t).unwrap().contains("404"));
        let not_ready = Symptom::PodCondition(ConditionMatch {
            type_: "Ready".into(),
            status: Some("False".into()),
            reason: None,
        });
        assert!(snap.evidence(&not_ready, &t).is_some());
    }

    #[test]
    fn an_old_event_no_longer_shows() {
        let mut snap = snapshot(waiting("ErrImagePull"));
        snap.events[0].last_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-12-01T10:00:00Z".parse().unwrap(),
        ));
        let unhealthy = Symptom::Event(EventMatch {
            reason: "Unhealthy".into(),
            type_: None,
        });
        let t = target();
        let soon: Timestamp = "2026-12-01T10:00:05Z".parse().unwrap();
        let later: Timestamp = "2026-12-01T10:05:00Z".parse().unwrap();
        assert!(snap.still_shows(&unhealthy, &t, soon).is_some());
        assert!(snap.still_shows(&unhealthy, &t, later).is_none());
        // Other symptoms are judged as they are.
        let pull = Symptom::WaitingReason("ErrImagePull".into());
        assert!(snap.still_shows(&pull, &t, later).is_some());
    }

    #[test]
    fn a_waiting_reason_missed_by_the_watch_shows_in_its_event() {
        let mut snap = snapshot(waiting("ErrImagePull"));
        let backoff = Symptom::WaitingReason("ImagePullBackOff".into());
        let t = target();
        assert!(snap.evidence(&backoff, &t).is_none());
        snap.events.push(
            serde_json::from_value(json!({
                "metadata": {"name": "e3"}, "reason": "Failed", "type": "Warning",
                "message": "Error: ImagePullBackOff",
                "involvedObject": {"kind": "Pod", "name": "new-pod", "uid": "uid-new-pod"}
            }))
            .unwrap(),
        );
        assert!(
            snap.evidence(&backoff, &t)
                .unwrap()
                .contains("event: Error: ImagePullBackOff")
        );
        // The check for "gone" looks at the state only: the pod is not in back-off now.
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        assert!(snap.still_shows(&backoff, &t, now).is_none());
    }

    #[test]
    fn an_unobserved_change_has_no_current_pods_yet() {
        let mut snap = snapshot(waiting("ErrImagePull"));
        if let Some(d) = snap.deployment.as_mut() {
            d.metadata.generation = Some(3);
        }
        assert!(snap.current_pods().is_empty());
        assert!(
            snap.evidence(&Symptom::WaitingReason("ErrImagePull".into()), &target())
                .is_none()
        );
    }

    #[test]
    fn a_service_without_ready_endpoints() {
        let mut snap = snapshot(waiting("ErrImagePull"));
        let symptom = Symptom::ServiceWithoutEndpoints("${service}".into());
        assert!(snap.evidence(&symptom, &target()).is_some());
        snap.slices.push(
            serde_json::from_value(json!({
                "metadata": {"name": "s1", "labels": {SERVICE_NAME_LABEL: "orders-api"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}]
            }))
            .unwrap(),
        );
        assert!(snap.evidence(&symptom, &target()).is_none());
    }
}
