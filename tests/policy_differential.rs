//! The organization-aware policy decides exactly as the policy before it wherever the gateway has
//! no organization to tell it about.
//!
//! The oracle is the policy as it was before organizations (tests/fixtures/authz_before_org.rego,
//! frozen). Generated inputs carry no `input.organization`, name their share targets in ID form
//! and describe them as the gateway does without `[organizations]` (`in_organization` null, empty
//! OU path), and include the oddities the old policy handled: missing and non-string fields,
//! unknown and unmapped teams, resource overrides, every share operation, reads, removals, other
//! writes, and permission types valid and not. Both policies are loaded with `Policy::load`, as
//! the gateway loads them (the new one serving its prepared index as data), and must give the
//! same `allow` and the same reasons for every input.
//!
//! `WAGUARD_DIFFERENTIAL_CASES` sets the number of generated inputs per team data set (default
//! 20,000; the README's figure comes from a release run with more).

use std::path::Path;

use serde_json::{Map, Value, json};
use waguard::policy::{Decision, Policy};

const ORACLE: &str = include_str!("fixtures/authz_before_org.rego");

/// Team data that exercises every branch of the old policy's team handling.
fn fixture_teams() -> Value {
    json!({
        // One of each list, no allow_contributor key.
        "alpha": {
            "accounts": ["111111111111"],
            "organizations": ["o-alphaorg0001"],
            "ous": ["ou-aaaa-11111111"]
        },
        // CONTRIBUTOR allowed; lens shares use their own OU list.
        "beta": {
            "accounts": ["222222222222"],
            "organizations": [],
            "ous": ["ou-bbbb-22222222"],
            "allow_contributor": true,
            "resource_overrides": {"lens": {"ous": ["ou-bbbb-lens0001"]}}
        },
        // allow_contributor set, but not to the boolean true.
        "gamma": {"ous": ["ou-cccc-33333333"], "allow_contributor": "true"},
        // Known, approves nothing.
        "delta": {"allow_contributor": false},
        // Overrides of every kind: false, empty, unrelated, several lists, non-list values.
        "epsilon": {
            "accounts": ["111111111111", "555555555555"],
            "organizations": ["o-alphaorg0001"],
            "ous": ["ou-aaaa-11111111"],
            "allow_contributor": true,
            "resource_overrides": {
                "workload": {"accounts": false, "organizations": ["o-strangerorg1"]},
                "review-template": {"ous": [], "accounts": ["999999999999"]},
                "profile": {},
                "lens": {"ous": "ou-aaaa-11111111", "organizations": null}
            }
        },
        // Lists that are not lists of ids.
        "zeta": {
            "accounts": "111111111111",
            "organizations": {"a": "o-alphaorg0001"},
            "ous": ["", 7, null, "ou-aaaa-11111111"],
            "resource_overrides": ["lens"]
        },
        // Entries that are not team objects, and a team without a name.
        "eta": ["111111111111"],
        "theta": "ou-aaaa-11111111",
        "": {"accounts": ["111111111111"], "ous": ["ou-aaaa-11111111"]}
    })
}

const SHARE_CREATE: [&str; 4] = [
    "CreateTemplateShare",
    "CreateWorkloadShare",
    "CreateLensShare",
    "CreateProfileShare",
];
const SHARE_DELETE: [&str; 4] = [
    "DeleteTemplateShare",
    "DeleteWorkloadShare",
    "DeleteLensShare",
    "DeleteProfileShare",
];
const READS: [&str; 5] = [
    "GetWorkload",
    "ListWorkloads",
    "ListTemplateShares",
    "ExportLens",
    "GetReviewTemplate",
];
const OTHER_WRITES: [&str; 5] = [
    "TagResource",
    "CreateWorkload",
    "UpdateGlobalSettings",
    "UpdateShareInvitation",
    "DeleteWorkload",
];

/// Share targets in ID form (and a few that classify as `unknown` without being ARNs).
const TARGETS: [&str; 19] = [
    "111111111111",
    "222222222222",
    "555555555555",
    "999999999999",
    "111122223333",
    "444455556666",
    "o-alphaorg0001",
    "o-strangerorg1",
    "o-exampleorg01",
    "ou-aaaa-11111111",
    "ou-bbbb-22222222",
    "ou-bbbb-lens0001",
    "ou-cccc-33333333",
    "ou-abcd-99999999",
    "ou-ab12-11111111",
    "ou-ab12-22222222",
    "ou-cd34-33333333",
    "not-a-target",
    "12345",
];

/// SplitMix64: a small deterministic generator, so a failure reproduces from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A value that is present but not a string.
fn not_a_string(rng: &mut Rng) -> Value {
    rng.pick(&[
        json!(7),
        json!(null),
        json!(true),
        json!(["x"]),
        json!({"a": "b"}),
    ])
    .clone()
}

