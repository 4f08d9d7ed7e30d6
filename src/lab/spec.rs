//! A lab, as data: the text an attendee reads, what to break, the symptoms that prove it broke,
//! hints, the solution, and what "fixed" means. The runner knows no particular lab: a new lab
//! is a YAML file in `labs/` (embedded at build time) or one the user names.
//!
//! `kindlab lab schema` prints the JSON Schema generated from these types, so editors complete
//! lab files (`labs/lab.schema.json` is that output, checked by a test).

use std::path::{Path, PathBuf};
use std::time::Duration;

use include_dir::{Dir, include_dir};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exit;

static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/labs");

/// Lab files end in this; anything else in `labs/` (the schema) is not a lab.
const LAB_SUFFIX: &str = ".yaml";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("no lab named {name:?}")]
    Unknown { name: String, known: Vec<String> },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: u64,
        column: u64,
        message: String,
        fix: String,
    },
    #[error("the lab needs {what}, which is not ready: {why}")]
    NotReady {
        what: String,
        why: String,
        fix: String,
    },
    #[error("expected {expected} within {within:?}; saw {seen}")]
    NotObserved {
        expected: String,
        within: Duration,
        seen: String,
    },
    #[error("the lab cannot {action}: {why}")]
    CannotApply { action: String, why: String },
    #[error("the lab needs {what}")]
    Needs { what: String, fix: String },
    #[error("no lab is running in {workspace}")]
    NoSession { workspace: PathBuf },
    #[error("lab {lab:?} is already running (started {started})")]
    SessionRunning { lab: String, started: String },
    #[error(
        "lab {lab:?} in namespace {namespace} was ended on the cluster (reset by the instructor, or by another kindlab)"
    )]
    EndedOnCluster { lab: String, namespace: String },
    #[error("the lab was not fixed within {within:?}: {still}")]
    NotRecovered { within: Duration, still: String },
    #[error("lab {lab:?} needs the guardrail {rule} to deny in the cluster: {why}")]
    GuardrailMissing {
        lab: String,
        rule: String,
        why: String,
    },
    #[error("the lab expected the cluster to refuse this change, and it was admitted: {done}")]
    Admitted { done: String },
}

impl LabError {
    pub fn fix(&self) -> Option<String> {
        Some(match self {
            LabError::Unknown { known, .. } => format!(
                "run one of: {} (`kindlab lab list`), or give a lab file's path",
                known.join(", ")
            ),
            LabError::Read { .. } => "check the lab file's path".into(),
            LabError::Invalid { fix, .. } => fix.clone(),
            LabError::NotReady { fix, .. } => fix.clone(),
            LabError::NotObserved { .. } => {
                "the cluster did not fail as the lab expects; `kindlab status` shows its state and `kindlab reset` restores it".into()
            }
            LabError::CannotApply { .. } => {
                "this lab does not fit the target; pick another (`kindlab lab list`) or another --target".into()
            }
            LabError::Needs { fix, .. } => fix.clone(),
            LabError::NoSession { .. } => "start one with `kindlab lab start NAME`".into(),
            LabError::SessionRunning { .. } => {
                "finish it (`kindlab lab check`), or give it up with `kindlab reset`".into()
            }
            LabError::EndedOnCluster { .. } => {
                "your namespace is back as the workspace declares it: start the next lab (`kindlab lab list`)".into()
            }
            LabError::NotRecovered { .. } => {
                "`kindlab lab check` says what is still wrong; `kindlab reset` restores the lab".into()
            }
            LabError::GuardrailMissing { rule, .. } => format!(
                "set `guardrails: {{{}: deny}}` in kindlab.yaml and run `kindlab up` (in a workshop room, ask the instructor: attendees cannot install policies)",
                camel(rule)
            ),
            LabError::Admitted { .. } => {
                "`kindlab reset` takes the change back; check the guardrails with `kindlab status`".into()
            }
        })
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            LabError::Unknown { .. } | LabError::Read { .. } | LabError::Invalid { .. } => {
                exit::BAD_INPUT
            }
            LabError::NotReady { .. } | LabError::NotRecovered { .. } => exit::UNHEALTHY,
            LabError::NotObserved { .. } => exit::TIMEOUT,
            LabError::CannotApply { .. } => exit::BAD_INPUT,
            LabError::Needs { .. } => exit::MISSING_PREREQUISITE,
            LabError::NoSession { .. }
            | LabError::SessionRunning { .. }
            | LabError::EndedOnCluster { .. } => exit::CONFLICT,
            LabError::GuardrailMissing { .. } => exit::MISSING_PREREQUISITE,
            LabError::Admitted { .. } => exit::UNHEALTHY,
        }
    }
}

