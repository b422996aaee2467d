//! The simulated AWS Organizations: the JSON 1.1 protocol
//! (`X-Amz-Target: AWSOrganizationsV20161128.<Operation>`), signatures verified for service
//! `organizations`, answering the calls the gateway's organization view makes about one tree.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Sim, ok};
use crate::gateway::Body;
use crate::organization::snapshot::{Node, Snapshot};

/// The `X-Amz-Target` prefix of AWS Organizations operations.
pub(super) const ORGANIZATIONS_TARGET: &str = "AWSOrganizationsV20161128.";
/// Items per page of the simulated list operations by default: small, so that callers must
/// paginate.
const ORGANIZATIONS_PAGE: usize = 3;

impl Sim {
    /// Plays AWS Organizations for this tree (see `waguard sim --organization`).
    pub fn set_organization(&self, organization: Snapshot) {
        if let Ok(mut s) = self.state.lock() {
            s.organization = Some(organization);
        }
    }

    /// Changes the simulated organization (an account moves, joins, is suspended...).
    pub fn edit_organization(&self, edit: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.state.lock()
            && let Some(o) = s.organization.as_mut()
        {
            edit(o);
        }
    }

    /// The next `n` Organizations calls answer TooManyRequestsException.
    pub fn throttle_organizations(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.throttle_organizations = n;
        }
    }

    /// Every Organizations call takes `delay` to answer (a slow or distant endpoint).
    pub fn delay_organizations(&self, delay: std::time::Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.organizations_delay = delay;
        }
    }

    /// The most Organizations calls that were being answered at the same time.
    pub fn most_concurrent_organization_calls(&self) -> usize {
        self.organizations_most_in_flight.load(Ordering::SeqCst)
    }

    /// Items per page of the Organizations list operations (AWS answers up to 20).
    pub fn set_organizations_page_size(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.organizations_page = n;
        }
    }

    /// The Organizations operations called so far, in order.
    pub fn organization_calls(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.organization_calls.clone())
            .unwrap_or_default()
    }

    /// Answers one Organizations call (its signature already verified), after the configured
    /// delay, counting how many are answered at once.
    pub(super) async fn organizations_call(
        self: Arc<Self>,
        operation: &str,
        body: &[u8],
        request_id: &str,
    ) -> Response<Body> {
        let delay = self
            .state
            .lock()
            .map(|s| s.organizations_delay)
            .unwrap_or_default();
        let in_flight = self.organizations_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.organizations_most_in_flight
            .fetch_max(in_flight, Ordering::SeqCst);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let resp = self.organizations(operation, body, request_id);
        self.organizations_in_flight.fetch_sub(1, Ordering::SeqCst);
        resp
    }

    fn organizations(&self, operation: &str, body: &[u8], request_id: &str) -> Response<Body> {
        let Ok(mut state) = self.state.lock() else {
            return org_err("ServiceException", "state poisoned", request_id);
        };
        state.organization_calls.push(operation.to_string());
        if state.throttle_organizations > 0 {
            state.throttle_organizations -= 1;
            return org_err(
                "TooManyRequestsException",
                "You have sent too many requests in too short a period of time.",
                request_id,
            );
        }
        let Some(org) = state.organization.as_ref() else {
            return org_err(
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
                request_id,
            );
        };
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let arg = |name: &str| input[name].as_str().unwrap_or_default().to_string();
        let mgmt = org.management_account.clone().unwrap_or_default();
        let ou_json = |id: &str, node: &Node| {
            json!({"Id": id, "Name": node.name,
                   "Arn": format!("arn:aws:organizations::{mgmt}:ou/{}/{id}", org.id)})
        };
        let account_json = |id: &str, node: &Node| {
            json!({"Id": id, "Name": node.name, "Status": node.status.as_deref().unwrap_or("ACTIVE"),
                   "Email": format!("{id}@example.com"),
                   "Arn": format!("arn:aws:organizations::{mgmt}:account/{}/{id}", org.id)})
        };
        match operation {
            "DescribeOrganization" => org_ok(
                json!({"Organization": {"Id": org.id, "FeatureSet": "ALL",
                    "Arn": format!("arn:aws:organizations::{mgmt}:organization/{}", org.id),
                    "MasterAccountId": mgmt,
                    "MasterAccountArn": format!("arn:aws:organizations::{mgmt}:account/{}/{mgmt}", org.id)}}),
                request_id,
            ),
            "ListRoots" => org_ok(
                json!({"Roots": [{"Id": org.root, "Name": "Root",
                    "Arn": format!("arn:aws:organizations::{mgmt}:root/{}/{}", org.id, org.root),
                    "PolicyTypes": []}]}),
                request_id,
            ),
            "ListOrganizationalUnitsForParent" | "ListAccountsForParent" => {
                let parent = arg("ParentId");
                if parent != org.root && !org.ous.contains_key(&parent) {
                    return org_err(
                        "ParentNotFoundException",
                        "We can't find a root or OU with the ParentId that you specified.",
                        request_id,
                    );
                }
                let (key, mut items): (&str, Vec<(String, Value)>) =
                    if operation == "ListAccountsForParent" {
                        let items = org.accounts.iter().filter(|(_, n)| n.parent == parent);
                        (
                            "Accounts",
                            items
                                .map(|(id, n)| (id.clone(), account_json(id, n)))
                                .collect(),
                        )
                    } else {
                        let items = org.ous.iter().filter(|(_, n)| n.parent == parent);
                        (
                            "OrganizationalUnits",
                            items.map(|(id, n)| (id.clone(), ou_json(id, n))).collect(),
                        )
                    };
                items.sort_by(|a, b| a.0.cmp(&b.0));
                let page_size = match state.organizations_page {
                    0 => ORGANIZATIONS_PAGE,
                    n => n,
                };
                let start: usize = arg("NextToken").parse().unwrap_or(0);
                let page: Vec<Value> = items
                    .iter()
                    .skip(start)
                    .take(page_size)
                    .map(|(_, v)| v.clone())
                    .collect();
                let mut out = json!({});
                out[key] = Value::from(page);
                if start + page_size < items.len() {
                    out["NextToken"] = json!((start + page_size).to_string());
                }
                org_ok(out, request_id)
            }
            "ListParents" => {
                let child = arg("ChildId");
                let parent = org
                    .accounts
                    .get(&child)
                    .or_else(|| org.ous.get(&child))
                    .map(|n| n.parent.clone());
                match parent {
                    Some(p) => {
                        let kind = if p == org.root {
                            "ROOT"
                        } else {
                            "ORGANIZATIONAL_UNIT"
                        };
                        org_ok(json!({"Parents": [{"Id": p, "Type": kind}]}), request_id)
                    }
                    None => org_err(
                        "ChildNotFoundException",
                        "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
                        request_id,
                    ),
                }
            }
            "DescribeAccount" => match org.accounts.get(&arg("AccountId")) {
                Some(n) => org_ok(
                    json!({"Account": account_json(&arg("AccountId"), n)}),
                    request_id,
                ),
                None => org_err(
                    "AccountNotFoundException",
                    "You specified an account that doesn't exist.",
                    request_id,
                ),
            },
            "DescribeOrganizationalUnit" => {
                let id = arg("OrganizationalUnitId");
                match org.ous.get(&id) {
                    Some(n) => org_ok(json!({"OrganizationalUnit": ou_json(&id, n)}), request_id),
                    None => org_err(
                        "OrganizationalUnitNotFoundException",
                        "We can't find an OU with the OrganizationalUnitId that you specified.",
                        request_id,
                    ),
                }
            }
            other => org_err(
                "InvalidInputException",
                &format!("{other} is not simulated"),
                request_id,
            ),
        }
    }
}

/// An AWS JSON 1.1 answer.
fn org_ok(body: Value, request_id: &str) -> Response<Body> {
    let mut resp = ok(body, request_id);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

/// An AWS JSON 1.1 error: status 400 and the error's `__type`.
fn org_err(code: &str, message: &str, request_id: &str) -> Response<Body> {
    let mut resp = org_ok(json!({"__type": code, "Message": message}), request_id);
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}
