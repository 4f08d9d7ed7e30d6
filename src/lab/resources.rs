//! Keeping a lab's change of a container's resources valid on the target it runs against.
//!
//! A lab states the value that produces its failure (`limits.memory: 16Mi`); the target has
//! requests and limits of its own, and its namespace may have a LimitRange and a
//! ResourceQuota. [`fit`] keeps what the lab sets (inside the LimitRange's min and max) and
//! moves the other side of each resource so the object stays valid: a request above the new
//! limit comes down to it (the API server refuses `requests > limits`), a limit below the new
//! request goes up to it, a request too small for the LimitRange's limit/request ratio goes
//! up. A new pod that the quota has no room for is refused before anything changes. Pure:
//! the caller reads the Deployment, the LimitRanges and the quotas.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};

/// Resource name (`memory`, `cpu`) to quantity (`64Mi`, `100m`), as Kubernetes writes them.
pub type ResourceList = BTreeMap<String, String>;

/// A container's `resources`: what it requests and what it is limited to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

impl ContainerResources {
    /// From a container's (or a patch's) `resources` object; other keys are ignored.
    pub fn from_json(resources: &serde_json::Value) -> ContainerResources {
        let list = |key: &str| -> ResourceList {
            resources[key]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| quantity_text(v).map(|q| (k.clone(), q)))
                        .collect()
                })
                .unwrap_or_default()
        };
        ContainerResources {
            requests: list("requests"),
            limits: list("limits"),
        }
    }

    /// As a container's `resources` object (empty lists left out).
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (key, list) in [("requests", &self.requests), ("limits", &self.limits)] {
            if !list.is_empty() {
                out.insert(key.into(), serde_json::json!(list));
            }
        }
        serde_json::Value::Object(out)
    }
}

/// Quantities are strings, but YAML lets a lab write `cpu: 2`.
fn quantity_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One LimitRange's rules for a container (its `type: Container` item).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerBounds {
    /// `LimitRange NS/NAME`, for the notes.
    pub source: String,
    pub min: ResourceList,
    pub max: ResourceList,
    pub max_limit_request_ratio: ResourceList,
    /// The limit a container without one gets.
    pub default_limit: ResourceList,
}

/// The Container items of a LimitRange.
pub fn bounds_of(range: &LimitRange) -> Vec<ContainerBounds> {
    let source = format!(
        "LimitRange {}/{}",
        range.metadata.namespace.as_deref().unwrap_or_default(),
        range.metadata.name.as_deref().unwrap_or_default()
    );
    let list = |l: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >|
     -> ResourceList {
        l.as_ref()
            .map(|m| m.iter().map(|(k, q)| (k.clone(), q.0.clone())).collect())
            .unwrap_or_default()
    };
    range
        .spec
        .as_ref()
        .map(|s| s.limits.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|item| item.type_ == "Container")
        .map(|item| ContainerBounds {
            source: source.clone(),
            min: list(&item.min),
            max: list(&item.max),
            max_limit_request_ratio: list(&item.max_limit_request_ratio),
            default_limit: list(&item.default),
        })
        .collect()
}

/// What a ResourceQuota allows and what its namespace already uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaRoom {
    /// `ResourceQuota NS/NAME`.
    pub source: String,
    pub hard: ResourceList,
    pub used: ResourceList,
}

pub fn room_of(quota: &ResourceQuota) -> QuotaRoom {
    let list = |l: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >|
     -> ResourceList {
        l.map(|m| m.iter().map(|(k, q)| (k.clone(), q.0.clone())).collect())
            .unwrap_or_default()
    };
    let status = quota.status.as_ref();
    QuotaRoom {
        source: format!(
            "ResourceQuota {}/{}",
            quota.metadata.namespace.as_deref().unwrap_or_default(),
            quota.metadata.name.as_deref().unwrap_or_default()
        ),
        // The status's hard is what the quota controller enforces; the spec's until it has run.
        hard: list(
            status
                .and_then(|s| s.hard.as_ref())
                .or(quota.spec.as_ref().and_then(|s| s.hard.as_ref())),
        ),
        used: list(status.and_then(|s| s.used.as_ref())),
    }
}

