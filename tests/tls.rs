//! TLS on both sides: the SDK talks TLS to waguard, waguard talks TLS to the upstream, with
//! certificates generated for the test.

mod common;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use common::*;

fn sdk_http_client_trusting(
    ca_pem: &str,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(
                    TrustStore::empty().with_pem_certificate(ca_pem.as_bytes().to_vec()),
                )
                .build()
                .unwrap(),
        )
        .build_https()
}

#[tokio::test]
async fn tls_from_the_sdk_to_the_gateway_to_the_upstream() {
    let gw_pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("gw-cert.pem");
    let key = dir.path().join("gw-key.pem");
    std::fs::write(&cert, &gw_pki.cert_pem).unwrap();
    std::fs::write(&key, &gw_pki.key_pem).unwrap();
    let h = Harness::start_with(Options {
        server_extra: format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        ),
        sim_tls: true,
        ..Default::default()
    })
    .await;
    assert!(h.endpoint.starts_with("https://"));
    let client = h.client_with(
        PAYMENTS_KEY,
        PAYMENTS_SECRET,
        Some(sdk_http_client_trusting(&gw_pki.ca_pem)),
    );
    let out = client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .expect("share over TLS");
    assert!(out.share_id().is_some());
    assert_eq!(h.sim.received().len(), 1);
    assert_eq!(h.sim.received()[0].signed_by.as_deref(), Some(SERVICE_KEY));

    // A client that does not trust the gateway's CA cannot talk to it.
    let other = pki();
    let untrusting = h.client_with(
        PAYMENTS_KEY,
        PAYMENTS_SECRET,
        Some(sdk_http_client_trusting(&other.ca_pem)),
    );
    assert!(
        untrusting
            .list_template_shares()
            .template_arn(TEMPLATE_ARN)
            .send()
            .await
            .is_err()
    );
    h.stop().await;
}

#[tokio::test]
async fn an_upstream_with_an_untrusted_certificate_is_refused() {
    // The sim serves TLS but the gateway is told to trust a different CA.
    let h = Harness::start_with(Options {
        sim_tls: true,
        ..Default::default()
    })
    .await;
    let other = pki();
    std::fs::write(h.dir.path().join("upstream-ca.pem"), &other.ca_pem).unwrap();
    // A second gateway on the same sim, reading the replaced CA file.
    let gw2 = h.start_second_gateway(|text| text).await;
    let resp = RawRequest::new(
        "POST",
        &template_path(TEMPLATE_ARN),
        format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"t\"}}"),
    )
    .send(gw2.addr)
    .await;
    assert_eq!(resp.status, 502, "{resp:?}");
    assert!(resp.body.contains("could not be reached"), "{}", resp.body);
    assert!(h.sim.received().is_empty());
    gw2.shutdown().await;
    h.stop().await;
}

/// Whether a fresh client trusting `ca_pem` completes a request through the gateway.
async fn accepted_by_client_trusting(h: &Harness, ca_pem: &str) -> bool {
    h.client_with(
        PAYMENTS_KEY,
        PAYMENTS_SECRET,
        Some(sdk_http_client_trusting(ca_pem)),
    )
    .list_template_shares()
    .template_arn(TEMPLATE_ARN)
    .send()
    .await
    .is_ok()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_refused() {
    // The files as a Kubernetes Secret volume holds them: `tls.crt` -> `..data/tls.crt`,
    // `..data` -> a versioned folder, swapped atomically on every update (cert-manager renewal).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let publish = move |version: &str, cert_pem: &str, key_pem: &str| {
        let folder = root.join(format!("..{version}"));
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(folder.join("tls.key"), key_pem).unwrap();
        std::os::unix::fs::symlink(format!("..{version}"), root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    };
    let first = pki();
    publish("v1", &first.cert_pem, &first.key_pem);
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::os::unix::fs::symlink("..data/tls.crt", &cert).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", &key).unwrap();
    let h = Harness::start_with(Options {
        server_extra: format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        ),
        ..Default::default()
    })
    .await;
    assert!(accepted_by_client_trusting(&h, &first.ca_pem).await);

    let renewed = pki();
    publish("v2", &renewed.cert_pem, &renewed.key_pem);
    let mut served = false;
    for _ in 0..100 {
        if accepted_by_client_trusting(&h, &renewed.ca_pem).await {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(served, "the renewed certificate was not picked up");
    assert!(
        !accepted_by_client_trusting(&h, &first.ca_pem).await,
        "new handshakes must use the renewed certificate"
    );

    // A key that does not belong to the certificate is refused; the renewed one keeps serving.
    let stranger = pki();
    publish("v3", &renewed.cert_pem, &stranger.key_pem);
    let mut reported = String::new();
    for _ in 0..100 {
        let ready = h.admin_get("/readyz").await;
        assert_eq!(
            ready.status, 200,
            "a rejected TLS reload must not make the gateway unready"
        );
        if ready.body.contains("\"tls_reload\":\"rejected") {
            reported = ready.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !reported.contains("tls.crt"),
        "no error text on /readyz: {reported}"
    );
    let detail = h.gateway.reloader.status().tls_error.unwrap_or_default();
    assert!(detail.contains("tls.crt"), "{detail}");
    assert!(accepted_by_client_trusting(&h, &renewed.ca_pem).await);
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_tls_reloads_total{result=\"success\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "waguard_tls_reloads_total{result=\"error\"}"),
        Some(1.0)
    );
    h.stop().await;
}