/// The target type the gateway gives an ID-form SharedWith.
fn classify(shared_with: &str) -> &'static str {
    let b = shared_with.as_bytes();
    let lower_alnum = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if b.len() == 12 && b.iter().all(u8::is_ascii_digit) {
        "account"
    } else if let Some(rest) = shared_with.strip_prefix("ou-") {
        match rest.split_once('-') {
            Some((a, c))
                if (4..=32).contains(&a.len())
                    && (8..=32).contains(&c.len())
                    && lower_alnum(a)
                    && lower_alnum(c) =>
            {
                "ou"
            }
            _ => "unknown",
        }
    } else if let Some(rest) = shared_with.strip_prefix("o-") {
        if (10..=32).contains(&rest.len()) && lower_alnum(rest) {
            "organization"
        } else {
            "unknown"
        }
    } else {
        "unknown"
    }
}

/// Sets `key` to a generated value: usually `usual`, sometimes missing, sometimes not a string.
fn field(rng: &mut Rng, map: &mut Map<String, Value>, key: &str, usual: Value) {
    match rng.below(20) {
        0 => {}
        1 => {
            map.insert(key.into(), not_a_string(rng));
        }
        _ => {
            map.insert(key.into(), usual);
        }
    }
}

fn input(rng: &mut Rng, teams: &[String]) -> Value {
    let operation = match rng.below(20) {
        0..=7 => rng.pick(&SHARE_CREATE).to_string(),
        8..=9 => "UpdateWorkloadShare".into(),
        10..=11 => rng.pick(&SHARE_DELETE).to_string(),
        12..=15 => rng.pick(&READS).to_string(),
        16..=17 => rng.pick(&OTHER_WRITES).to_string(),
        18 => "Frobnicate".into(),
        _ => "".into(),
    };
    let access = if operation.starts_with("Get")
        || operation.starts_with("List")
        || operation.starts_with("Export")
    {
        "read"
    } else {
        "write"
    };
    let access = match rng.below(10) {
        0 => "read",
        1 => "READ",
        _ => access,
    };
    let mut doc = Map::new();
    field(rng, &mut doc, "operation", json!(operation));
    field(rng, &mut doc, "access", json!(access));
    doc.insert("region".into(), json!("us-east-1"));

    let mut caller = Map::new();
    caller.insert("access_key_id".into(), json!("AKWGTEST0000000001"));
    field(rng, &mut caller, "principal", json!("alice@example.com"));
    let team = match rng.below(12) {
        0 => "nobody".to_string(),
        _ => rng.pick(teams).clone(),
    };
    field(rng, &mut caller, "team", json!(team));
    caller.insert("attributes".into(), json!({"cost_center": "cc-1"}));
    doc.insert("caller".into(), Value::Object(caller));

    let is_share_create = SHARE_CREATE.contains(&operation.as_str());
    let grants_permission =
        operation == "CreateWorkloadShare" || operation == "UpdateWorkloadShare";
    let mut body = Map::new();
    let permission = match rng.below(10) {
        0..=3 => json!("READONLY"),
        4..=6 => json!("CONTRIBUTOR"),
        7 => json!(rng.pick(&["OWNER", "readonly", ""])),
        8 => not_a_string(rng),
        _ => Value::Null, // none sent
    };
    // A share object for share operations, and now and then for others.
    let with_share = (is_share_create || grants_permission || rng.chance(5)) && !rng.chance(3);
    if with_share {
        let mut share = Map::new();
        if is_share_create || rng.chance(50) {
            let shared_with = match rng.below(25) {
                0 => Value::Null, // missing
                1 => not_a_string(rng),
                2..=3 => json!(""),
                _ => json!(rng.pick(&TARGETS)),
            };
            let classified = shared_with.as_str().map(classify).unwrap_or("unknown");
            let target_type = match rng.below(12) {
                0..=1 => json!(rng.pick(&["account", "organization", "ou", "unknown"])),
                2 => Value::Null, // missing
                3 => not_a_string(rng),
                _ => json!(classified),
            };
            if !shared_with.is_null() {
                share.insert("shared_with".into(), shared_with.clone());
                body.insert("SharedWith".into(), shared_with.clone());
            }
            if !target_type.is_null() {
                share.insert("target_type".into(), target_type.clone());
            }
            // What the gateway says about the target without [organizations].
            if let (Some(id), Some(kind)) = (shared_with.as_str(), target_type.as_str()) {
                let account = if kind == "account" {
                    json!(id)
                } else {
                    Value::Null
                };
                share.insert(
                    "target".into(),
                    json!({
                        "id": id,
                        "type": kind,
                        "account": account,
                        "in_organization": null,
                        "ou_path": [],
                        "ou_path_names": [],
                        "name": null,
                        "status": null
                    }),
                );
            }
        }
        if (grants_permission || rng.chance(20)) && !permission.is_null() && rng.chance(85) {
            share.insert("permission_type".into(), permission.clone());
        }
        doc.insert("share".into(), Value::Object(share));
    }
    if !permission.is_null() && (grants_permission || rng.chance(10)) && rng.chance(70) {
        body.insert("PermissionType".into(), permission);
    }
    doc.insert(
        "resource".into(),
        json!({"type": "", "arn": "arn:aws:wellarchitected:us-east-1:123456789012:x/0123"}),
    );
    doc.insert(
        "request".into(),
        json!({"method": "POST", "path": "/", "query": {}, "body": Value::Object(body)}),
    );
    doc.insert("source_ip".into(), json!("10.0.0.7"));
    doc.insert("time".into(), json!("2026-11-26T10:00:00Z"));
    // Scan results (a later feature) must not change the decision.
    if rng.chance(5) {
        doc.insert(
            "scan".into(),
            json!({"share_id": "0123456789abcdef", "status": "PENDING"}),
        );
    }
    Value::Object(doc)
}

