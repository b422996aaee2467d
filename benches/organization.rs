//! Reading a large AWS Organization: a full refresh of a 5,000-account tree (250 OUs, three
//! levels below the root) from the simulator through the official SDK, 20 items a page as AWS pages, and the
//! heap the snapshot keeps. Run with `cargo bench --bench organization`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use criterion::{Criterion, criterion_group, criterion_main};
use waguard::config::OrganizationsConfig;
use waguard::organization::{Node, OrganizationView, Snapshot};
use waguard::server::{self, Limits};
use waguard::sim::Sim;

/// Counts live heap bytes, to report what a snapshot keeps.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEY: &str = "AKWGBENCHSERVICE0001";
const SECRET: &str = "bench-service-secret-0001";

/// 10 top-level OUs, each with 4 children, each with 5 grandchildren (250 OUs); 25 accounts in
/// each grandchild: 5,000 accounts (two pages each).
fn large_tree() -> Snapshot {
    let mut ous = HashMap::new();
    let mut accounts = HashMap::new();
    let node = |name: String, parent: &str, status: Option<&str>| Node {
        name,
        parent: parent.to_string(),
        status: status.map(str::to_string),
    };
    let mut account = 100_000_000_000u64;
    for a in 0..10 {
        let top = format!("ou-ab12-1{a:07}");
        ous.insert(top.clone(), node(format!("bu-{a}"), "r-ab12", None));
        for b in 0..4 {
            let mid = format!("ou-ab12-2{a:03}{b:04}");
            ous.insert(mid.clone(), node(format!("bu-{a}-{b}"), &top, None));
            for c in 0..5 {
                let leaf = format!("ou-ab12-3{a:02}{b:02}{c:03}");
                ous.insert(leaf.clone(), node(format!("bu-{a}-{b}-{c}"), &mid, None));
                for _ in 0..25 {
                    account += 1;
                    accounts.insert(
                        account.to_string(),
                        node(format!("acct-{account}"), &leaf, Some("ACTIVE")),
                    );
                }
            }
        }
    }
    Snapshot {
        id: "o-exampleorg01".into(),
        root: "r-ab12".into(),
        management_account: Some("111111111111".into()),
        ous,
        accounts,
        taken: SystemTime::now(),
    }
}

fn refresh_large_organization(c: &mut Criterion) {
    server::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tree = large_tree();
    let sim = Arc::new(Sim::new(KEY, SECRET, None, &[]).unwrap());
    sim.set_organization(tree);
    sim.set_organizations_page_size(20);
    let view = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = sim.clone();
        tokio::spawn(server::serve(
            listener,
            None,
            Limits::default(),
            move |req, peer| s.clone().handle(req, peer),
            std::future::pending(),
            Duration::from_secs(1),
        ));
        let config = OrganizationsConfig {
            enabled: true,
            endpoint: Some(format!("http://{addr}")),
            ..OrganizationsConfig::default()
        };
        let creds = Credentials::new(KEY, SECRET, None, None, "bench");
        OrganizationView::new(&config, SharedCredentialsProvider::new(creds), None).await
    });
    // One refresh outside the measurement: the heap it leaves behind is the snapshot.
    let before = LIVE.load(Ordering::Relaxed);
    rt.block_on(view.refresh()).unwrap();
    let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let calls = sim.organization_calls().len();
    let snapshot = view.status();
    assert_eq!(
        snapshot.accounts,
        Some(5_000),
        "the walk must see every account"
    );
    eprintln!(
        "5,000-account organization: {calls} Organizations calls per refresh, snapshot heap ~{:.1} MiB",
        kept as f64 / (1024.0 * 1024.0)
    );
    let mut group = c.benchmark_group("organization");
    group.sample_size(10);
    group.bench_function("refresh_5000_accounts", |b| {
        b.iter(|| rt.block_on(view.refresh()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, refresh_large_organization);
criterion_main!(benches);
