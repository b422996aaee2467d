//! Reading what exists in Well-Architected with the gateway's service credentials: every
//! review template, workload, custom lens and profile the account owns in a region, each
//! one's team tag and every share of each (all statuses, every page, retried while
//! throttled); and deleting one share.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::{ExistingShare, ResourceType};
use crate::auth::sigv4::uri_encode as enc;
use crate::error::GatewayError;
use crate::upstream::{Outbound, Upstream};

/// Items asked for per page (the most every list operation allows).
const PAGE_SIZE: u32 = 50;
/// A service that kept answering with a next token would loop forever.
const MAX_PAGES: usize = 10_000;
/// The largest answer read; a page of 50 summaries is a few KiB.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// How throttled (and briefly unavailable) calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Calls made in all, the first included.
    pub attempts: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 8,
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EstateError {
    #[error("{operation} in {region}: {code}: {message}")]
    Aws {
        operation: &'static str,
        region: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{operation} in {region}: {source}")]
    Unreachable {
        operation: &'static str,
        region: String,
        source: GatewayError,
    },
    #[error("{operation} in {region}: unreadable answer: {message}")]
    Answer {
        operation: &'static str,
        region: String,
        message: String,
    },
}

impl EstateError {
    fn is_retryable(&self) -> bool {
        match self {
            EstateError::Aws { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || matches!(
                        code.as_str(),
                        "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded"
                    )
            }
            EstateError::Unreachable { source, .. } => matches!(
                source,
                GatewayError::UpstreamUnavailable(_) | GatewayError::UpstreamTimeout(_)
            ),
            EstateError::Answer { .. } => false,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, EstateError::Aws { status: 404, .. })
            || matches!(self, EstateError::Aws { code, .. } if code == "ResourceNotFoundException")
    }
}

/// A share found in a region, with its resource's team (tag value; `""` when untagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub region: String,
    pub share: ExistingShare,
    pub team: String,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Revoked,
    /// The share (or its resource) was gone already.
    AlreadyGone,
}

/// Well-Architected, as the scan reads it.
pub struct Estate<'a> {
    upstream: &'a Upstream,
    team_tag: &'a str,
    retry: Retry,
}

/// A resource whose shares are listed.
struct Resource {
    kind: ResourceType,
    arn: String,
    /// Workloads: the id their share paths take.
    workload_id: Option<String>,
}

