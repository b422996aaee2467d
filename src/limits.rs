//! `[limits]`: token buckets per caller (access key) and per team, with per-operation
//! overrides. Checked right after a request is authenticated and routed, before its body is
//! parsed or policy is asked. Buckets live in this replica's memory: limits are per replica.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Rates in requests per second, bursts in requests. A rate without a burst gets a burst of
/// one second's worth (at least 1); unset means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitValues {
    #[serde(default)]
    pub per_caller_rate: Option<f64>,
    #[serde(default)]
    pub per_caller_burst: Option<f64>,
    #[serde(default)]
    pub per_team_rate: Option<f64>,
    #[serde(default)]
    pub per_team_burst: Option<f64>,
}

/// The `[limits]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub per_caller_rate: Option<f64>,
    #[serde(default)]
    pub per_caller_burst: Option<f64>,
    #[serde(default)]
    pub per_team_rate: Option<f64>,
    #[serde(default)]
    pub per_team_burst: Option<f64>,
    /// `[limits.operations.<OperationName>]`: replaces the defaults above for one operation,
    /// key by key, with buckets of its own.
    #[serde(default)]
    pub operations: BTreeMap<String, LimitValues>,
}

impl LimitsConfig {
    fn defaults(&self) -> LimitValues {
        LimitValues {
            per_caller_rate: self.per_caller_rate,
            per_caller_burst: self.per_caller_burst,
            per_team_rate: self.per_team_rate,
            per_team_burst: self.per_team_burst,
        }
    }

    /// Checks every value; the error names the key (`limits.operations.X.per_team_rate`).
    pub fn check(&self) -> Result<(), (String, String)> {
        rules(&self.defaults(), "limits")?;
        for (op, values) in &self.operations {
            let at = format!("limits.operations.{op}");
            if crate::operation::by_name(op).is_none() {
                return Err((at, "is not a Well-Architected operation".into()));
            }
            rules(values, &at)?;
        }
        Ok(())
    }
}

/// One token bucket's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rule {
    rate: f64,
    burst: f64,
}

fn rule(
    rate: Option<f64>,
    burst: Option<f64>,
    at: &str,
    who: &str,
) -> Result<Option<Rule>, (String, String)> {
    let key = |k: &str| format!("{at}.per_{who}_{k}");
    match (rate, burst) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err((key("burst"), format!("needs per_{who}_rate"))),
        (Some(rate), burst) => {
            if !(rate.is_finite() && rate > 0.0) {
                return Err((
                    key("rate"),
                    "must be a number of requests per second above 0".into(),
                ));
            }
            let burst = burst.unwrap_or(rate.ceil().max(1.0));
            if !(burst.is_finite() && burst >= 1.0) {
                return Err((key("burst"), "must be at least 1".into()));
            }
            Ok(Some(Rule { rate, burst }))
        }
    }
}

/// The caller and team rules a set of values defines.
fn rules(v: &LimitValues, at: &str) -> Result<(Option<Rule>, Option<Rule>), (String, String)> {
    Ok((
        rule(v.per_caller_rate, v.per_caller_burst, at, "caller")?,
        rule(v.per_team_rate, v.per_team_burst, at, "team")?,
    ))
}

/// Which bucket ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Caller,
    Team,
}

