// SPDX-License-Identifier: MIT
//! Peer echo server: a Tokio task per connection, as Tokio programs are
//! written.
//!
//! `echo_tokio [--host H] [--port N] [--threads N]`
//!
//! The multi-thread runtime with its default worker count (one per CPU), or
//! N workers when `--threads N` is given with N > 0.  Each connection's task
//! reads into its own 16 KiB buffer and writes back what it read with
//! `write_all`, until the peer closes; TCP_NODELAY is set on every
//! connection.  SIGINT and SIGTERM end the process.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut sock: TcpStream) {
    let mut buf = vec![0u8; 16384];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port = String::from("7000");
    let mut threads = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.trim_start_matches('-'), v) {
            ("host", Some(v)) => host = v,
            ("port", Some(v)) => port = v,
            ("threads", Some(v)) => threads = v.parse().unwrap_or(0),
            _ => {
                eprintln!("usage: echo_tokio [--host H] [--port N] [--threads N]");
                std::process::exit(2);
            }
        }
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_io().enable_time();
    if threads > 0 {
        rt.worker_threads(threads);
    }
    let rt = rt.build().expect("tokio runtime");
    rt.block_on(async move {
        let addr = if host.contains(':') {
            format!("[{}]:{}", host, port)
        } else {
            format!("{}:{}", host, port)
        };
        let listener = match TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("echo_tokio: listen on {}: {}", addr, e);
                std::process::exit(1);
            }
        };
        eprintln!("echo_tokio: listening on {}", addr);
        loop {
            match listener.accept().await {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve(sock));
                }
                Err(e) => {
                    eprintln!("echo_tokio: accept: {}", e);
                    // e.g. out of file descriptors: give closing ones a moment
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
}
