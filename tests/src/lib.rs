//! Test support for Greenlight's integration tests: the moto AWS emulator and
//! local HTTP servers, all on 127.0.0.1 with ports chosen by the OS.
//!
//! The emulator is installed into `./.venv` by `scripts/bootstrap`. One server is
//! started per test process, on first use, and dies with the process: it is spawned
//! from a thread that lives as long as the process, with `PR_SET_PDEATHSIG`, so no
//! emulator is ever left running after the tests, even when a test panics or the
//! run is interrupted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod aws;
pub mod http;

/// The region every integration test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

/// What a run of the `greenlight` command printed, and how it exited.
#[derive(Debug, Clone)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `greenlight` binary off the async runtime, as an operator would: `args`,
/// the test region and credentials, no `GREENLIGHT_CONFIG*` from the environment
/// (tests pass `--config`), and `env` (the endpoint overrides).
pub async fn greenlight(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(binaries().join("greenlight"));
        command
            .args(&args)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        for name in [
            "GREENLIGHT_CONFIG",
            "GREENLIGHT_CONFIG_FILE",
            "GREENLIGHT_CONFIG_SSM",
            "GREENLIGHT_CONFIG_S3",
            "GREENLIGHT_HOOK_FUNCTION",
            "GREENLIGHT_LEDGER_TABLE",
        ] {
            command.env_remove(name);
        }
        let output = command.envs(env).output().expect("run greenlight");
        CliRun {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        }
    })
    .await
    .expect("the greenlight runner thread")
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
}

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn moto_binary() -> PathBuf {
    let path = workspace_root().join(".venv/bin/moto_server");
    assert!(
        path.exists(),
        "{} is missing: run scripts/bootstrap (the test command does) to install the emulator",
        path.display()
    );
    path
}

/// A free port on 127.0.0.1 (bound and released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The process-wide moto server, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start_moto)
}

fn start_moto() -> Moto {
    let binary = moto_binary();
    let port = free_port();
    let (tx, rx) = std::sync::mpsc::channel();
    // The spawning thread must outlive the tests: PDEATHSIG fires when the thread
    // that forked the child exits, not only when the process does.
    std::thread::Builder::new()
        .name("moto-parent".into())
        .spawn(move || {
            let mut command = Command::new(binary);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = command.spawn();
            let ok = child.is_ok();
            tx.send(child.map(|c| c.id()).map_err(|e| e.to_string()))
                .ok();
            if ok {
                loop {
                    std::thread::park();
                }
            }
        })
        .expect("spawn moto parent thread");
    let pid = rx
        .recv()
        .expect("moto parent thread")
        .unwrap_or_else(|e| panic!("cannot start moto_server: {e}"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if get(addr, "/moto-api/").is_some() {
            return Moto {
                endpoint: format!("http://127.0.0.1:{port}"),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server (pid {pid}) did not answer on {addr} within 30 s");
}

/// A plain blocking HTTP GET; `None` when nothing answers.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A name unique within this process, so tests sharing one emulator never collide.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The workspace's debug binaries (functions, `greenlight`), built once per test process
/// with the same package selection as the test command's own build, so nothing recompiles.
pub fn binaries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = workspace_root();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(&root)
                .args(["build", "--workspace", "--bins"])
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building the workspace binaries failed");
            root.join("target/debug")
        })
        .clone()
}

/// The DOM of a local HTML file after headless Chromium (Debian's package, installed
/// by `scripts/bootstrap`) loaded it and ran its scripts, and what Chromium printed
/// about the page's console (errors show there). Flags as this machine needs them: no
/// sandbox as root, no background networking (the network is closed).
pub fn chromium_dom(page: &Path) -> (String, String) {
    chromium_dom_at(page, 1280, 900)
}

/// [`chromium_dom`] in a window `width` × `height` CSS pixels (a phone is ~390 wide).
pub fn chromium_dom_at(page: &Path, width: u32, height: u32) -> (String, String) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is not installed: run scripts/bootstrap (it installs Debian's chromium)");
    let profile = std::env::temp_dir().join(unique("chromium-profile"));
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}
