//! What the gateway knows about the AWS Organization: a snapshot of its tree, refreshed in the
//! background from AWS Organizations, and where a share target sits in it.
//!
//! Requests read the snapshot (swapped whole on refresh) and never call Organizations for a
//! target it holds. A target it does not hold (an account that joined or moved since the last
//! refresh) is looked up on demand with ListParents up to the root, within `lookup_timeout`,
//! and remembered until the next refresh; an unknown account is remembered as such for a
//! minute. When nothing can be learned the target stays unresolved (`in_organization: null`)
//! and policy fails closed.

pub mod snapshot;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_organizations::Client;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::ParentType;
use tokio::sync::watch;

use crate::config::OrganizationsConfig;
use crate::validate::{ShareTarget, Target};
pub use snapshot::{Lookup, Node, Resolution, Snapshot};

/// How long an account or OU that Organizations does not know is remembered as unknown.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Attempts per Organizations call while it answers TooManyRequestsException.
const THROTTLE_ATTEMPTS: u32 = 6;
/// The first wait after a throttled call; doubled each time.
const THROTTLE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between refresh attempts after failures.
const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(60);
/// On-demand answers kept at most: only authenticated share requests trigger lookups, but a
/// caller naming many different accounts must not grow memory without bound.
const MAX_LEARNED: usize = 10_000;
/// On-demand lookups running at once. Organizations' request quota is shared by everything in
/// the management account; a caller naming many unknown accounts must not spend it (the rest
/// wait within `lookup_timeout`, then stay unresolved and fail closed).
const CONCURRENT_LOOKUPS: usize = 2;

/// Why the tree or a target could not be read.
#[derive(Debug, thiserror::Error)]
#[error("AWS Organizations: {0}")]
pub struct OrganizationError(String);

/// The organization facts for the policy input's `organization` object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub id: Option<String>,
    pub root: Option<String>,
    pub snapshot_age_seconds: Option<f64>,
}

/// Counters the view keeps for metrics.
#[derive(Clone)]
pub struct OrganizationMetrics {
    pub accounts: prometheus::IntGauge,
    pub lookups: prometheus::IntCounterVec,
}

enum Learned {
    Found(Resolution),
    NotFound(Instant),
}

/// The live view: the latest snapshot and what was learned since.
pub struct OrganizationView {
    client: Client,
    snapshot: ArcSwapOption<Snapshot>,
    learned: Mutex<HashMap<String, Learned>>,
    last_error: Mutex<Option<String>>,
    refresh_interval: Duration,
    lookup_timeout: Duration,
    lookups: tokio::sync::Semaphore,
    metrics: Option<OrganizationMetrics>,
}

/// What readiness shows about the view.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub snapshot_age_seconds: Option<f64>,
    pub accounts: Option<usize>,
    pub last_error: Option<String>,
}

impl OrganizationView {
    /// A view reading Organizations with `credentials`, or with a role assumed with them.
    pub async fn new(
        config: &OrganizationsConfig,
        credentials: SharedCredentialsProvider,
        metrics: Option<OrganizationMetrics>,
    ) -> OrganizationView {
        // Organizations has one endpoint, in us-east-1 (aws partition).
        let region = aws_config::Region::new("us-east-1");
        let credentials = match &config.role_arn {
            Some(role) => SharedCredentialsProvider::new(
                aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("waguard-organizations")
                    .region(region.clone())
                    .build_from_provider(credentials)
                    .await,
            ),
            None => credentials,
        };
        let mut builder = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        OrganizationView {
            client: Client::from_conf(builder.build()),
            snapshot: ArcSwapOption::empty(),
            learned: Mutex::new(HashMap::new()),
            last_error: Mutex::new(None),
            refresh_interval: config.refresh_interval,
            lookup_timeout: config.lookup_timeout,
            lookups: tokio::sync::Semaphore::new(CONCURRENT_LOOKUPS),
            metrics,
        }
    }