/// `no-latest` -> `noLatest`, as kindlab.yaml spells a rule.
fn camel(rule: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in rule.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A duration written as `90s`, `5m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabDuration(pub Duration);

impl<'de> Deserialize<'de> for LabDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::cli::parse_duration(&text)
            .map(LabDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for LabDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", self.0.as_secs()))
    }
}

impl JsonSchema for LabDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+[smh]?$",
            "description": "A duration: 90s, 5m or 1h."
        })
    }
}

/// One lab of the catalogue.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabSpec {
    /// The name people type: `kindlab lab start bad-image-tag`.
    pub name: String,
    /// Its place in the workshop series (`kindlab lab list` sorts by it).
    pub order: u32,
    pub title: String,
    pub level: Level,
    /// About how long an attendee needs.
    pub minutes: u32,
    /// What the attendee reads.
    pub text: LabText,
    /// The workload the lab breaks, by default. `--target deployment/NAME -n NS --container C`
    /// points it at another.
    #[serde(default)]
    pub target: TargetDefaults,
    /// What the lab does to break the target, in order.
    #[serde(rename = "break")]
    pub breakage: Vec<Action>,
    /// What proves the break took effect.
    pub symptoms: Symptoms,
    /// The cause a correct diagnosis names (checked by `lab run`).
    #[serde(default)]
    pub diagnosis: Option<ExpectedDiagnosis>,
    /// Pointers for a stuck attendee, from gentle to explicit (`kindlab lab hint`).
    #[serde(default)]
    pub hints: Vec<String>,
    /// What fixes it (`kindlab lab solve`, and `lab run`'s fix phase).
    pub solution: Vec<Action>,
    /// What "fixed" means; by default all three.
    #[serde(default = "default_checks")]
    pub check: Vec<CheckKind>,
    /// How long the fix may take to show (rollout included).
    #[serde(default = "default_recover_within")]
    pub recover_within: LabDuration,
    /// Guardrails (`no-latest`, `registry`, `digest-in-production`) the cluster must enforce
    /// with `deny` for this lab; `lab start` and `lab run` stop with a one-line fix without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
}

fn default_checks() -> Vec<CheckKind> {
    vec![
        CheckKind::RolloutComplete,
        CheckKind::MatchesWorkspace,
        CheckKind::SymptomsGone,
    ]
}

fn default_recover_within() -> LabDuration {
    LabDuration(Duration::from_secs(180))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Beginner,
    Intermediate,
    Advanced,
}

/// The lab's text, as the lab text's authors write it. Commands may use `${namespace}`,
/// `${deployment}`, `${container}`, `${selector}`, `${service}`, `${overlay}`, `${image}`, and
/// where the container takes its settings from: `${env}` (its first environment variable set
/// from a ConfigMap or Secret key, else its first) and `${configMap}` (the first ConfigMap it
/// needs).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabText {
    /// One line: what happens in this lab.
    pub summary: String,
    pub goal: Vec<String>,
    pub steps: Vec<TextStep>,
    pub why: Vec<String>,
    pub prevent: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TextStep {
    pub title: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub commands: Vec<String>,
    /// What the attendee should see.
    #[serde(default)]
    pub expect: Option<String>,
}

/// The sample workspace's Deployment, unless the lab or the command line says otherwise.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetDefaults {
    pub namespace: String,
    pub deployment: String,
    pub container: String,
}

impl Default for TargetDefaults {
    fn default() -> Self {
        TargetDefaults {
            namespace: "dev".into(),
            deployment: "orders-api".into(),
            container: "api".into(),
        }
    }
}

/// One step of a break or a solution. Strings may use the placeholders of [`LabText`] and,
/// for images, `${repository}` (with registry), `${registry}`, `${name}` and `${tag}` of the
/// target container's image.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Action {
    /// Point the target container at another image (as `kubectl set image` does).
    SetImage(String),
    /// Merge these fields into the target container (server-side apply, the lab's field
    /// manager), e.g. `resources: {limits: {memory: 16Mi}}`. A resources change is kept valid
    /// on the target: the side it does not set follows (a request above a new limit comes
    /// down to it), within the namespace's LimitRange; a quota without room refuses it.
    PatchContainer(serde_json::Value),
    /// Merge these fields into the target Deployment, e.g. `spec: {replicas: 0}`.
    PatchDeployment(serde_json::Value),
    /// Merge fields into another object of the target's namespace.
    PatchObject(ObjectPatch),
    /// Remove an environment variable from the target container.
    RemoveEnv(String),
    /// Delete an object of the target's namespace.
    DeleteObject(ObjectRef),
    /// Create an object in the target's namespace (labelled as the lab's, so `reset` removes it).
    CreateObject(serde_json::Value),
    /// Restart the target's pods (as `kubectl rollout restart` does).
    Restart,
    /// Write this tag into the overlay's images entry for the target's image, and commit it.
    CommitImageTag(String),
    /// Revert the commit the lab's break made (`git revert`).
    GitRevert,
    /// GitOps mode: push HEAD to the lab's Git server (`git push kindlab`), ask the
    /// controller to sync, and wait until it has tried that commit (applied, or failed to).
    PushGit,
    /// Apply the workspace's desired state (what `kubectl apply -k <overlay>` does), taking
    /// back every field the lab's break set.
    ApplyWorkspace,
    /// This action must be refused at admission (a guardrail's lesson): the refusal is the
    /// break, and changes nothing. Admitted, the lab stops: the cluster does not guard.
    Refused(Box<Action>),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    /// `Service`, `ConfigMap`, ... (core or apps kinds, or `apiVersion` too).
    pub kind: String,
    #[serde(default)]
    pub api_version: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectPatch {
    pub kind: String,
    #[serde(default)]
    pub api_version: Option<String>,
    pub name: String,
    /// The fields to set, as in the object (`spec: {selector: {app: orders}}`).
    pub patch: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Symptoms {
    /// How long the symptoms may take to show after the break.
    pub within: LabDuration,
    /// Every one of these must be seen (in any order).
    pub all: Vec<Symptom>,
}

/// Something observable that proves the break. Pod matchers look at the pods of the
/// Deployment's current ReplicaSet (its pod-template-hash), not at pods of older ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Symptom {
    /// A container waiting with this reason (ErrImagePull, CrashLoopBackOff, ...).
    WaitingReason(String),
    /// A container that terminated (now or last time) with this reason (OOMKilled, Error).
    TerminatedReason(String),
    /// A container restarted at least this many times.
    RestartCount(u32),
    /// A pod condition, e.g. `{type: Ready, status: "False"}`.
    PodCondition(ConditionMatch),
    /// An event about a pod, e.g. `{reason: Unhealthy}`.
    Event(EventMatch),
    /// A condition of the Deployment, e.g. `{type: Progressing, reason: ProgressDeadlineExceeded}`.
    DeploymentCondition(ConditionMatch),
    /// This Service (placeholders allowed) selects no ready pod.
    ServiceWithoutEndpoints(String),
    /// A `refused` break was refused with a message containing this text (a guardrail's
    /// name, an image). Seen at the break; it leaves nothing behind to go away.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionMatch {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventMatch {
    pub reason: String,
    /// `Warning` or `Normal`; any when absent.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectedDiagnosis {
    /// The cause's name as `kindlab diagnose --output json` prints it (`tag-not-found`).
    pub cause: crate::diagnose::CauseKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CheckKind {
    /// The Deployment's rollout is complete (as `kubectl rollout status` judges it).
    RolloutComplete,
    /// The live objects are what the workspace declares: nothing the lab set remains.
    MatchesWorkspace,
    /// None of the lab's symptoms shows any more.
    SymptomsGone,
    /// GitOps mode: HEAD is pushed and the controller applied it ("fixed in Git, not synced
    /// yet" is not fixed). Added by itself to every lab that uses `pushGit`.
    SyncedFromGit,
}

/// Parses a lab file; `file` names it in errors (`file:line:col: message`, and the fix).
impl LabSpec {
    /// The lab breaks and fixes through the GitOps controller (a `pushGit` action).
    pub fn uses_git_push(&self) -> bool {
        self.breakage
            .iter()
            .chain(&self.solution)
            .any(|a| matches!(a, Action::PushGit))
    }
}

pub fn parse(text: &str, file: &str) -> Result<LabSpec, LabError> {
    let spec: LabSpec = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column, message) = crate::workspace::yaml_error_position(&e);
        LabError::Invalid {
            file: file.to_string(),
            line,
            column,
            fix: invalid_fix(&message),
            message,
        }
    })?;
    validate(&spec, file)?;
    Ok(spec)
}

fn invalid_fix(message: &str) -> String {
    if let Some(near) = nearest_variant(message) {
        return format!("did you mean `{near}`? (`kindlab lab schema` lists every value)");
    }
    if message.contains("unknown field") || message.contains("unknown variant") {
        "use a key the lab schema knows (`kindlab lab schema` prints it; labs/*.yaml are examples)"
            .into()
    } else {
        "fix the YAML at that position; `kindlab lab show bad-image-tag --source` prints a valid lab"
            .into()
    }
}

/// For serde's "unknown variant `x`, expected one of `a`, `b`": the expected value nearest
/// to what was written, when one is near enough to be the one meant.
fn nearest_variant(message: &str) -> Option<&str> {
    let rest = message.split("unknown variant `").nth(1)?;
    let (written, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected one of ")?.1;
    let expected = expected.split(" at line ").next().unwrap_or(expected);
    expected
        .split(", ")
        .map(|v| v.trim_matches('`'))
        .map(|v| (strsim::damerau_levenshtein(written, v), v))
        .filter(|(distance, _)| *distance <= written.len().max(3) / 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, v)| v)
}