/// The resources to set in the container, and what was adjusted to keep them valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The lab's own values (clamped to the LimitRange), plus the other side of each
    /// resource where it had to move.
    pub resources: ContainerResources,
    /// Each adjustment, in words.
    pub notes: Vec<String>,
}

/// Why a lab's resources cannot be made to fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("{quantity:?} is not a quantity")]
    NotAQuantity { quantity: String },
    #[error("the lab asks for a {resource} request of {request} above its own limit of {limit}")]
    RequestAboveLimit {
        resource: String,
        request: String,
        limit: String,
    },
    #[error(
        "{} has {} of {} left ({} allowed, {} used) and the new pod would need {}; the rollout could not create it",
        .0.quota, .0.left, .0.key, .0.hard, .0.used, .0.needs
    )]
    NoRoom(Box<Shortfall>),
}

/// A quota without room for the new pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// `ResourceQuota NS/NAME`.
    pub quota: String,
    /// `limits.cpu`.
    pub key: String,
    pub hard: String,
    pub used: String,
    pub left: String,
    pub needs: String,
}

/// Which side of a resource a value is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Limit,
}

impl Side {
    fn word(self) -> &'static str {
        match self {
            Side::Request => "request",
            Side::Limit => "limit",
        }
    }
}

/// A quantity and its text: the text is what gets written back.
#[derive(Debug, Clone)]
struct Value {
    milli: i128,
    text: String,
}

fn value(text: &str) -> Result<Value, FitError> {
    Ok(Value {
        milli: milli_units(text).ok_or_else(|| FitError::NotAQuantity {
            quantity: text.to_string(),
        })?,
        text: text.to_string(),
    })
}

