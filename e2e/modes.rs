//! The demo pod's two containers and the load pod's `stop`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::http;

/// Log lines go to stderr, where `kubectl logs` shows them.
fn log(message: &str) {
    eprintln!("drain-e2e {message}");
}

/// The application: answers 200 after `work`; on SIGTERM or SIGQUIT it exits at once, dropping
/// whatever is in flight, as many apps do.
pub async fn app(listen: SocketAddr, work: Duration) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("app: cannot listen on {listen}"))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut int = signal(SignalKind::interrupt())?;
    log(&format!("app: listening on {listen}"));
    loop {
        tokio::select! {
            _ = term.recv() => { log("app: SIGTERM, exiting at once"); break; }
            _ = quit.recv() => { log("app: SIGQUIT, exiting at once"); break; }
            _ = int.recv() => { log("app: SIGINT, exiting at once"); break; }
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                tokio::spawn(async move {
                    if let Ok(Some(_)) = http::read_head(&mut stream).await {
                        tokio::time::sleep(work).await;
                        let _ = stream.write_all(&http::answer(200, "OK", "ok\n")).await;
                    }
                });
            }
        }
    }
    // Process exit, not a drain: requests in flight are cut off.
    std::process::exit(0)
}

/// The front proxy, nginx-like: each request goes to `upstream`, 502 when the upstream is not
/// there or closes without answering. SIGQUIT: stop accepting (new connections are refused),
/// finish the requests in flight, exit 0. SIGTERM or SIGINT, also during that drain: exit at once.
pub async fn proxy(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("proxy: cannot listen on {listen}"))?;
    let mut term = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut int = signal(SignalKind::interrupt())?;
    log(&format!(
        "proxy: listening on {listen}, upstream {upstream}"
    ));
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            _ = term.recv() => fast_exit("SIGTERM"),
            _ = int.recv() => fast_exit("SIGINT"),
            _ = quit.recv() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    in_flight.spawn(forward(stream, upstream));
                }
            }
        }
    }
    drop(listener);
    log(&format!(
        "proxy: SIGQUIT, graceful: no longer accepting, finishing {} connections",
        in_flight.len()
    ));
    loop {
        tokio::select! {
            _ = term.recv() => fast_exit("SIGTERM"),
            _ = int.recv() => fast_exit("SIGINT"),
            next = in_flight.join_next() => if next.is_none() { break },
        }
    }
    log("proxy: drained, exiting");
    Ok(ExitCode::SUCCESS)
}

fn fast_exit(signal: &str) -> ! {
    log(&format!("proxy: {signal}, fast shutdown"));
    std::process::exit(0)
}

async fn forward(mut client: TcpStream, upstream: SocketAddr) {
    let Ok(Some(head)) = http::read_head(&mut client).await else {
        return;
    };
    let bad_gateway = http::answer(502, "Bad Gateway", "upstream unavailable\n");
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(upstream)).await;
    let Ok(Ok(mut server)) = connect else {
        let _ = client.write_all(&bad_gateway).await;
        return;
    };
    if server.write_all(&head).await.is_err() {
        let _ = client.write_all(&bad_gateway).await;
        return;
    }
    // Relay the answer; an upstream that closes before its first byte gets a 502, as nginx's
    // "upstream prematurely closed connection" does.
    let mut first = [0u8; 4096];
    let n = match tokio::io::AsyncReadExt::read(&mut server, &mut first).await {
        Ok(n) if n > 0 => n,
        _ => {
            let _ = client.write_all(&bad_gateway).await;
            return;
        }
    };
    if client.write_all(&first[..n]).await.is_ok() {
        let _ = tokio::io::copy(&mut server, &mut client).await;
    }
    let _ = client.shutdown().await;
}

/// `kubectl exec LOAD -- /drain-e2e stop`: the load runs as PID 1 of the same container.
pub fn stop_pid1() -> anyhow::Result<ExitCode> {
    // SAFETY: kill has no memory effects; PID 1 is the load client in this container.
    let rc = unsafe { libc::kill(1, libc::SIGTERM) };
    if rc != 0 {
        anyhow::bail!(
            "cannot signal PID 1: {} (run this inside the load pod: kubectl exec POD -- /drain-e2e stop)",
            std::io::Error::last_os_error()
        );
    }
    Ok(ExitCode::SUCCESS)
}
