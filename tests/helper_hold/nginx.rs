//! `--migrate SIGHUP` against real nginx (Debian's build, which `make deps` installs): the
//! behaviour docs/helper.md's table of proxies rests on, tried rather than assumed. On SIGHUP
//! nginx's master re-reads its configuration and starts new workers on the same listening
//! sockets; the old workers close idle kept-alive connections and send HTTP/2 GOAWAY
//! (ngx_http_set_keepalive, ngx_http_v2_finalize_connection on `ngx_exiting`). A configuration
//! that no longer parses leaves the old workers, and their clients, in place.
//!
//! nginx serves from a temporary prefix on two loopback ports of its own (HTTP/1.1 and h2c);
//! the helper watches only those ports, so nothing else on the machine holds it.

use super::migrate::{AfterClose, HOLD_ARGS, client};
use super::*;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};

const NGINX: &str = "/usr/sbin/nginx";

fn configuration(dir: &Path, http1: u16, http2: u16) -> String {
    let dir = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {dir}/nginx.pid;\n\
         error_log {dir}/error.log info;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  keepalive_timeout 75s;\n\
         client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};\n\
         uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
         server {{ listen 127.0.0.1:{http1}; location / {{ return 200 \"ok\\n\"; }} }}\n\
         server {{ listen 127.0.0.1:{http2} http2; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
    )
}

/// nginx in the foreground (its master is this child), stopped when dropped.
struct Nginx {
    master: std::process::Child,
    dir: tempfile::TempDir,
    http1: u16,
    http2: u16,
}

impl Nginx {
    fn start() -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: `make deps` installs Debian's nginx (scripts/install-tools.sh)"
        );
        let dir = tempfile::tempdir().unwrap();
        let (http1, http2) = (free_port(), free_port());
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, configuration(dir.path(), http1, http2)).unwrap();
        write_atomically(&dir.path().join("snmp"), &snmp_text(50_000));
        let master = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Nginx {
            master,
            dir,
            http1,
            http2,
        };
        let started = Instant::now();
        while !nginx.still_serving() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx did not start:\n{}",
                nginx.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `drain-helper prestop ARGS` with nginx's master as the container's main process.
    fn helper(&self, args: &[&str]) -> Command {
        let mut command = helper(args, &self.dir.path().join("snmp"));
        command
            .env("DRAIN_HELPER_TARGET_PID", self.master.id().to_string())
            .env(
                "DRAIN_HELPER_INBOUND_PORTS",
                format!("{},{}", self.http1, self.http2),
            );
        command
    }

    fn still_serving(&mut self) -> bool {
        self.master.try_wait().unwrap().is_none()
            && TcpStream::connect(("127.0.0.1", self.http1)).is_ok()
            && TcpStream::connect(("127.0.0.1", self.http2)).is_ok()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop, so no worker outlives the test.
        #[allow(unsafe_code)]
        // SAFETY: a signal to our own child, by the PID we spawned and have not reaped.
        unsafe {
            libc::kill(self.master.id() as i32, libc::SIGQUIT);
        }
        let stopped = Instant::now();
        while self.master.try_wait().unwrap().is_none() {
            if stopped.elapsed() > Duration::from_secs(10) {
                let _ = self.master.kill();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.master.wait();
    }
}

/// What an HTTP/2 client with one connection saw.
#[derive(Debug, Default)]
struct H2Seen {
    answered: u32,
    failed: u32,
    /// When the server ended the connection (GOAWAY, then close), if it did.
    ended: Option<Instant>,
}

/// An h2c client on one connection, a request every 200 ms until `until` from now or until
/// the server ends the connection.
fn h2_client(port: u16, until: Duration) -> thread::JoinHandle<H2Seen> {
    let start = Instant::now();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .unwrap();
            let closed = tokio::spawn(async move {
                let result = connection.await;
                (Instant::now(), result.is_ok())
            });
            let mut seen = H2Seen::default();
            while start.elapsed() < until && sender.ready().await.is_ok() {
                let request = hyper::Request::get(format!("http://127.0.0.1:{port}/"))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                match sender.send_request(request).await {
                    Ok(response) if response.status() == 200 => seen.answered += 1,
                    _ => seen.failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            drop(sender);
            if let Ok(Ok((at, clean))) = tokio::time::timeout(Duration::from_secs(2), closed).await
            {
                assert!(clean, "the connection ended with an error");
                if start.elapsed() < until {
                    seen.ended = Some(at);
                }
            }
            seen
        })
    })
}

#[test]
fn real_nginx_lets_kept_alive_and_http2_clients_go_on_sighup_and_the_hold_ends_quiet() {
    let mut nginx = Nginx::start();
    let http1 = client(nginx.http1, Duration::from_secs(14), AfterClose::Leave);
    let http2 = h2_client(nginx.http2, Duration::from_secs(14));
    let mut args = HOLD_ARGS.to_vec();
    args.extend(["--migrate", "SIGHUP"]);
    let run = run(nginx.helper(&args));
    run.assert_exit_0();
    let log = run.log();
    let (at, reason, _) = run.hold_end();
    // Both clients pin the pod at D = 1 s; once they are gone, Q = 2 s: far from the cap.
    assert_eq!(reason, "quiet", "{log}");
    assert!((1.0..=1.0 + 2.0 + SLACK).contains(&at), "{at}\n{log}");
    assert!(
        log.contains(&format!(": sent SIGHUP to PID {}; ", nginx.master.id())),
        "{log}"
    );
    assert!(
        http1.join().unwrap().is_some(),
        "nginx closed the idle kept-alive connection:\n{log}\n{}",
        nginx.error_log()
    );
    let h2 = http2.join().unwrap();
    assert!(
        h2.ended.is_some(),
        "nginx ended the HTTP/2 connection: {h2:?}"
    );
    assert!(h2.answered >= 3, "{h2:?}");
    // A request racing the GOAWAY is refused unprocessed, which clients retry (RFC 9113
    // section 6.8); more than one would be a real failure.
    assert!(h2.failed <= 1, "{h2:?}");
    // The reload kept the listeners: the next connections reach the new workers.
    assert!(nginx.still_serving(), "{}", nginx.error_log());
}

#[test]
fn real_nginx_that_cannot_reload_keeps_its_clients_and_the_hold_runs_to_the_cap() {
    let mut nginx = Nginx::start();
    // An operator's edit that no longer parses: the master logs it and keeps the old workers.
    fs::write(
        nginx.dir.path().join("nginx.conf"),
        "this is not a configuration\n",
    )
    .unwrap();
    let http1 = client(nginx.http1, Duration::from_secs(14), AfterClose::Leave);
    let mut args = HOLD_ARGS.to_vec();
    args.extend(["--migrate", "SIGHUP"]);
    let run = run(nginx.helper(&args));
    run.assert_exit_0();
    let log = run.log();
    // The hold goes on exactly as without a migration: to the cap of 12 s.
    assert_eq!(run.hold_end().1, "cap", "{log}");
    assert!(log.contains(": sent SIGHUP to PID "), "{log}");
    assert_eq!(http1.join().unwrap(), None, "the connection stayed open");
    let errors = nginx.error_log();
    assert!(errors.contains("[emerg]"), "{errors}");
    assert!(nginx.still_serving(), "{errors}");
}
