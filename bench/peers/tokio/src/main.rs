// SPDX-License-Identifier: MIT
//! Peer benchmark: Tokio tasks.
//!
//! * `spawn_await`: from a task on the multi-thread runtime,
//!   `tokio::spawn(async {}).await`, N times in a row; ns per spawn+await.
//! * `skynet`: a task per node of the skynet tree (1,000,000 leaves), each
//!   parent awaiting its 10 children's JoinHandles and summing; ms per tree.
//! * `yield`: a current_thread runtime, two tasks each calling
//!   `tokio::task::yield_now()` M times; ns = time / (2*M).
//!
//! The multi-thread runtime has its default worker count (one per CPU).
//! Each line is the median of 7 timed runs after one warm-up run.
//! BENCH_SCALE=K divides N and M (not the skynet size) for a quick run.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

fn scaled(n: u64) -> u64 {
    let k = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&k| k >= 1)
        .unwrap_or(1);
    (n / k).max(1)
}

/// One warm-up run, then the median of 7 timed runs.
fn median_of(mut run: impl FnMut() -> f64) -> f64 {
    run();
    let mut v: Vec<f64> = (0..7).map(|_| run()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn spawn_await(n: u64) -> f64 {
    let t0 = Instant::now();
    for _ in 0..n {
        tokio::spawn(async {}).await.unwrap();
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

fn skynet(num: u64, size: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let sub = size / 10;
        let kids: Vec<_> = (0..10)
            .map(|i| tokio::spawn(skynet(num + i * sub, sub)))
            .collect();
        let mut sum = 0;
        for k in kids {
            sum += k.await.unwrap();
        }
        sum
    })
}

async fn skynet_ms() -> f64 {
    let t0 = Instant::now();
    let sum = skynet(0, 1_000_000).await;
    let ms = t0.elapsed().as_nanos() as f64 / 1e6;
    if sum != 499_999_500_000 {
        println!("skynet error: sum {}, expected 499999500000", sum);
        std::process::exit(1);
    }
    ms
}

fn yield_ns(m: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let body = move || async move {
            for _ in 0..m {
                tokio::task::yield_now().await;
            }
        };
        let t0 = Instant::now();
        let a = tokio::spawn(body());
        let b = tokio::spawn(body());
        a.await.unwrap();
        b.await.unwrap();
        t0.elapsed().as_nanos() as f64 / (2 * m) as f64
    })
}

fn main() {
    let (n, m) = (scaled(200_000), scaled(1_000_000));
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    // Each measurement runs inside a spawned task, so it starts on a worker.
    let sa = median_of(|| rt.block_on(async { tokio::spawn(spawn_await(n)).await.unwrap() }));
    println!("spawn_await {:.1} ns", sa);
    let sk = median_of(|| rt.block_on(async { tokio::spawn(skynet_ms()).await.unwrap() }));
    println!("skynet {:.1} ms", sk);
    drop(rt);
    println!("yield {:.1} ns", median_of(|| yield_ns(m)));
}
