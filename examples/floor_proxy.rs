//! The floor under waguard's request path: a reverse proxy built from the same parts (tokio with
//! two worker threads, hyper 1's auto server, hyper-util's pooled client, mimalloc) that does
//! nothing but forward, optionally after making a ~300-byte record durable. `bench/run.sh`
//! (`BENCH_FLOOR=1`) runs it next to the gateway: what this costs on a machine, the gateway
//! cannot undercut there, whatever it does about its own work.
//!
//!   cargo run --release --example floor_proxy -- LISTEN UPSTREAM MODE [RECORD_FILE]
//!
//! MODE:
//! - `plain`: forward only.
//! - `thread`: hand the record to a writer thread that appends and fdatasyncs whatever has
//!   queued (group commit) and wakes the waiting requests; forward once it is durable. This is
//!   the shape of waguard's audit writer without the chain, the records or anything else.
//! - `inline`: the request that finds no write in progress appends and fdatasyncs the queue
//!   itself, on its runtime thread (no hand-off at all; blocks that worker for the fsync, which
//!   waguard would not do); requests that arrive meanwhile wait for the next one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::oneshot;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Waiters = Vec<oneshot::Sender<()>>;

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    waiting: Waiters,
    writing: bool,
}

struct Log {
    file: Mutex<std::fs::File>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Log {
    fn write(&self, bytes: &[u8]) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_data()) {
            eprintln!("floor_proxy: write failed: {e}");
            std::process::exit(1);
        }
    }

    /// Queues a record; the returned receiver fires once it is durable (`thread` mode).
    fn enqueue(&self, record: &[u8]) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.bytes.extend_from_slice(record);
        q.waiting.push(tx);
        if !q.writing {
            self.wake.notify_one();
        }
        rx
    }

    fn writer_thread(&self) {
        loop {
            let (bytes, waiting) = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                q.writing = false;
                while q.waiting.is_empty() {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                q.writing = true;
                (std::mem::take(&mut q.bytes), std::mem::take(&mut q.waiting))
            };
            self.write(&bytes);
            for w in waiting {
                let _ = w.send(());
            }
        }
    }

    /// Makes `record` durable, leading the write if none is in progress (`inline` mode).
    async fn durable_inline(&self, record: &[u8]) {
        let rx = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.bytes.extend_from_slice(record);
            if q.writing {
                let (tx, rx) = oneshot::channel();
                q.waiting.push(tx);
                Some(rx)
            } else {
                q.writing = true;
                None
            }
        };
        if let Some(rx) = rx {
            let _ = rx.await;
            return;
        }
        loop {
            let (bytes, waiting) = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if q.bytes.is_empty() {
                    q.writing = false;
                    return;
                }
                (std::mem::take(&mut q.bytes), std::mem::take(&mut q.waiting))
            };
            self.write(&bytes);
            for w in waiting {
                let _ = w.send(());
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Thread,
    Inline,
}

struct Proxy {
    mode: Mode,
    upstream: hyper::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    log: Option<Arc<Log>>,
    seq: std::sync::atomic::AtomicU64,
}

impl Proxy {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
        let (mut parts, body) = req.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        if let Some(log) = &self.log {
            let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let record = format!(
                "{{\"seq\":{seq},\"type\":\"decision\",\"path\":{:?},\"bytes\":{},\"pad\":\"{}\"}}\n",
                parts.uri.path(),
                body.len(),
                "x".repeat(200)
            );
            match self.mode {
                Mode::Thread => {
                    let _ = log.enqueue(record.as_bytes()).await;
                }
                Mode::Inline => log.durable_inline(record.as_bytes()).await,
                Mode::Plain => {}
            }
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = format!(
            "{}{}",
            self.upstream.to_string().trim_end_matches('/'),
            path
        )
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| e.to_string())?;
        parts.headers.remove(hyper::header::HOST);
        let answer = self
            .client
            .request(Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: floor_proxy LISTEN UPSTREAM plain|thread|inline [RECORD_FILE]";
    let (Some(listen), Some(upstream), Some(mode)) = (args.first(), args.get(1), args.get(2))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mode = match mode.as_str() {
        "plain" => Mode::Plain,
        "thread" => Mode::Thread,
        "inline" => Mode::Inline,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let log = match (mode, args.get(3)) {
        (Mode::Plain, _) => None,
        (_, None) => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
        (_, Some(path)) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .unwrap_or_else(|e| {
                    eprintln!("floor_proxy: {path}: {e}");
                    std::process::exit(1)
                });
            Some(Arc::new(Log {
                file: Mutex::new(file),
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
            }))
        }
    };
    if let (Mode::Thread, Some(log)) = (mode, &log) {
        let log = log.clone();
        std::thread::Builder::new()
            .name("floor-writer".into())
            .spawn(move || log.writer_thread())
            .unwrap_or_else(|e| {
                eprintln!("floor_proxy: {e}");
                std::process::exit(1)
            });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("floor_proxy: {e}");
            std::process::exit(1)
        });
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let proxy = Arc::new(Proxy {
        mode,
        upstream: upstream.parse().unwrap_or_else(|e| {
            eprintln!("floor_proxy: {upstream}: {e}");
            std::process::exit(2)
        }),
        client: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(http),
        log,
        seq: Default::default(),
    });
    let listen = listen.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .unwrap_or_else(|e| {
                eprintln!("floor_proxy: {listen}: {e}");
                std::process::exit(1)
            });
        eprintln!("floor_proxy listening on {listen}");
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (proxy, builder) = (proxy.clone(), builder.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(match proxy.handle(req).await {
                            Ok(answer) => answer,
                            Err(e) => {
                                let mut answer = Response::new(Full::new(Bytes::from(e)));
                                *answer.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                answer
                            }
                        })
                    }
                });
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