/// Checks what the types cannot say.
fn validate(spec: &LabSpec, file: &str) -> Result<(), LabError> {
    let invalid = |message: String, fix: &str| LabError::Invalid {
        file: file.to_string(),
        line: 1,
        column: 1,
        message,
        fix: fix.to_string(),
    };
    let name_ok = !spec.name.is_empty()
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(invalid(
            format!("name {:?} is not a lab name", spec.name),
            "use lower-case letters, digits and '-'",
        ));
    }
    if spec.breakage.is_empty() {
        return Err(invalid("break is empty".into(), "say what the lab breaks"));
    }
    if spec.solution.is_empty() {
        return Err(invalid(
            "solution is empty".into(),
            "say what fixes it (e.g. `- applyWorkspace`)",
        ));
    }
    if spec.symptoms.all.is_empty() {
        return Err(invalid(
            "symptoms.all is empty".into(),
            "say what proves the break took effect",
        ));
    }
    if spec.breakage.contains(&Action::GitRevert) {
        return Err(invalid(
            "gitRevert cannot break anything".into(),
            "use gitRevert in the solution",
        ));
    }
    if let Some(unknown) = spec
        .guardrails
        .iter()
        .find(|g| crate::guardrails::Rule::from_name(g).is_none())
    {
        return Err(invalid(
            format!("guardrails names {unknown:?}, which is no guardrail"),
            "use registry, no-latest or digest-in-production",
        ));
    }
    // A refusal is only seen where the lab expects one.
    let refuses = spec
        .breakage
        .iter()
        .any(|a| matches!(a, Action::Refused(_)));
    let expects_refusal = spec
        .symptoms
        .all
        .iter()
        .any(|s| matches!(s, Symptom::Refused(_)));
    if expects_refusal && !refuses {
        return Err(invalid(
            "symptoms expect a refusal, and no break step is `refused`".into(),
            "wrap the break step that the cluster refuses in `refused:`",
        ));
    }
    Ok(())
}