/// A policy directory with `rego` files (path, text) and `teams` as data.waguard.teams.
fn policy_dir(files: &[(&str, &str)], teams: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("waguard")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join("waguard").join(name), text).unwrap();
    }
    std::fs::write(
        dir.path().join("waguard/teams.json"),
        serde_json::to_string_pretty(teams).unwrap(),
    )
    .unwrap();
    dir
}

fn repo_policy_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("policies/waguard")
            .join(name),
    )
    .unwrap()
}

fn cases() -> usize {
    std::env::var("WAGUARD_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Decides `cases()` generated inputs with both policies; panics with the first differences.
fn compare(old: &Policy, new: &Policy, teams: &Value, seed: u64, reasons: &[&str]) -> usize {
    let mut names: Vec<String> = teams.as_object().unwrap().keys().cloned().collect();
    names.sort();
    let mut rng = Rng(seed);
    let mut differences = Vec::new();
    let mut allowed = 0;
    let mut seen = vec![0usize; reasons.len()];
    let n = cases();
    for case in 0..n {
        let doc = input(&mut rng, &names);
        let expected = old.evaluate(&doc);
        let got = new.evaluate(&doc);
        allowed += usize::from(expected.allow);
        for reason in &expected.reasons {
            for (i, fragment) in reasons.iter().enumerate() {
                seen[i] += usize::from(reason.contains(fragment));
            }
        }
        if expected != got {
            differences.push((case, doc, expected, got));
            if differences.len() == 5 {
                break;
            }
        }
    }
    if !differences.is_empty() {
        let shown: Vec<String> = differences
            .iter()
            .map(
                |(case, doc, expected, got): &(usize, Value, Decision, Decision)| {
                    format!("case {case}:\n  input {doc}\n  before {expected:?}\n  now    {got:?}")
                },
            )
            .collect();
        panic!(
            "the policies decide differently (seed {seed}):\n{}",
            shown.join("\n")
        );
    }
    // The generator reaches both outcomes, and every kind of reason, often enough to mean
    // something.
    assert!(
        allowed > n / 10 && allowed < n * 9 / 10,
        "{allowed} of {n} allowed"
    );
    for (fragment, count) in reasons.iter().zip(&seen) {
        assert!(
            *count * 2000 >= n,
            "only {count} of {n} reasons say {fragment:?}"
        );
    }
    n
}

/// Every kind of reason the old policy gives (the fixture teams reach them all).
const REASONS: [&str; 18] = [
    "is a read-only operation",
    "only removes a share, which narrows access",
    "is not permitted through waguard",
    "is not mapped to any team",
    "has no entry in waguard's team data",
    "cannot be approved (only account IDs, organization IDs and OU IDs can)",
    "the request names no SharedWith target",
    "not in the team's approved accounts",
    "not in the team's approved organizations",
    "not in the team's approved OUs",
    " for lens shares",
    " for workload shares",
    "is approved for team",
    "without a PermissionType",
    "it is neither READONLY nor CONTRIBUTOR",
    "does not set allow_contributor to true",
    "may grant CONTRIBUTOR on workload shares",
    "may grant READONLY on workload shares",
];

#[test]
fn without_organizations_the_policy_decides_as_before_on_fixture_teams() {
    let teams = fixture_teams();
    let old = policy_dir(&[("authz.rego", ORACLE)], &teams);
    let new = policy_dir(
        &[
            ("authz.rego", &repo_policy_file("authz.rego")),
            ("index.rego", &repo_policy_file("index.rego")),
        ],
        &teams,
    );
    let old = Policy::load(old.path()).unwrap();
    let new = Policy::load(new.path()).unwrap();
    compare(&old, &new, &teams, 0x5eed_0001, &REASONS);
}

#[test]
fn without_organizations_the_shipped_policy_decides_as_before() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let teams: Value = serde_json::from_str(&repo_policy_file("teams.json")).unwrap();
    let old = policy_dir(&[("authz.rego", ORACLE)], &teams);
    let old = Policy::load(old.path()).unwrap();
    let new = Policy::load(&policies).unwrap();
    compare(&old, &new, &teams, 0x5eed_0002, &REASONS[..4]);
}

#[test]
fn the_generator_describes_targets_as_the_gateway_does() {
    assert_eq!(classify("111122223333"), "account");
    assert_eq!(classify("o-exampleorg01"), "organization");
    assert_eq!(classify("ou-ab12-11111111"), "ou");
    for unknown in ["12345", "not-a-target", "ou-ab1-abcdefgh", "o-short", ""] {
        assert_eq!(classify(unknown), "unknown", "{unknown}");
    }
}
