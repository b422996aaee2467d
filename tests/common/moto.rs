//! `moto_server`: AWS Organizations and STS written by someone else, so the simulator and the
//! gateway cannot share a misunderstanding. Declare `python` (common/python.rs) beside it.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::time::Duration;

use super::python;

/// `moto_server` on a free port.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub async fn start() -> Moto {
        let env = tokio::task::spawn_blocking(python::env).await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut moto = Moto {
            child: std::process::Command::new(env.bin("moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = moto.child.kill();
        panic!("moto_server did not start");
    }
}

impl Moto {
    /// An Organizations client for this moto_server (moto accepts any key).
    pub fn organizations_client(&self) -> aws_sdk_organizations::Client {
        let config = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDMOTO",
                "moto-secret",
                None,
                None,
                "tests",
            ))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_organizations::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