/// Every built-in lab, sorted by `order`. A built-in lab that fails to parse is an error,
/// never silently dropped (a test parses them all).
pub fn builtin_labs() -> Result<Vec<LabSpec>, LabError> {
    let mut labs = BUILTIN
        .files()
        .filter(|f| f.path().to_string_lossy().ends_with(LAB_SUFFIX))
        .map(|f| {
            let file = format!("labs/{}", f.path().display());
            let text = f.contents_utf8().ok_or_else(|| LabError::Invalid {
                file: file.clone(),
                line: 1,
                column: 1,
                message: "not UTF-8".into(),
                fix: "save the lab file as UTF-8".into(),
            })?;
            parse(text, &file)
        })
        .collect::<Result<Vec<_>, _>>()?;
    labs.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
    Ok(labs)
}

/// The YAML source of a built-in lab.
pub fn builtin_source(name: &str) -> Option<&'static str> {
    BUILTIN
        .get_file(format!("{name}{LAB_SUFFIX}"))
        .and_then(|f| f.contents_utf8())
}

/// A built-in lab by name, or a lab file by path.
pub fn load_lab(name_or_path: &str) -> Result<LabSpec, LabError> {
    let path = Path::new(name_or_path);
    if name_or_path.ends_with(".yaml") || name_or_path.ends_with(".yml") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|source| LabError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        return parse(&text, name_or_path);
    }
    let labs = builtin_labs()?;
    let known = labs.iter().map(|l| l.name.clone()).collect();
    labs.into_iter()
        .find(|l| l.name == name_or_path)
        .ok_or(LabError::Unknown {
            name: name_or_path.to_string(),
            known,
        })
}

