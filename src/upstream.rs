//! The way to AWS: service credentials, outbound SigV4 signing (aws-sigv4), pooled rustls client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::sync::Mutex;

use crate::auth::SERVICE;
use crate::config::UpstreamConfig;
use crate::error::GatewayError;

/// Request headers passed on to AWS. Everything else the caller sent is dropped: the caller's
/// signature, date and token, hop-by-hop headers, and anything AWS might act on that the
/// gateway did not decide on. `Content-Type` is passed on separately: exactly one value.
const FORWARDED_HEADERS: &[&str] = &[
    "accept",
    "user-agent",
    "x-amz-user-agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "x-amzn-trace-id",
];

/// Response headers never passed back (hop-by-hop, RFC 9110 section 7.6.1), besides those
/// the response's own `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    #[error("{path}: cannot read CA file: {source}")]
    CaRead {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificates could be read: {message}")]
    CaParse { path: String, message: String },
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Service credentials with refresh ahead of expiry, so signing never waits on a refresh
/// unless the credentials are about to run out.
pub struct ServiceCredentials {
    provider: SharedCredentialsProvider,
    cached: arc_swap::ArcSwapOption<Credentials>,
    refresh: Mutex<()>,
}

/// Credentials are refreshed when they have less than this left.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

impl ServiceCredentials {
    pub fn new(provider: SharedCredentialsProvider) -> ServiceCredentials {
        ServiceCredentials {
            provider,
            cached: Default::default(),
            refresh: Mutex::new(()),
        }
    }

    /// The provider behind the cache (for other AWS clients of the gateway's own).
    pub fn provider(&self) -> SharedCredentialsProvider {
        self.provider.clone()
    }

    /// The AWS default chain: env, profile, web identity (IRSA), EKS Pod Identity, ECS, IMDS.
    pub async fn default_chain() -> ServiceCredentials {
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .build()
            .await;
        ServiceCredentials::new(SharedCredentialsProvider::new(chain))
    }

    fn fresh(c: &Credentials, now: SystemTime) -> bool {
        c.expiry().is_none_or(|exp| exp > now + REFRESH_AHEAD)
    }

    pub async fn get(&self) -> Result<Arc<Credentials>, GatewayError> {
        let now = SystemTime::now();
        if let Some(c) = self.cached.load_full()
            && Self::fresh(&c, now)
        {
            return Ok(c);
        }
        // One refresh at a time. While it runs, others keep signing with the current
        // credentials if those have not expired yet; only without usable ones do they wait.
        let _guard = match self.refresh.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Some(c) = self.cached.load_full()
                    && c.expiry().is_none_or(|exp| exp > now)
                {
                    return Ok(c);
                }
                self.refresh.lock().await
            }
        };
        if let Some(c) = self.cached.load_full()
            && Self::fresh(&c, SystemTime::now())
        {
            return Ok(c);
        }
        match self.provider.provide_credentials().await {
            Ok(c) => {
                let c = Arc::new(c);
                self.cached.store(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                // Still-valid credentials keep working while the source is briefly unavailable.
                if let Some(c) = self.cached.load_full()
                    && c.expiry().is_none_or(|exp| exp > SystemTime::now())
                {
                    tracing::warn!(error = %e, "service credential refresh failed; using current credentials until they expire");
                    return Ok(c);
                }
                Err(GatewayError::Credentials(format!(
                    "the gateway has no AWS service credentials: {e}"
                )))
            }
        }
    }
}

/// Where and how requests go to AWS.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: Option<String>,
    timeout: Duration,
    pub credentials: ServiceCredentials,
}

/// A request ready to leave: what AWS will see, minus the signature.
#[derive(Clone)]
pub struct Outbound<'a> {
    pub method: &'a http::Method,
    /// Raw path and query exactly as received (already percent-encoded).
    pub path_and_query: &'a str,
    pub region: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// A signed request ready for AWS (see [`Upstream::prepare`]).
pub struct Prepared {
    request: Request<Full<Bytes>>,
    /// The base URL, for error messages.
    base: String,
}