    /// Reads the whole tree and swaps it in; what was learned on demand is dropped (the new
    /// snapshot has it).
    pub async fn refresh(&self) -> Result<(), OrganizationError> {
        let result = self.read_tree().await;
        match &result {
            Ok(snapshot) => {
                if let Some(m) = &self.metrics {
                    m.accounts.set(snapshot.accounts.len() as i64);
                }
                tracing::info!(
                    organization = %snapshot.id,
                    accounts = snapshot.accounts.len(),
                    ous = snapshot.ous.len(),
                    "organization snapshot refreshed"
                );
                self.snapshot
                    .store(Some(std::sync::Arc::new(snapshot.clone())));
                if let Ok(mut l) = self.learned.lock() {
                    l.clear();
                }
                self.set_error(None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "organization snapshot refresh failed; keeping the last one");
                self.set_error(Some(e.to_string()));
            }
        }
        result.map(|_| ())
    }

    /// Refreshes every `refresh_interval` until `stopped`; after a failure, sooner, with
    /// backoff.
    /// `first` is the outcome of the refresh made at startup.
    pub async fn run(self: std::sync::Arc<Self>, first: bool, mut stopped: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        let mut outcome = Some(first);
        loop {
            let ok = match outcome.take() {
                Some(ok) => ok,
                None => self.refresh().await.is_ok(),
            };
            let wait = match ok {
                true => {
                    backoff = Duration::from_secs(1);
                    self.refresh_interval
                }
                false => {
                    let wait = backoff.min(self.refresh_interval);
                    backoff = (backoff * 2).min(MAX_REFRESH_BACKOFF);
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// How long the startup refresh may take before the gateway serves without a snapshot.
    pub fn startup_timeout(&self) -> Duration {
        (self.lookup_timeout * 5).max(Duration::from_secs(10))
    }

    /// Where `target` sits in the organization; unresolved (`in_organization: None`) when
    /// neither the snapshot nor Organizations could say.
    pub async fn resolve(&self, target: &Target) -> Resolution {
        let Some(snapshot) = self.snapshot.load_full() else {
            self.count("no_snapshot");
            return Resolution::default();
        };
        let missing = match snapshot.lookup(target) {
            Lookup::Known(r) => {
                self.count("snapshot");
                return r;
            }
            Lookup::Missing(id) => id,
        };
        if let Some(r) = self.learned(&missing) {
            self.count("cache");
            return self.for_target(target, r);
        }
        let bounded = async {
            let _permit = self.lookups.acquire().await;
            match self.learned(&missing) {
                // Another request learned it while this one waited for a permit.
                Some(r) if r.in_organization == Some(false) => Ok(None),
                Some(r) => Ok(Some(r)),
                None => self.look_up(&snapshot, &missing).await,
            }
        };
        match tokio::time::timeout(self.lookup_timeout, bounded).await {
            Ok(Ok(Some(r))) => {
                self.count("found");
                self.learn(missing, Learned::Found(r.clone()));
                self.for_target(target, r)
            }
            Ok(Ok(None)) => {
                self.count("not_found");
                self.learn(missing, Learned::NotFound(Instant::now() + NEGATIVE_TTL));
                Resolution::outside()
            }
            Ok(Err(e)) => {
                self.count("error");
                tracing::warn!(target = %missing, error = %e, "organization lookup failed");
                Resolution::default()
            }
            Err(_) => {
                self.count("timeout");
                tracing::warn!(target = %missing, timeout_s = self.lookup_timeout.as_secs_f64(), "organization lookup timed out");
                Resolution::default()
            }
        }
    }

    /// The `organization` object of the policy input.
    pub fn context(&self) -> Context {
        match self.snapshot.load_full() {
            Some(s) => Context {
                id: Some(s.id.clone()),
                root: Some(s.root.clone()),
                snapshot_age_seconds: Some(s.age().as_secs_f64()),
            },
            None => Context::default(),
        }
    }

    pub fn status(&self) -> Status {
        let snapshot = self.snapshot.load_full();
        Status {
            snapshot_age_seconds: snapshot.as_ref().map(|s| s.age().as_secs_f64()),
            accounts: snapshot.as_ref().map(|s| s.accounts.len()),
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    fn set_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = error;
        }
    }

    fn count(&self, result: &str) {
        if let Some(m) = &self.metrics {
            m.lookups.with_label_values(&[result]).inc();
        }
    }

    fn learned(&self, id: &str) -> Option<Resolution> {
        let mut learned = self.learned.lock().ok()?;
        match learned.get(id)? {
            Learned::Found(r) => Some(r.clone()),
            Learned::NotFound(until) if *until > Instant::now() => Some(Resolution::outside()),
            Learned::NotFound(_) => {
                learned.remove(id);
                None
            }
        }
    }

    fn learn(&self, id: String, what: Learned) {
        if let Ok(mut learned) = self.learned.lock() {
            if learned.len() >= MAX_LEARNED {
                learned.clear();
            }
            learned.insert(id, what);
        }
    }

    /// An IAM principal's account was looked up: its facts are the principal's.
    fn for_target(&self, target: &Target, r: Resolution) -> Resolution {
        match target.kind {
            ShareTarget::Account | ShareTarget::IamPrincipal | ShareTarget::Ou => r,
            _ => Resolution::default(),
        }
    }

    /// Asks Organizations where an account or OU (`ou-…`) sits: `None` when it is not in the
    /// organization.
    async fn look_up(
        &self,
        snapshot: &Snapshot,
        id: &str,
    ) -> Result<Option<Resolution>, OrganizationError> {
        let is_ou = id.starts_with("ou-");
        let (name, status) = if is_ou {
            match throttled(|| {
                self.client
                    .describe_organizational_unit()
                    .organizational_unit_id(id)
                    .send()
            })
            .await
            {
                Ok(out) => (
                    out.organizational_unit()
                        .and_then(|o| o.name())
                        .map(str::to_string),
                    None,
                ),
                Err(e) if e.code() == Some("OrganizationalUnitNotFoundException") => {
                    return Ok(None);
                }
                Err(e) => return Err(sdk_error("DescribeOrganizationalUnit", &e)),
            }
        } else {
            match throttled(|| self.client.describe_account().account_id(id).send()).await {
                Ok(out) => {
                    let account = out.account();
                    #[allow(deprecated)] // `Status` is what SUSPENDED accounts are known by.
                    let status = account
                        .and_then(|a| a.status())
                        .map(|s| s.as_str().to_string());
                    (account.and_then(|a| a.name()).map(str::to_string), status)
                }
                Err(e) if e.code() == Some("AccountNotFoundException") => return Ok(None),
                Err(e) => return Err(sdk_error("DescribeAccount", &e)),
            }
        };
        // Walk up: ListParents, then the parent's name, until the root.
        let mut ids = Vec::new();
        let mut names = Vec::new();
        let mut child = id.to_string();
        for _ in 0..16 {
            let out = match throttled(|| self.client.list_parents().child_id(&child).send()).await {
                Ok(out) => out,
                Err(e) if e.code() == Some("ChildNotFoundException") => return Ok(None),
                Err(e) => return Err(sdk_error("ListParents", &e)),
            };
            let Some(parent) = out.parents().first() else {
                return Err(OrganizationError(format!("{child} has no parent")));
            };
            let parent_id = parent.id().unwrap_or_default().to_string();
            if parent.r#type() == Some(&ParentType::Root) {
                ids.push(parent_id);
                names.push("Root".to_string());
                ids.reverse();
                names.reverse();
                if is_ou {
                    ids.push(id.to_string());
                    names.push(name.clone().unwrap_or_default());
                }
                let in_organization = ids.first().map(|r| *r == snapshot.root);
                return Ok(Some(Resolution {
                    in_organization,
                    ou_path: ids,
                    ou_path_names: names,
                    name,
                    status,
                }));
            }
            let parent_name = match snapshot.ous.get(&parent_id) {
                Some(n) => n.name.clone(),
                None => throttled(|| {
                    self.client
                        .describe_organizational_unit()
                        .organizational_unit_id(&parent_id)
                        .send()
                })
                .await
                .map_err(|e| sdk_error("DescribeOrganizationalUnit", &e))?
                .organizational_unit()
                .and_then(|o| o.name())
                .unwrap_or_default()
                .to_string(),
            };
            ids.push(parent_id.clone());
            names.push(parent_name);
            child = parent_id;
        }
        Err(OrganizationError(format!(
            "{id} is nested deeper than an organization allows"
        )))
    }

    /// The whole tree: DescribeOrganization, ListRoots, then every OU and account level by
    /// level (paginated).
    async fn read_tree(&self) -> Result<Snapshot, OrganizationError> {
        let org = throttled(|| self.client.describe_organization().send())
            .await
            .map_err(|e| sdk_error("DescribeOrganization", &e))?;
        let org = org
            .organization()
            .ok_or_else(|| OrganizationError("DescribeOrganization returned nothing".into()))?;
        let id = org.id().unwrap_or_default().to_string();
        let roots = self
            .paginate("ListRoots", |token| async move {
                self.client
                    .list_roots()
                    .set_next_token(token)
                    .send()
                    .await
                    .map(|out| {
                        let ids: Vec<String> = out
                            .roots()
                            .iter()
                            .map(|r| r.id().unwrap_or_default().to_string())
                            .collect();
                        (ids, out.next_token().map(str::to_string))
                    })
            })
            .await?;
        let root = roots
            .into_iter()
            .next()
            .ok_or_else(|| OrganizationError("ListRoots returned no root".into()))?;
        let mut ous = HashMap::new();
        let mut accounts = HashMap::new();
        let mut parents = vec![root.clone()];
        let mut depth = 0;
        while !parents.is_empty() && depth < 16 {
            depth += 1;
            let mut next = Vec::new();
            for parent in parents {
                let p = parent.clone();
                let children = self
                    .paginate("ListOrganizationalUnitsForParent", |token| {
                        let p = p.clone();
                        async move {
                            self.client
                                .list_organizational_units_for_parent()
                                .parent_id(&p)
                                .set_next_token(token)
                                .send()
                                .await
                                .map(|out| {
                                    let ous: Vec<(String, Node)> = out
                                        .organizational_units()
                                        .iter()
                                        .map(|o| {
                                            (
                                                o.id().unwrap_or_default().to_string(),
                                                Node {
                                                    name: o.name().unwrap_or_default().to_string(),
                                                    parent: p.clone(),
                                                    status: None,
                                                },
                                            )
                                        })
                                        .collect();
                                    (ous, out.next_token().map(str::to_string))
                                })
                        }
                    })
                    .await?;
                let p = parent.clone();
                let members = self
                    .paginate("ListAccountsForParent", |token| {
                        let p = p.clone();
                        async move {
                            self.client
                                .list_accounts_for_parent()
                                .parent_id(&p)
                                .set_next_token(token)
                                .send()
                                .await
                                .map(|out| {
                                    #[allow(deprecated)] // `Status` says SUSPENDED.
                                    let accounts: Vec<(
                                        String,
                                        Node,
                                    )> = out
                                        .accounts()
                                        .iter()
                                        .map(|a| {
                                            (
                                                a.id().unwrap_or_default().to_string(),
                                                Node {
                                                    name: a.name().unwrap_or_default().to_string(),
                                                    parent: p.clone(),
                                                    status: a
                                                        .status()
                                                        .map(|s| s.as_str().to_string()),
                                                },
                                            )
                                        })
                                        .collect();
                                    (accounts, out.next_token().map(str::to_string))
                                })
                        }
                    })
                    .await?;
                next.extend(children.iter().map(|(id, _)| id.clone()));
                ous.extend(children);
                accounts.extend(members);
            }
            parents = next;
        }
        Ok(Snapshot {
            id,
            root,
            management_account: org.master_account_id().map(str::to_string),
            ous,
            accounts,
            taken: SystemTime::now(),
        })
    }

    /// Collects every page of a list operation, each page retried while throttled.
    async fn paginate<'a, F, Fut, T, E>(
        &'a self,
        operation: &str,
        page: F,
    ) -> Result<Vec<T>, OrganizationError>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), E>> + 'a,
        E: ProvideErrorMetadata + std::fmt::Display,
    {
        let mut all = Vec::new();
        let mut token = None;
        // A service that kept answering with a next token would loop forever.
        for _ in 0..100_000 {
            let (items, next) = throttled(|| page(token.clone()))
                .await
                .map_err(|e| sdk_error(operation, &e))?;
            all.extend(items);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
        Err(OrganizationError(format!("{operation}: too many pages")))
    }
}

/// Runs `call`, waiting and retrying while Organizations answers TooManyRequestsException
/// (it throttles per management account, shared with everything else that calls it).
async fn throttled<F, Fut, T, E>(call: F) -> Result<T, E>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: ProvideErrorMetadata,
{
    let mut wait = THROTTLE_BACKOFF;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e)
                if e.code() == Some("TooManyRequestsException") && attempt < THROTTLE_ATTEMPTS =>
            {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn sdk_error(
    operation: &str,
    e: &(impl ProvideErrorMetadata + std::fmt::Display),
) -> OrganizationError {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => OrganizationError(format!("{operation}: {code}: {message}")),
        (Some(code), None) => OrganizationError(format!("{operation}: {code}")),
        _ => OrganizationError(format!("{operation}: {e}")),
    }
}