/// Fits `wanted` (the lab's values) into the container whose resources are `live`, under the
/// namespace's LimitRange `bounds` and `quotas`; `others` are the pod's other containers.
pub fn fit(
    live: &ContainerResources,
    wanted: &ContainerResources,
    others: &[ContainerResources],
    bounds: &[ContainerBounds],
    quotas: &[QuotaRoom],
) -> Result<Fitted, FitError> {
    let mut out = wanted.clone();
    let mut notes = Vec::new();
    let names: std::collections::BTreeSet<&String> =
        wanted.requests.keys().chain(wanted.limits.keys()).collect();
    for name in names {
        let set_request = wanted.requests.get(name).map(|q| value(q)).transpose()?;
        let set_limit = wanted.limits.get(name).map(|q| value(q)).transpose()?;
        // The lab's values, inside every LimitRange's min and max.
        let set_request = set_request
            .map(|v| clamp(v, name, Side::Request, bounds, &mut notes))
            .transpose()?;
        let set_limit = set_limit
            .map(|v| clamp(v, name, Side::Limit, bounds, &mut notes))
            .transpose()?;
        if let (Some(r), Some(l)) = (&set_request, &set_limit)
            && r.milli > l.milli
        {
            return Err(FitError::RequestAboveLimit {
                resource: name.clone(),
                request: r.text.clone(),
                limit: l.text.clone(),
            });
        }
        let live_request = live.requests.get(name).map(|q| value(q)).transpose()?;
        // A container without a limit of its own gets the LimitRange's default.
        let live_limit = match live.limits.get(name) {
            Some(q) => Some(value(q)?),
            None => bounds
                .iter()
                .filter_map(|b| b.default_limit.get(name))
                .map(|q| value(q))
                .next()
                .transpose()?,
        };
        let mut request = set_request.clone().or(live_request);
        let mut limit = set_limit.clone().or(live_limit);
        // Which of the two this function moved (the lab's own values are always written).
        let (mut request_moved, mut limit_moved) = (false, false);
        // The side the lab did not set follows the side it did.
        if set_limit.is_some()
            && set_request.is_none()
            && let (Some(r), Some(l)) = (&request, &limit)
            && r.milli > l.milli
        {
            notes.push(format!(
                "{name} request lowered from {} to the new limit {} (a request may not exceed its limit)",
                r.text, l.text
            ));
            request = Some(l.clone());
            request_moved = true;
        }
        if set_request.is_some()
            && set_limit.is_none()
            && let (Some(r), Some(l)) = (&request, &limit)
            && r.milli > l.milli
        {
            notes.push(format!(
                "{name} limit raised from {} to the new request {} (a limit may not be below its request)",
                l.text, r.text
            ));
            limit = Some(r.clone());
            limit_moved = true;
        }
        for b in bounds {
            let Some(ratio) = b.max_limit_request_ratio.get(name) else {
                continue;
            };
            let ratio = value(ratio)?;
            let (Some(r), Some(l)) = (&request, &limit) else {
                continue;
            };
            // limit / request <= ratio, in milli-units: limit * 1000 <= request * ratio.
            if ratio.milli <= 0 || l.milli * 1000 <= r.milli * ratio.milli {
                continue;
            }
            let why = format!(
                "{} allows a limit at most {} times the request",
                b.source, ratio.text
            );
            if set_request.is_some() && set_limit.is_none() {
                let lowered = div_ceil(r.milli * ratio.milli, 1000);
                let text = format_quantity(name, lowered);
                notes.push(format!(
                    "{name} limit lowered from {} to {text} ({why})",
                    l.text
                ));
                limit = Some(Value {
                    milli: lowered,
                    text,
                });
                limit_moved = true;
            } else {
                let raised = div_ceil(l.milli * 1000, ratio.milli);
                let text = format_quantity(name, raised);
                notes.push(format!(
                    "{name} request raised from {} to {text} ({why})",
                    r.text
                ));
                request = Some(Value {
                    milli: raised,
                    text,
                });
                request_moved = true;
            }
        }
        if let Some(r) = request.filter(|_| set_request.is_some() || request_moved) {
            out.requests.insert(name.clone(), r.text);
        }
        if let Some(l) = limit.filter(|_| set_limit.is_some() || limit_moved) {
            out.limits.insert(name.clone(), l.text);
        }
    }
    check_quotas(live, &out, others, quotas)?;
    Ok(Fitted {
        resources: out,
        notes,
    })
}

fn clamp(
    v: Value,
    name: &str,
    side: Side,
    bounds: &[ContainerBounds],
    notes: &mut Vec<String>,
) -> Result<Value, FitError> {
    let mut v = v;
    for b in bounds {
        if let Some(min) = b.min.get(name) {
            let min = value(min)?;
            if v.milli < min.milli {
                notes.push(format!(
                    "{name} {} raised from {} to {} ({} allows nothing smaller)",
                    side.word(),
                    v.text,
                    min.text,
                    b.source
                ));
                v = min;
            }
        }
        if let Some(max) = b.max.get(name) {
            let max = value(max)?;
            if v.milli > max.milli {
                notes.push(format!(
                    "{name} {} lowered from {} to {} ({} allows nothing larger)",
                    side.word(),
                    v.text,
                    max.text,
                    b.source
                ));
                v = max;
            }
        }
    }
    Ok(v)
}