impl Upstream {
    pub fn new(
        config: &UpstreamConfig,
        credentials: ServiceCredentials,
    ) -> Result<Upstream, UpstreamSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Platform roots are a bonus (corporate CAs); their absence (distroless) is fine.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(ca) = &config.ca_file {
            for cert in load_pem_certs(ca)? {
                roots.add(cert).map_err(|e| UpstreamSetupError::CaParse {
                    path: ca.display().to_string(),
                    message: e.to_string(),
                })?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamSetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Ok(Upstream {
            client,
            endpoint: config
                .endpoint
                .as_ref()
                .map(|e| e.trim_end_matches('/').to_string()),
            timeout: config.timeout,
            credentials,
        })
    }

    /// The base URL requests for `region` go to.
    pub fn endpoint_for(&self, region: &str) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://{SERVICE}.{region}.amazonaws.com"),
        }
    }

    /// Builds the request for AWS and signs it with the service credentials; nothing is sent.
    pub async fn prepare(&self, out: Outbound<'_>) -> Result<Prepared, GatewayError> {
        let creds = self.credentials.get().await?;
        let base = self.endpoint_for(out.region);
        let url = format!("{base}{}", out.path_and_query);
        let uri: http::Uri = url
            .parse()
            .map_err(|e| GatewayError::Internal(format!("bad upstream URL: {e}")))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| GatewayError::Internal("upstream URL has no host".into()))?;

        let mut headers = HeaderMap::new();
        for name in FORWARDED_HEADERS {
            for v in out.headers.get_all(*name) {
                headers.append(HeaderName::from_static(name), v.clone());
            }
        }
        // The one Content-Type validation accepted (it refuses a request with two), never a
        // second one AWS could read instead.
        let mut content_types = out.headers.get_all(http::header::CONTENT_TYPE).iter();
        if let Some(content_type) = content_types.next() {
            if content_types.next().is_some() {
                return Err(GatewayError::Validation(
                    "the request has more than one Content-Type header".into(),
                ));
            }
            headers.insert(http::header::CONTENT_TYPE, content_type.clone());
        }
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(&authority).map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        let signed = sign_headers(
            out.method.as_str(),
            &url,
            &headers,
            &out.body,
            out.region,
            &creds,
        )?;
        for (name, value) in signed {
            headers.insert(name, value);
        }

        let mut request = Request::builder()
            .method(out.method.clone())
            .uri(uri)
            .body(Full::new(out.body))
            .map_err(|e| GatewayError::Internal(format!("building upstream request: {e}")))?;
        *request.headers_mut() = headers;
        Ok(Prepared { request, base })
    }

    /// Sends a prepared request; returns the response head and its body stream.
    pub async fn dispatch(&self, prepared: Prepared) -> Result<Response<Incoming>, GatewayError> {
        let Prepared { request, base } = prepared;
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(GatewayError::UpstreamTimeout(format!(
                "Well-Architected at {base} did not answer within {}s",
                self.timeout.as_secs_f64()
            ))),
            Ok(Err(e)) => Err(GatewayError::UpstreamUnavailable(format!(
                "Well-Architected at {base} could not be reached: {}",
                error_chain(&e)
            ))),
            Ok(Ok(mut resp)) => {
                strip_hop_by_hop(resp.headers_mut());
                Ok(resp)
            }
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Removes a response's hop-by-hop headers: the fixed ones and every header its `Connection`
/// header names (RFC 9110 section 7.6.1), which concern only the link to AWS, not the caller.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

/// Computes the SigV4 headers (authorization, x-amz-date, x-amz-security-token) for a request.
/// Public for the benchmarks.
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    region: &str,
    creds: &Credentials,
) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    let fail = |e: &dyn std::fmt::Display| {
        GatewayError::Credentials(format!("signing the upstream request failed: {e}"))
    };
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    let (signed, _params) = instructions.into_parts();
    signed
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value()).map_err(|e| fail(&e))?;
            value.set_sensitive(h.sensitive());
            Ok((name, value))
        })
        .collect()
}

fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamSetupError> {
    let display = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| UpstreamSetupError::CaRead {
        path: display.clone(),
        source,
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| UpstreamSetupError::CaParse {
            path: display.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(UpstreamSetupError::CaParse {
            path: display,
            message: "the file has no CERTIFICATE blocks".into(),
        });
    }
    Ok(certs)
}

/// `error: cause: cause` for errors whose Display hides the interesting part.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl Upstream {
    /// Sends a credential exchange's signed GetCallerIdentity to STS with the same pooled
    /// client (and trust roots) as forwarded requests, and reads the answer, at most `max`
    /// bytes, within `timeout`. The request was checked to go to an STS endpoint only.
    pub async fn send_to_sts(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        max: usize,
    ) -> Result<(http::StatusCode, Bytes), GatewayError> {
        use http_body_util::{BodyExt, Limited};
        let host = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let exchange = async {
            let resp = self.client.request(request).await.map_err(|e| {
                GatewayError::UpstreamUnavailable(format!(
                    "STS at {host} could not be reached: {}",
                    error_chain(&e)
                ))
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    GatewayError::UpstreamUnavailable(format!(
                        "reading STS's answer from {host} failed: {e}"
                    ))
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(GatewayError::UpstreamTimeout(format!(
                    "STS at {host} did not answer within {}s",
                    timeout.as_secs_f64()
                )))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{ProvideCredentials, future};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                Some("token".into()),
                Some(SystemTime::now() + self.lifetime),
                "counting",
            )))
        }
    }

    fn creds(lifetime: Duration) -> (ServiceCredentials, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let p = Counting {
            calls: calls.clone(),
            lifetime,
        };
        (
            ServiceCredentials::new(SharedCredentialsProvider::new(p)),
            calls,
        )
    }

    #[tokio::test]
    async fn credentials_are_cached_until_close_to_expiry() {
        let (c, calls) = creds(Duration::from_secs(3600));
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_are_refreshed_before_they_expire() {
        // Four minutes left is inside the five-minute refresh window: every use refreshes.
        let (c, calls) = creds(Duration::from_secs(240));
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID0");
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Hands out credentials with four minutes left; every refresh after the first is slow.
    #[derive(Debug)]
    struct Slow {
        calls: Arc<AtomicUsize>,
    }

    impl ProvideCredentials for Slow {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::new(async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok(Credentials::new(
                    format!("AKID{n}"),
                    "s",
                    None,
                    Some(SystemTime::now() + Duration::from_secs(240)),
                    "slow",
                ))
            })
        }
    }

    #[tokio::test]
    async fn a_slow_refresh_does_not_hold_up_signing_with_valid_credentials() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::new(ServiceCredentials::new(SharedCredentialsProvider::new(
            Slow {
                calls: calls.clone(),
            },
        )));
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID0");
        // A refresh starts (the credentials are inside the refresh window) and takes 300 ms.
        let refreshing = tokio::spawn({
            let c = c.clone();
            async move { c.get().await.unwrap().access_key_id().to_string() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert_eq!(c.get().await.unwrap().access_key_id(), "AKID0");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "waited for the refresh"
        );
        assert_eq!(refreshing.await.unwrap(), "AKID1");
    }

    #[test]
    fn headers_named_in_connection_are_not_relayed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "X-Secret-Hop , keep-alive"),
            ("connection", "x-other-hop"),
            ("x-secret-hop", "1"),
            ("x-other-hop", "2"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-amzn-requestid", "r-1"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-amzn-requestid"]);
    }

    #[test]
    fn default_endpoint_follows_the_callers_region() {
        crate::server::install_crypto_provider();
        let config: crate::config::UpstreamConfig = toml::from_str("").unwrap();
        let (c, _) = creds(Duration::from_secs(3600));
        let u = Upstream::new(&config, c).unwrap();
        assert_eq!(
            u.endpoint_for("eu-west-1"),
            "https://wellarchitected.eu-west-1.amazonaws.com"
        );
    }
}