impl Exceeded {
    pub fn as_str(self) -> &'static str {
        match self {
            Exceeded::Caller => "caller",
            Exceeded::Team => "team",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Caller(String),
    Team(String),
}

/// A bucket: shared by all operations without an override (`operation: None`), or one
/// operation's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BucketKey {
    owner: Owner,
    operation: Option<&'static str>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets beyond this many are pruned of full ones (they equal a fresh bucket).
const PRUNE_ABOVE: usize = 10_000;

/// Applies `[limits]`.
#[derive(Debug)]
pub struct Limiter {
    caller: Option<Rule>,
    team: Option<Rule>,
    /// Per operation: the caller and team rules that replace the defaults, and whether each
    /// was overridden (then its bucket is the operation's own).
    operations: HashMap<&'static str, [(Option<Rule>, bool); 2]>,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl Limiter {
    /// Builds the limiter; call [`LimitsConfig::check`] first (invalid values are unlimited).
    pub fn new(config: &LimitsConfig) -> Limiter {
        let (caller, team) = rules(&config.defaults(), "limits").unwrap_or((None, None));
        let mut operations = HashMap::new();
        for (name, v) in &config.operations {
            let Some(spec) = crate::operation::by_name(name) else {
                continue;
            };
            let (c, t) = rules(v, "limits").unwrap_or((None, None));
            let caller_set = v.per_caller_rate.is_some();
            let team_set = v.per_team_rate.is_some();
            operations.insert(
                spec.name,
                [
                    (if caller_set { c } else { caller }, caller_set),
                    (if team_set { t } else { team }, team_set),
                ],
            );
        }
        Limiter {
            caller,
            team,
            operations,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any limit is configured at all.
    pub fn is_unlimited(&self) -> bool {
        self.caller.is_none()
            && self.team.is_none()
            && self
                .operations
                .values()
                .all(|r| r[0].0.is_none() && r[1].0.is_none())
    }

    /// Takes one token from the caller's and the team's bucket for `operation`, or none if
    /// either is empty; then says which was empty and when a token will be there.
    pub fn check(
        &self,
        access_key_id: &str,
        team: &str,
        operation: &'static str,
    ) -> Result<(), (Exceeded, Duration)> {
        self.check_at(access_key_id, team, operation, Instant::now())
    }

    fn check_at(
        &self,
        access_key_id: &str,
        team: &str,
        operation: &'static str,
        now: Instant,
    ) -> Result<(), (Exceeded, Duration)> {
        let [(caller_rule, caller_own), (team_rule, team_own)] = self
            .operations
            .get(operation)
            .copied()
            .unwrap_or([(self.caller, false), (self.team, false)]);
        let mut wanted: Vec<(BucketKey, Rule, Exceeded)> = Vec::with_capacity(2);
        if let Some(r) = caller_rule {
            let key = BucketKey {
                owner: Owner::Caller(access_key_id.to_string()),
                operation: caller_own.then_some(operation),
            };
            wanted.push((key, r, Exceeded::Caller));
        }
        if let Some(r) = team_rule {
            let key = BucketKey {
                owner: Owner::Team(team.to_string()),
                operation: team_own.then_some(operation),
            };
            wanted.push((key, r, Exceeded::Team));
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panic while holding the lock is a bug; fail closed for limited operations.
            return Err((Exceeded::Caller, Duration::from_secs(1)));
        };
        // Refill, then take from both or from neither.
        for (key, rule, exceeded) in &wanted {
            let bucket = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: rule.burst,
                at: now,
            });
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rule.rate).min(rule.burst);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rule.rate);
                return Err((*exceeded, wait));
            }
        }
        for (key, _, _) in &wanted {
            if let Some(b) = buckets.get_mut(key) {
                b.tokens -= 1.0;
            }
        }
        if buckets.len() > PRUNE_ABOVE {
            let rule_of = |k: &BucketKey| -> Option<Rule> {
                let per_op = k.operation.and_then(|op| self.operations.get(op));
                match (&k.owner, per_op) {
                    (Owner::Caller(_), Some(r)) => r[0].0,
                    (Owner::Team(_), Some(r)) => r[1].0,
                    (Owner::Caller(_), None) => self.caller,
                    (Owner::Team(_), None) => self.team,
                }
            };
            buckets.retain(|k, b| {
                rule_of(k).is_some_and(|r| {
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * r.rate < r.burst
                })
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> LimitsConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_caller_gets_its_burst_then_its_rate() {
        let l = Limiter::new(&config("per_caller_rate = 2\nper_caller_burst = 3"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(
                l.check_at("AK1", "payments", "ListTemplateShares", t0)
                    .is_ok()
            );
        }
        let (which, wait) = l
            .check_at("AK1", "payments", "ListTemplateShares", t0)
            .unwrap_err();
        assert_eq!(which, Exceeded::Caller);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(
            l.check_at("AK2", "payments", "ListTemplateShares", t0)
                .is_ok(),
            "other callers have their own bucket"
        );
        let t1 = t0 + Duration::from_millis(500);
        assert!(
            l.check_at("AK1", "payments", "ListTemplateShares", t1)
                .is_ok()
        );
        assert!(
            l.check_at("AK1", "payments", "ListTemplateShares", t1)
                .is_err()
        );
    }

    #[test]
    fn a_team_shares_one_bucket_and_a_refusal_takes_no_token() {
        let l = Limiter::new(&config(
            "per_caller_rate = 1\nper_caller_burst = 2\nper_team_rate = 1\nper_team_burst = 3",
        ));
        let t0 = Instant::now();
        assert!(
            l.check_at("AK1", "payments", "GetReviewTemplate", t0)
                .is_ok()
        );
        assert!(
            l.check_at("AK1", "payments", "GetReviewTemplate", t0)
                .is_ok()
        );
        assert_eq!(
            l.check_at("AK1", "payments", "GetReviewTemplate", t0)
                .unwrap_err()
                .0,
            Exceeded::Caller
        );
        // The caller's refusal did not spend the team's third token.
        assert!(
            l.check_at("AK2", "payments", "GetReviewTemplate", t0)
                .is_ok()
        );
        assert_eq!(
            l.check_at("AK3", "payments", "GetReviewTemplate", t0)
                .unwrap_err()
                .0,
            Exceeded::Team
        );
        assert!(
            l.check_at("AK3", "security", "GetReviewTemplate", t0)
                .is_ok()
        );
    }

    #[test]
    fn an_operation_override_has_its_own_bucket_and_inherits_unset_keys() {
        let l = Limiter::new(&config(
            "per_caller_rate = 100\nper_team_rate = 1\nper_team_burst = 1\n[operations.CreateTemplateShare]\nper_caller_rate = 0.1\nper_caller_burst = 1",
        ));
        let t0 = Instant::now();
        assert!(
            l.check_at("AK1", "payments", "CreateTemplateShare", t0)
                .is_ok()
        );
        assert_eq!(
            l.check_at("AK1", "payments", "CreateTemplateShare", t0)
                .unwrap_err()
                .0,
            Exceeded::Caller
        );
        // The team limit was not overridden: CreateTemplateShare spent the shared team token.
        assert_eq!(
            l.check_at("AK1", "payments", "ListTemplateShares", t0)
                .unwrap_err()
                .0,
            Exceeded::Team
        );
        assert!(
            l.check_at("AK1", "security", "ListTemplateShares", t0)
                .is_ok()
        );
    }

    #[test]
    fn unset_is_unlimited_and_bad_values_name_their_key() {
        let l = Limiter::new(&LimitsConfig::default());
        assert!(l.is_unlimited());
        let t0 = Instant::now();
        for _ in 0..10_000 {
            assert!(l.check_at("AK1", "t", "CreateTemplateShare", t0).is_ok());
        }
        for (text, key) in [
            ("per_caller_burst = 3", "limits.per_caller_burst"),
            ("per_team_rate = 0", "limits.per_team_rate"),
            (
                "per_team_rate = 1\nper_team_burst = 0.5",
                "limits.per_team_burst",
            ),
            (
                "[operations.Nope]\nper_caller_rate = 1",
                "limits.operations.Nope",
            ),
            (
                "[operations.CreateTemplateShare]\nper_caller_rate = -1",
                "limits.operations.CreateTemplateShare.per_caller_rate",
            ),
        ] {
            assert_eq!(config(text).check().unwrap_err().0, key, "{text}");
        }
        assert!(config("per_caller_rate = 0.5").check().is_ok());
    }

    #[test]
    fn idle_full_buckets_are_pruned() {
        let l = Limiter::new(&config("per_caller_rate = 1000\nper_caller_burst = 1"));
        let t0 = Instant::now();
        for i in 0..(PRUNE_ABOVE + 1) {
            assert!(l.check_at(&format!("AK{i}"), "t", "GetLens", t0).is_ok());
        }
        assert!(
            l.check_at("AKlast", "t", "GetLens", t0 + Duration::from_secs(1))
                .is_ok()
        );
        assert!(
            l.buckets.lock().unwrap().len() < 10,
            "{}",
            l.buckets.lock().unwrap().len()
        );
    }
}