/// A rollout keeps the old pod while it creates the new one, so the new pod needs its whole
/// size on top of what the namespace uses. Checked for the resources the lab changes.
fn check_quotas(
    live: &ContainerResources,
    fitted: &ContainerResources,
    others: &[ContainerResources],
    quotas: &[QuotaRoom],
) -> Result<(), FitError> {
    for quota in quotas {
        for (key, hard) in &quota.hard {
            let (side, name) = match key.split_once('.') {
                Some(("requests", name)) => (Side::Request, name),
                Some(("limits", name)) => (Side::Limit, name),
                // `cpu` and `memory` alone are requests.
                None if key == "cpu" || key == "memory" => (Side::Request, key.as_str()),
                _ => continue,
            };
            let pick = |c: &ContainerResources| match side {
                Side::Request => c.requests.get(name).cloned(),
                Side::Limit => c.limits.get(name).cloned(),
            };
            let Some(new) = pick(fitted) else {
                continue;
            };
            if pick(live).as_ref() == Some(&new) {
                continue;
            }
            let Some(used) = quota.used.get(key) else {
                continue;
            };
            let mut needs = value(&new)?.milli;
            for other in others {
                if let Some(q) = pick(other) {
                    needs += value(&q)?.milli;
                }
            }
            let hard_v = value(hard)?;
            let used_v = value(used)?;
            if used_v.milli + needs > hard_v.milli {
                return Err(FitError::NoRoom(Box::new(Shortfall {
                    quota: quota.source.clone(),
                    key: key.clone(),
                    hard: hard.clone(),
                    used: used.clone(),
                    left: format_quantity(name, (hard_v.milli - used_v.milli).max(0)),
                    needs: format_quantity(name, needs),
                })));
            }
        }
    }
    Ok(())
}

fn div_ceil(a: i128, b: i128) -> i128 {
    if b == 0 {
        return a;
    }
    (a + b - 1).div_euclid(b)
}

/// A quantity in thousandths of its unit (`100m` CPU is 100, `1Ki` is 1 024 000), rounded
/// up; None when it is not one.
pub fn milli_units(text: &str) -> Option<i128> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    // (numerator, denominator) of the suffix's factor, in milli-units.
    let (num, den): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (1000 * 10i128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let scale = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let value = div_ceil(mantissa.checked_mul(num)?, scale.checked_mul(den)?);
    Some(if negative { -value } else { value })
}

