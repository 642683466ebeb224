// SPDX-License-Identifier: MIT
// The hyper peer of weft-http: hyper 0.14's HTTP/1 server on Tokio's
// multi-thread runtime (a worker per CPU unless --threads says), with the
// same two endpoints.
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server, StatusCode};
use std::convert::Infallible;

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let (ty, body): (&str, &'static str) = match req.uri().path() {
        "/plaintext" => ("text/plain", "Hello, World!"),
        "/json" => ("application/json", "{\"message\":\"Hello, World!\"}"),
        _ => {
            let mut r = Response::new(Body::from("404 Not Found\n"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return Ok(r);
        }
    };
    Ok(Response::builder()
        .header("Content-Type", ty)
        .header("Server", "hyper")
        .body(Body::from(body))
        .unwrap())
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port = String::from("8080");
    let mut threads = 0usize;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--host" => host = args[i + 1].clone(),
            "--port" => port = args[i + 1].clone(),
            "--threads" => threads = args[i + 1].parse().unwrap_or(0),
            _ => {}
        }
        i += 2;
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    let rt = b.enable_all().build().unwrap();
    rt.block_on(async move {
        let addr: std::net::SocketAddr = format!("{}:{}", host, port).parse().unwrap();
        let make = make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(handle)) });
        let server = Server::bind(&addr).tcp_nodelay(true).serve(make);
        eprintln!("listening on {}", server.local_addr());
        server.await.unwrap();
    });
}