/// The JSON Schema of lab files.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(LabSpec)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_lab_parses() {
        let labs = builtin_labs().unwrap();
        let files = BUILTIN
            .files()
            .filter(|f| f.path().to_string_lossy().ends_with(LAB_SUFFIX))
            .count();
        assert_eq!(labs.len(), files);
        assert!(labs.len() >= 7, "the catalogue has {} labs", labs.len());
        for lab in &labs {
            assert_eq!(
                builtin_source(&lab.name).map(|s| parse(s, "x").unwrap().name),
                Some(lab.name.clone()),
                "labs/{}.yaml must be named after its lab",
                lab.name
            );
        }
        let mut orders: Vec<u32> = labs.iter().map(|l| l.order).collect();
        orders.dedup();
        assert_eq!(orders.len(), labs.len(), "two labs share an order");
    }

    #[test]
    fn the_lab_text_is_lab_five() {
        let lab = load_lab("bad-image-tag").unwrap();
        assert_eq!(lab.order, 5);
        assert_eq!(lab.target.deployment, "orders-api");
        assert!(matches!(&lab.breakage[0], Action::SetImage(i) if i.ends_with(":nonexistent")));
        assert_eq!(
            lab.symptoms.all,
            vec![
                Symptom::WaitingReason("ErrImagePull".into()),
                Symptom::WaitingReason("ImagePullBackOff".into())
            ]
        );
    }

    #[test]
    fn unknown_lab_lists_the_known_ones() {
        match load_lab("nope") {
            Err(e @ LabError::Unknown { .. }) => {
                assert!(e.fix().unwrap().contains("bad-image-tag"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_malformed_lab_names_file_line_and_fix() {
        let source = builtin_source("bad-image-tag").unwrap();
        let broken = source.replacen("minutes:", "minutes: 10\nduration:", 1);
        match parse(&broken, "my-lab.yaml") {
            Err(e @ LabError::Invalid { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with("my-lab.yaml:"), "{text}");
                assert!(text.contains("duration"), "{text}");
                assert!(e.fix().unwrap().contains("kindlab lab schema"));
            }
            other => panic!("{other:?}"),
        }
        let bad_duration = source.replace("within: 120s", "within: soon");
        assert!(parse(&bad_duration, "x.yaml").is_err());
        let unknown_action = source.replace("- setImage:", "- setImagez:");
        assert!(parse(&unknown_action, "x.yaml").is_err());
    }

    #[test]
    fn a_mistyped_cause_is_refused_at_parse_with_its_line_and_the_nearest_cause() {
        let source = builtin_source("bad-image-tag").unwrap();
        let line = source
            .lines()
            .position(|l| l.trim() == "cause: tag-not-found")
            .unwrap()
            + 1;
        let typo = source.replace("cause: tag-not-found", "cause: tag-not-foudn");
        match parse(&typo, "my-lab.yaml") {
            Err(e @ LabError::Invalid { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(&format!("my-lab.yaml:{line}:")), "{text}");
                assert!(text.contains("tag-not-foudn"), "{text}");
                assert_eq!(
                    e.fix().as_deref(),
                    Some("did you mean `tag-not-found`? (`kindlab lab schema` lists every value)")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_shipped_schema_is_the_generated_one() {
        let shipped: serde_json::Value =
            serde_json::from_str(include_str!("../../labs/lab.schema.json")).unwrap();
        assert_eq!(
            shipped,
            schema(),
            "labs/lab.schema.json is stale: regenerate it with `kindlab lab schema > labs/lab.schema.json`"
        );
    }
}

crate::error::failure_from_inherent!(LabError);