impl<'a> Estate<'a> {
    pub fn new(upstream: &'a Upstream, team_tag: &'a str, retry: Retry) -> Estate<'a> {
        Estate {
            upstream,
            team_tag,
            retry,
        }
    }

    /// Every share of every resource of the account in `region`. `progress` hears a line per
    /// resource type.
    pub async fn shares_in(
        &self,
        region: &str,
        progress: &(dyn Fn(String) + Sync),
    ) -> Result<Vec<Found>, EstateError> {
        let mut found = Vec::new();
        for kind in ResourceType::ALL {
            let resources = self.resources(region, kind).await?;
            let before = found.len();
            for resource in &resources {
                let Some(team) = self.team(region, resource).await? else {
                    continue; // Deleted since it was listed.
                };
                let Some(shares) = self.shares(region, resource).await? else {
                    continue;
                };
                found.extend(shares.into_iter().map(|share| Found {
                    region: region.to_string(),
                    share,
                    team: team.clone(),
                }));
            }
            progress(format!(
                "{region}: {} {}s, {} shares",
                resources.len(),
                kind.as_str(),
                found.len() - before
            ));
        }
        Ok(found)
    }

    /// Deletes `share` (Delete<Type>Share). The client token is derived from the share, so
    /// running the same revocation twice is one deletion to AWS.
    pub async fn delete(
        &self,
        region: &str,
        share: &ExistingShare,
    ) -> Result<Deleted, EstateError> {
        let token = format!("waguard-revoke-{}", share.share_id);
        let id = enc(&share.share_id);
        let (operation, path) = match share.resource_type {
            ResourceType::Template => (
                "DeleteTemplateShare",
                format!("/templates/shares/{}/{id}", enc(&share.resource)),
            ),
            ResourceType::Workload => (
                "DeleteWorkloadShare",
                format!(
                    "/workloads/{}/shares/{id}",
                    enc(share.workload_id.as_deref().unwrap_or_default())
                ),
            ),
            ResourceType::Lens => (
                "DeleteLensShare",
                format!("/lenses/{}/shares/{id}", enc(&share.resource)),
            ),
            ResourceType::Profile => (
                "DeleteProfileShare",
                format!("/profiles/{}/shares/{id}", enc(&share.resource)),
            ),
        };
        let path = format!("{path}?ClientRequestToken={}", enc(&token));
        match self
            .call(operation, region, Method::DELETE, &path, None)
            .await
        {
            Ok(_) => Ok(Deleted::Revoked),
            Err(e) if e.is_not_found() => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    async fn resources(
        &self,
        region: &str,
        kind: ResourceType,
    ) -> Result<Vec<Resource>, EstateError> {
        let items = match kind {
            ResourceType::Template => {
                self.pages("ListReviewTemplates", region, "ReviewTemplates", |t| {
                    (
                        Method::GET,
                        format!("/reviewTemplates?MaxResults={PAGE_SIZE}{}", t.query()),
                        None,
                    )
                })
                .await?
            }
            ResourceType::Workload => {
                self.pages("ListWorkloads", region, "WorkloadSummaries", |t| {
                    let mut body = serde_json::json!({ "MaxResults": PAGE_SIZE });
                    if let Some(token) = t.0 {
                        body["NextToken"] = token.into();
                    }
                    (Method::POST, "/workloadsSummaries".to_string(), Some(body))
                })
                .await?
            }
            // Only custom lenses the account owns can be shared.
            ResourceType::Lens => {
                self.pages("ListLenses", region, "LensSummaries", |t| {
                    (
                        Method::GET,
                        format!(
                            "/lenses?LensType=CUSTOM_SELF&MaxResults={PAGE_SIZE}{}",
                            t.query()
                        ),
                        None,
                    )
                })
                .await?
            }
            ResourceType::Profile => {
                self.pages("ListProfiles", region, "ProfileSummaries", |t| {
                    (
                        Method::GET,
                        format!(
                            "/profileSummaries?ProfileOwnerType=SELF&MaxResults={PAGE_SIZE}{}",
                            t.query()
                        ),
                        None,
                    )
                })
                .await?
            }
        };
        let (arn_field, what) = match kind {
            ResourceType::Template => ("TemplateArn", "ListReviewTemplates"),
            ResourceType::Workload => ("WorkloadArn", "ListWorkloads"),
            ResourceType::Lens => ("LensArn", "ListLenses"),
            ResourceType::Profile => ("ProfileArn", "ListProfiles"),
        };
        items
            .iter()
            .map(|item| {
                let arn = item[arn_field]
                    .as_str()
                    .ok_or_else(|| EstateError::Answer {
                        operation: what,
                        region: region.to_string(),
                        message: format!("a summary without {arn_field}"),
                    })?;
                let workload_id = match kind {
                    ResourceType::Workload => Some(
                        item["WorkloadId"]
                            .as_str()
                            .ok_or_else(|| EstateError::Answer {
                                operation: what,
                                region: region.to_string(),
                                message: "a workload summary without WorkloadId".into(),
                            })?
                            .to_string(),
                    ),
                    _ => None,
                };
                Ok(Resource {
                    kind,
                    arn: arn.to_string(),
                    workload_id,
                })
            })
            .collect()
    }

    /// The resource's team tag, `""` without one; `None` when the resource is gone.
    async fn team(&self, region: &str, resource: &Resource) -> Result<Option<String>, EstateError> {
        let path = format!("/tags/{}", enc(&resource.arn));
        match self
            .call("ListTagsForResource", region, Method::GET, &path, None)
            .await
        {
            Ok(answer) => Ok(Some(
                answer["Tags"][self.team_tag]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every share of `resource`, all statuses; `None` when the resource is gone.
    async fn shares(
        &self,
        region: &str,
        resource: &Resource,
    ) -> Result<Option<Vec<ExistingShare>>, EstateError> {
        let (operation, path, field) = match resource.kind {
            ResourceType::Template => (
                "ListTemplateShares",
                format!("/templates/shares/{}", enc(&resource.arn)),
                "TemplateShareSummaries",
            ),
            ResourceType::Workload => (
                "ListWorkloadShares",
                format!(
                    "/workloads/{}/shares",
                    enc(resource.workload_id.as_deref().unwrap_or_default())
                ),
                "WorkloadShareSummaries",
            ),
            ResourceType::Lens => (
                "ListLensShares",
                format!("/lenses/{}/shares", enc(&resource.arn)),
                "LensShareSummaries",
            ),
            ResourceType::Profile => (
                "ListProfileShares",
                format!("/profiles/{}/shares", enc(&resource.arn)),
                "ProfileShareSummaries",
            ),
        };
        let listed = self
            .pages(operation, region, field, |t| {
                (
                    Method::GET,
                    format!("{path}?MaxResults={PAGE_SIZE}{}", t.query()),
                    None,
                )
            })
            .await;
        let items = match listed {
            Ok(items) => items,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = |item: &Value, field: &str| -> Result<String, EstateError> {
            item[field]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| EstateError::Answer {
                    operation,
                    region: region.to_string(),
                    message: format!("a share summary without {field}"),
                })
        };
        items
            .iter()
            .map(|item| {
                Ok(ExistingShare {
                    resource_type: resource.kind,
                    resource: resource.arn.clone(),
                    workload_id: resource.workload_id.clone(),
                    share_id: text(item, "ShareId")?,
                    shared_with: text(item, "SharedWith")?,
                    status: text(item, "Status")?,
                    permission_type: item["PermissionType"].as_str().map(str::to_string),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Every item of `field` over all pages of a list operation.
    async fn pages(
        &self,
        operation: &'static str,
        region: &str,
        field: &str,
        page: impl Fn(NextToken<'_>) -> (Method, String, Option<Value>),
    ) -> Result<Vec<Value>, EstateError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (method, path, body) = page(NextToken(token.as_deref()));
            let mut answer = self.call(operation, region, method, &path, body).await?;
            match answer.get_mut(field).map(Value::take) {
                Some(Value::Array(page_items)) => items.extend(page_items),
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(EstateError::Answer {
                        operation,
                        region: region.to_string(),
                        message: format!("{field} is not a list"),
                    });
                }
            }
            match answer["NextToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(items),
            }
        }
        Err(EstateError::Answer {
            operation,
            region: region.to_string(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// One call, retried with backoff while throttled or briefly unavailable.
    async fn call(
        &self,
        operation: &'static str,
        region: &str,
        method: Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Value, EstateError> {
        let mut wait = self.retry.first_wait;
        let mut attempt = 1;
        loop {
            match self
                .call_once(operation, region, &method, path_and_query, body.as_ref())
                .await
            {
                Err(e) if e.is_retryable() && attempt < self.retry.attempts => {
                    tracing::debug!(operation, region, attempt, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.retry.max_wait);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn call_once(
        &self,
        operation: &'static str,
        region: &str,
        method: &Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, EstateError> {
        let unreachable = |source| EstateError::Unreachable {
            operation,
            region: region.to_string(),
            source,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("waguard-scan/", env!("CARGO_PKG_VERSION"))),
        );
        let bytes = match body {
            Some(b) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let prepared = self
            .upstream
            .prepare(Outbound {
                method,
                path_and_query,
                region,
                headers: &headers,
                body: bytes,
            })
            .await
            .map_err(unreachable)?;
        let read = async {
            let response = self.upstream.dispatch(prepared).await?;
            let status = response.status();
            let error_type = response
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    GatewayError::UpstreamUnavailable(format!("reading the answer failed: {e}"))
                })?
                .to_bytes();
            Ok::<_, GatewayError>((status, error_type, body))
        };
        let (status, error_type, body) =
            match tokio::time::timeout(self.upstream.timeout(), read).await {
                Ok(r) => r.map_err(unreachable)?,
                Err(_) => {
                    return Err(unreachable(GatewayError::UpstreamTimeout(format!(
                        "no answer within {}s",
                        self.upstream.timeout().as_secs_f64()
                    ))));
                }
            };
        let parsed: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) if status.is_success() => {
                    return Err(EstateError::Answer {
                        operation,
                        region: region.to_string(),
                        message: e.to_string(),
                    });
                }
                Err(_) => Value::Null,
            }
        };
        if status.is_success() {
            return Ok(parsed);
        }
        let code = error_type
            .or_else(|| parsed["__type"].as_str().map(str::to_string))
            .or_else(|| parsed["code"].as_str().map(str::to_string))
            .map(|c| error_code(&c))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let message = parsed["message"]
            .as_str()
            .or_else(|| parsed["Message"].as_str())
            .unwrap_or_default()
            .chars()
            .take(512)
            .collect();
        Err(EstateError::Aws {
            operation,
            region: region.to_string(),
            status: status.as_u16(),
            code,
            message,
        })
    }
}

/// The NextToken of the page being asked for (`None`: the first page).
#[derive(Clone, Copy)]
struct NextToken<'a>(Option<&'a str>);

impl NextToken<'_> {
    /// `&NextToken=...`, or nothing for the first page.
    fn query(&self) -> String {
        self.0
            .map(|t| format!("&NextToken={}", enc(t)))
            .unwrap_or_default()
    }
}

/// An error type as restJson1 sends it (`x-amzn-errortype: Code:uri`, or `ns#Code`) reduced
/// to the code.
fn error_code(raw: &str) -> String {
    let code = raw.split(':').next().unwrap_or(raw);
    code.rsplit('#').next().unwrap_or(code).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_reduce_to_their_code() {
        assert_eq!(error_code("ThrottlingException"), "ThrottlingException");
        assert_eq!(
            error_code("ThrottlingException:http://internal.amazon.com/coral/"),
            "ThrottlingException"
        );
        assert_eq!(
            error_code("com.amazonaws.wellarchitected#ResourceNotFoundException"),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn labels_are_encoded_as_the_sdks_encode_them() {
        assert_eq!(
            enc("arn:aws:wellarchitected:us-east-1:1:lens/a-b_c.d~e"),
            "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A1%3Alens%2Fa-b_c.d~e"
        );
    }
}