/// A computed quantity as Kubernetes would accept it: CPU in millicores, anything else in
/// whole units (rounded up).
fn format_quantity(name: &str, milli: i128) -> String {
    if name == "cpu" {
        if milli % 1000 == 0 {
            format!("{}", milli / 1000)
        } else {
            format!("{milli}m")
        }
    } else {
        let units = div_ceil(milli, 1000);
        const MI: i128 = 1 << 20;
        if units % MI == 0 {
            format!("{}Mi", units / MI)
        } else {
            format!("{units}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ContainerResources {
        let list = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ContainerResources {
            requests: list(requests),
            limits: list(limits),
        }
    }

    fn bounds(
        min: &[(&str, &str)],
        max: &[(&str, &str)],
        ratio: &[(&str, &str)],
        default: &[(&str, &str)],
    ) -> ContainerBounds {
        let list = |pairs: &[(&str, &str)]| -> ResourceList {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ContainerBounds {
            source: "LimitRange ns/limits".into(),
            min: list(min),
            max: list(max),
            max_limit_request_ratio: list(ratio),
            default_limit: list(default),
        }
    }

    #[test]
    fn quantities_in_milli_units() {
        assert_eq!(milli_units("100m"), Some(100));
        assert_eq!(milli_units("2"), Some(2000));
        assert_eq!(milli_units("0.5"), Some(500));
        assert_eq!(milli_units("1.5Gi"), Some(1536 * 1024 * 1024 * 1000));
        assert_eq!(milli_units("64Mi"), Some(64 * 1024 * 1024 * 1000));
        assert_eq!(milli_units("128M"), Some(128_000_000_000));
        assert_eq!(milli_units("1e3"), Some(1_000_000));
        assert_eq!(milli_units("1k"), Some(1_000_000));
        assert_eq!(milli_units("1500u"), Some(2), "rounded up");
        assert_eq!(milli_units("-1"), Some(-1000));
        assert_eq!(milli_units("64Mb"), None);
        assert_eq!(milli_units(""), None);
        assert_eq!(milli_units("Mi"), None);
        assert_eq!(format_quantity("cpu", 2000), "2");
        assert_eq!(format_quantity("cpu", 250), "250m");
        assert_eq!(format_quantity("memory", 32 * 1024 * 1024 * 1000), "32Mi");
        assert_eq!(format_quantity("memory", 1_000_500), "1001");
    }

    /// The OOM lab against an app that requests 64Mi: the request comes down with the limit.
    #[test]
    fn a_limit_below_the_request_brings_the_request_down() {
        let live = res(
            &[("cpu", "100m"), ("memory", "64Mi")],
            &[("cpu", "2"), ("memory", "128Mi")],
        );
        let fitted = fit(&live, &res(&[], &[("memory", "16Mi")]), &[], &[], &[]).unwrap();
        assert_eq!(
            fitted.resources,
            res(&[("memory", "16Mi")], &[("memory", "16Mi")])
        );
        assert_eq!(
            fitted.notes,
            [
                "memory request lowered from 64Mi to the new limit 16Mi (a request may not exceed its limit)"
            ]
        );
        assert_eq!(
            fitted.resources.to_json(),
            serde_json::json!({"requests": {"memory": "16Mi"}, "limits": {"memory": "16Mi"}})
        );
    }

    /// The sample's request (16Mi) already fits under the lab's limit: nothing else changes.
    #[test]
    fn a_request_that_fits_is_left_alone() {
        let live = res(&[("cpu", "10m"), ("memory", "16Mi")], &[("memory", "64Mi")]);
        let fitted = fit(&live, &res(&[], &[("memory", "16Mi")]), &[], &[], &[]).unwrap();
        assert_eq!(fitted.resources, res(&[], &[("memory", "16Mi")]));
        assert!(fitted.notes.is_empty());
    }

    /// Raising a request above the container's CPU limit of 2 would be refused (422 "must be
    /// less than or equal to cpu limit"): the limit goes up with it.
    #[test]
    fn a_request_above_the_limit_raises_the_limit() {
        let live = res(&[("cpu", "100m")], &[("cpu", "2")]);
        let fitted = fit(&live, &res(&[("cpu", "3")], &[]), &[], &[], &[]).unwrap();
        assert_eq!(fitted.resources, res(&[("cpu", "3")], &[("cpu", "3")]));
        assert!(fitted.notes[0].contains("limit raised from 2 to the new request 3"));
        // No limit of its own, but the LimitRange's default (1) would be below the request.
        let live = res(&[("cpu", "100m")], &[]);
        let b = bounds(&[], &[], &[], &[("cpu", "1")]);
        let fitted = fit(&live, &res(&[("cpu", "1500m")], &[]), &[], &[b], &[]).unwrap();
        assert_eq!(fitted.resources.limits["cpu"], "1500m");
    }

    #[test]
    fn the_labs_values_stay_inside_the_limit_range() {
        let live = res(&[("memory", "64Mi")], &[("memory", "128Mi")]);
        let b = bounds(&[("memory", "32Mi")], &[("memory", "1Gi")], &[], &[]);
        let fitted = fit(
            &live,
            &res(&[], &[("memory", "16Mi")]),
            &[],
            std::slice::from_ref(&b),
            &[],
        )
        .unwrap();
        assert_eq!(
            fitted.resources,
            res(&[("memory", "32Mi")], &[("memory", "32Mi")])
        );
        assert_eq!(
            fitted.notes[0],
            "memory limit raised from 16Mi to 32Mi (LimitRange ns/limits allows nothing smaller)"
        );
        let fitted = fit(&live, &res(&[], &[("memory", "4Gi")]), &[], &[b], &[]).unwrap();
        assert_eq!(fitted.resources, res(&[], &[("memory", "1Gi")]));
    }

    #[test]
    fn the_limit_to_request_ratio_holds() {
        let b = bounds(&[], &[], &[("memory", "2")], &[]);
        // The lab raises the limit to 8 times the request: the request follows to half.
        let live = res(&[("memory", "64Mi")], &[("memory", "128Mi")]);
        let fitted = fit(
            &live,
            &res(&[], &[("memory", "512Mi")]),
            &[],
            std::slice::from_ref(&b),
            &[],
        )
        .unwrap();
        assert_eq!(
            fitted.resources,
            res(&[("memory", "256Mi")], &[("memory", "512Mi")])
        );
        // The lab lowers the request: the limit comes down to twice the request.
        let fitted = fit(&live, &res(&[("memory", "16Mi")], &[]), &[], &[b], &[]).unwrap();
        assert_eq!(
            fitted.resources,
            res(&[("memory", "16Mi")], &[("memory", "32Mi")])
        );
    }

    #[test]
    fn a_lab_that_contradicts_itself_is_refused() {
        let err = fit(
            &ContainerResources::default(),
            &res(&[("cpu", "2")], &[("cpu", "1")]),
            &[],
            &[],
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, FitError::RequestAboveLimit { .. }), "{err}");
        let err = fit(
            &ContainerResources::default(),
            &res(&[], &[("memory", "lots")]),
            &[],
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "\"lots\" is not a quantity");
    }

    /// 64 CPUs in a namespace with `limits.cpu: 4`: refused before anything changes, naming the
    /// quota (the ReplicaSet would otherwise fail to create the pod: "exceeded quota").
    #[test]
    fn a_pod_the_quota_has_no_room_for_is_refused() {
        let quota = QuotaRoom {
            source: "ResourceQuota ns/room".into(),
            hard: [("limits.cpu", "4"), ("requests.cpu", "2"), ("pods", "10")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            used: [("limits.cpu", "2"), ("requests.cpu", "100m"), ("pods", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let live = res(&[("cpu", "100m")], &[("cpu", "2")]);
        let err = fit(
            &live,
            &res(&[("cpu", "64")], &[]),
            &[],
            &[],
            std::slice::from_ref(&quota),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ResourceQuota ns/room has 2 of limits.cpu left (4 allowed, 2 used) and the new pod would need 64; the rollout could not create it"
        );
        // The request alone, under its limit: the requests quota says no.
        let err = fit(
            &res(&[("cpu", "100m")], &[("cpu", "4")]),
            &res(&[("cpu", "3")], &[]),
            &[],
            &[],
            std::slice::from_ref(&quota),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "ResourceQuota ns/room has 1900m of requests.cpu left (2 allowed, 100m used)"
            ),
            "{err}"
        );
        // Lowering fits; the other containers of the pod count too.
        fit(
            &live,
            &res(&[], &[("cpu", "1")]),
            &[],
            &[],
            std::slice::from_ref(&quota),
        )
        .unwrap();
        let sidecar = res(&[], &[("cpu", "1500m")]);
        let err = fit(&live, &res(&[], &[("cpu", "1")]), &[sidecar], &[], &[quota]).unwrap_err();
        assert!(err.to_string().contains("would need 2500m"), "{err}");
    }

    #[test]
    fn limit_ranges_and_quotas_are_read() {
        let range: LimitRange = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "limits", "namespace": "att1"},
            "spec": {"limits": [
                {"type": "Container", "default": {"memory": "256Mi"}, "defaultRequest": {"cpu": "50m"},
                 "max": {"memory": "1Gi"}, "min": {"memory": "4Mi"}, "maxLimitRequestRatio": {"cpu": "10"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}}
            ]}
        }))
        .unwrap();
        let b = bounds_of(&range);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].source, "LimitRange att1/limits");
        assert_eq!(b[0].default_limit["memory"], "256Mi");
        assert_eq!(b[0].max["memory"], "1Gi");
        assert_eq!(b[0].min["memory"], "4Mi");
        assert_eq!(b[0].max_limit_request_ratio["cpu"], "10");
        let quota: ResourceQuota = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "room", "namespace": "att1"},
            "spec": {"hard": {"limits.cpu": "4"}},
            "status": {"hard": {"limits.cpu": "4"}, "used": {"limits.cpu": "2"}}
        }))
        .unwrap();
        let room = room_of(&quota);
        assert_eq!(room.source, "ResourceQuota att1/room");
        assert_eq!(room.used["limits.cpu"], "2");
        let parsed = ContainerResources::from_json(
            &serde_json::json!({"limits": {"cpu": 2, "memory": "16Mi"}, "claims": []}),
        );
        assert_eq!(parsed, res(&[], &[("cpu", "2"), ("memory", "16Mi")]));
    }
}
