//! `pagewire send` and `pagewire recv` as two processes over real QUIC and mutual TLS on
//! loopback, with certificates from `pagewire certs`: for precopy, two-fold, history-majority
//! and ours, the received file equals the sender's final image (the trace's image after the
//! epochs the live guest wrote before suspension) and a sent `--image` file is left as it was;
//! a receiver with another CA is refused with a clear message, Ctrl-C on the source aborts
//! with the reason shown on both sides and no file written, and a link cut for longer than
//! the idle timeout mid-migration (pre-copy or post-copy) is resumed once it is back, or
//! without resumption fails both sides of a post-copy with the guest's state named (where the
//! test may make a network namespace of its own).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::HotColdTrace;
use pagewire_bench::trace::{Epoch, TraceReader};
use pagewire_codec::PageNumber;

/// 256 pages of 4 KiB: 1 MiB.
const PAGES: u64 = 256;
const MEMORY: &str = "1MiB";

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pagewire-send-recv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pagewire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pagewire"))
}

/// `pagewire certs` into `dir/pki`.
fn certs(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let made = pagewire()
        .args(["certs", "--dir"])
        .arg(&pki)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    pki
}

/// A hot/cold trace over 1 MiB: 20 epochs of 10 ms, about 10 page writes each.
fn trace(dir: &Path) -> PathBuf {
    trace_of(dir, 20)
}

/// [`trace`] with `epochs` epochs.
fn trace_of(dir: &Path, epochs: u64) -> PathBuf {
    let path = dir.join("guest.trace");
    HotColdTrace {
        pages: PAGES,
        interval: Duration::from_millis(10),
        epochs,
        bytes_per_second: 4e6,
        identical_share: 0.3,
        seed: 3,
    }
    .write(&path);
    path
}

/// The trace's memory after its first `epochs` epochs.
fn image_after(trace: &Path, epochs: u64) -> Vec<u8> {
    let mut reader = TraceReader::open(trace).unwrap();
    reader.load_initial_image().unwrap();
    let mut epoch = Epoch::default();
    for _ in 0..epochs {
        assert!(reader.next_epoch(&mut epoch).unwrap());
    }
    let mut image = Vec::new();
    for page in 0..PAGES {
        image.extend_from_slice(reader.page(PageNumber(page)).unwrap());
    }
    image
}

fn tls(pki: &Path, side: &str) -> Vec<String> {
    let file = |name: String| pki.join(name).to_str().unwrap().to_owned();
    vec![
        "--ca".into(),
        file("ca.pem".into()),
        "--cert".into(),
        file(format!("{side}.pem")),
        "--key".into(),
        file(format!("{side}.key")),
    ]
}

/// A running `pagewire recv`, with its stderr read line by line.
struct Receiver {
    child: Child,
    stderr: BufReader<ChildStderr>,
    address: String,
}

impl Receiver {
    fn start(pki: &Path, out: &Path) -> Receiver {
        Receiver::start_with(pki, out, &[])
    }

    /// [`Receiver::start`] with more `recv` arguments.
    fn start_with(pki: &Path, out: &Path, extra: &[&str]) -> Receiver {
        let (child, mut stderr) = spawn_piped(
            pagewire()
                .args([
                    "recv",
                    "--listen",
                    "127.0.0.1:0",
                    "--memory",
                    MEMORY,
                    "--out",
                ])
                .arg(out)
                .args(extra)
                .args(tls(pki, "destination")),
        );
        let line = next_line(&mut stderr);
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("recv said {line:?}"))
            .to_owned();
        Receiver {
            child,
            stderr,
            address,
        }
    }

    /// Waits for recv to end; its stdout and the rest of its stderr.
    fn finish(mut self) -> (bool, String, String) {
        let success = wait(&mut self.child);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stderr, &mut rest).unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        (success, stdout, rest)
    }
}

/// Starts `command` with its stdout and stderr piped: the child, and its stderr to read line
/// by line.
fn spawn_piped(command: &mut Command) -> (Child, BufReader<ChildStderr>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, stderr)
}

fn next_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

/// Waits for `child` (killing it after 30 s); whether it exited successfully.
fn wait(child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("a pagewire process ran for more than 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(pki: &Path, to: &str, trace: &Path, strategy: &str, rate: &str) -> Command {
    let mut command = pagewire();
    command
        .args(["send", "--to", to, "--strategy", strategy, "--streams", "1"])
        .args(["--rate", rate, "--trace"])
        .arg(trace)
        .args(tls(pki, "source"));
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Where the sender's memory starts.
#[derive(Clone, Copy)]
enum Start {
    /// The trace's initial image.
    Trace,
    /// An `--image` file holding the trace's initial image (mapped by the sender).
    ImageFile,
}

/// Migrates the trace's guest with `strategy`; the received file must be the trace's image
/// after the epochs the guest wrote before it was suspended.
fn migrate(strategy: &str, start: Start) {
    migrate_with(strategy, start, trace, &[]);
}

/// [`migrate`] with more `send` arguments.
fn migrate_with(strategy: &str, start: Start, trace: fn(&Path) -> PathBuf, extra: &[&str]) {
    let dir = scratch(strategy);
    let pki = certs(&dir);
    let trace = trace(&dir);
    let out = dir.join("received.img");
    let receiver = Receiver::start(&pki, &out);
    let mut command = send(&pki, &receiver.address, &trace, strategy, "4mbit");
    command.args(extra);
    let image = dir.join("guest.img");
    let initial = image_after(&trace, 0);
    if let Start::ImageFile = start {
        std::fs::write(&image, &initial).unwrap();
        command.arg("--image").arg(&image);
    }
    let sent = command.output().unwrap();
    let (stdout, stderr) = text(&sent);
    let (received, recv_stdout, recv_stderr) = receiver.finish();
    assert!(sent.status.success(), "{strategy}: send failed: {stderr}");
    assert!(received, "{strategy}: recv failed: {recv_stderr}");
    for summary in [&stdout, &recv_stdout] {
        assert!(
            summary.contains("Migration status: completed"),
            "{strategy}: {summary}"
        );
    }
    let landed: u64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("guest: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{strategy}: no guest line in {stdout}"));
    // The first pass alone takes about a second at 4 mbit; the first epoch lands at 10 ms.
    assert!(landed >= 1, "{strategy}: the guest wrote nothing live");
    let received = std::fs::read(&out).unwrap();
    assert!(
        received == image_after(&trace, landed),
        "{strategy}: the received memory differs from the source's final memory"
    );
    assert!(!dir.join("received.img.partial").exists());
    if let Start::ImageFile = start {
        assert!(
            std::fs::read(&image).unwrap() == initial,
            "{strategy}: the guest's writes reached the --image file"
        );
    }
    if strategy == "postcopy" || strategy == "hybrid" {
        check_postcopy_summaries(strategy, &stdout, &recv_stdout);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The number after `word` on the line of `summary` that starts with `line` (`word` empty:
/// the line's first number).
fn number_after(summary: &str, line: &str, word: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .and_then(|rest| rest.split_once(word).map(|(_, after)| after))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number after {line:?}...{word:?} in {summary}"))
}

/// Both summaries report post-copy: the deferred pages, and at the destination the faults of
/// the stand-in vCPU (which touches pages against the push's order, so it faults) and the
/// time it waited for them.
fn check_postcopy_summaries(strategy: &str, sent: &str, received: &str) {
    let deferred = number_after(sent, "post-copy:", "");
    assert!(deferred > 0, "{strategy}: {sent}");
    assert!(
        sent.contains("(suspension to POSTCOPY_BEGIN)"),
        "{strategy}: {sent}"
    );
    assert_eq!(number_after(received, "post-copy:", ""), deferred);
    let faults = number_after(received, "post-copy:", "deferred;");
    assert!(faults > 0, "{strategy}: no fault: {received}");
    let served = number_after(received, "fault-in wait:", "max");
    assert_eq!(served, faults, "{strategy}: {received}");
    let requested = number_after(sent, "post-copy:", "deferred;");
    assert_eq!(requested, faults, "{strategy}: {sent}");
}

/// Runs the migrations side by side (each waits mostly on its rate-limited link).
fn migrate_all(runs: &[(&'static str, Start)]) {
    let runs: Vec<_> = runs
        .iter()
        .map(|&(strategy, start)| std::thread::spawn(move || migrate(strategy, start)))
        .collect();
    for run in runs {
        run.join().unwrap();
    }
}

#[test]
fn precopy_and_ours_deliver_the_live_guests_final_memory() {
    migrate_all(&[("precopy", Start::Trace), ("ours", Start::Trace)]);
}

/// Post-copy suspends the guest before the first round: `--start` lets it write a few epochs
/// first, so the image differs from the trace's initial one. Hybrid runs one live round.
#[test]
fn postcopy_and_hybrid_deliver_the_final_memory_with_the_destination_faulting_pages_in() {
    let postcopy =
        std::thread::spawn(|| migrate_with("postcopy", Start::Trace, trace, &["--start", "50ms"]));
    // Hybrid defers only what the guest writes after its live pass began. The 200 ms of the
    // usual trace can all pass during the connection set-up of a slow debug build, leaving
    // nothing to defer; a 2 s trace still writes during the pass (about 1 s at 4 mbit).
    let hybrid = std::thread::spawn(|| {
        migrate_with("hybrid", Start::ImageFile, |dir| trace_of(dir, 200), &[])
    });
    postcopy.join().unwrap();
    hybrid.join().unwrap();
}

#[test]
fn two_fold_and_history_majority_deliver_the_final_memory_of_a_mapped_image() {
    migrate_all(&[
        ("two-fold", Start::ImageFile),
        ("history-majority", Start::ImageFile),
    ]);
}

#[test]
fn a_destination_with_another_ca_is_refused_and_writes_nothing() {
    let dir = scratch("other-ca");
    let pki = certs(&dir);
    let other = certs(&dir.join("other"));
    let trace = trace(&dir);
    let out = dir.join("received.img");
    let mut receiver = Receiver::start(&other, &out);
    let sent = send(&pki, &receiver.address, &trace, "precopy", "4mbit")
        .output()
        .unwrap();
    let (_, stderr) = text(&sent);
    assert!(!sent.status.success());
    // Both CAs are named alike (`pagewire certs`), so the signature is what fails.
    assert!(
        stderr.contains("connection refused: we refused the peer: TLS alert DecryptError")
            && stderr.contains("does not verify with the configured CA"),
        "send said: {stderr}"
    );
    let line = next_line(&mut receiver.stderr);
    assert!(
        line.starts_with("refused a peer: the peer refused us: TLS alert DecryptError"),
        "recv said {line:?}"
    );
    receiver.child.kill().unwrap();
    receiver.child.wait().unwrap();
    assert!(!out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ctrl_c_on_the_source_aborts_with_the_reason_on_both_sides() {
    let dir = scratch("abort");
    let pki = certs(&dir);
    let trace = trace(&dir);
    let out = dir.join("received.img");
    let mut receiver = Receiver::start(&pki, &out);
    let (mut sender, mut sender_stderr) = spawn_piped(&mut send(
        &pki,
        &receiver.address,
        &trace,
        "precopy",
        "1mbit",
    ));
    let line = next_line(&mut receiver.stderr);
    assert!(line.starts_with("migrating from"), "recv said {line:?}");
    // Interrupt once the migration runs (an interrupt while connecting only ends the source).
    let line = next_line(&mut sender_stderr);
    assert!(line.starts_with("migrating to"), "send said {line:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sender.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let sent_ok = wait(&mut sender);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut sender_stderr, &mut stderr).unwrap();
    let (received, _, recv_stderr) = receiver.finish();
    assert!(!sent_ok && !received);
    assert!(
        stderr.contains("migration aborted by this side")
            && stderr.contains("the source was interrupted (SIGINT)"),
        "send said: {stderr}"
    );
    assert!(
        recv_stderr.contains("the peer aborted")
            && recv_stderr.contains("the source was interrupted (SIGINT)"),
        "recv said: {recv_stderr}"
    );
    assert!(!out.exists() && !dir.join("received.img.partial").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Moves this thread into a network namespace of its own with its loopback up; processes it
/// starts afterwards live there. `Err` says why it could not (it needs root and `ip`).
fn own_loopback() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|error| format!("no network namespace ({error})"))?;
    set_loopback("up")
}

/// `ip link set lo up|down` in this thread's network namespace: down, every packet between
/// the processes is lost (their sockets stay bound); up, they pass again.
fn set_loopback(state: &str) -> Result<(), String> {
    let status = Command::new("ip")
        .args(["link", "set", "lo", state])
        .status()
        .map_err(|error| format!("ip: {error}"))?;
    status
        .success()
        .then_some(())
        .ok_or(format!("ip link set lo {state}: {status}"))
}

/// A migration whose link was cut, as it came out: send's and recv's success, stdout and
/// stderr.
struct CutRun {
    sent: bool,
    stdout: String,
    stderr: String,
    received: bool,
    recv_stdout: String,
    recv_stderr: String,
}

/// Where and how long the link goes down.
struct Cut {
    /// After send said it is migrating.
    after: Duration,
    /// Down for this long (the idle timeout is 2 s).
    for_: Duration,
}

/// Migrates the usual trace into `dir` with `strategy` at `rate` (send also gets `send_extra`)
/// and takes the loopback down as `cut` says. Both sides take a link silent for 2 s as lost
/// (the transport's default is 30 s). `None` where the test cannot make a network namespace.
fn migrate_with_a_cut(
    dir: &Path,
    strategy: &str,
    rate: &str,
    cut: Cut,
    send_extra: &[&str],
) -> Option<CutRun> {
    if let Err(why) = own_loopback() {
        eprintln!("skipped: cannot cut a loopback of its own: {why}");
        return None;
    }
    let pki = certs(dir);
    let trace = trace(dir);
    let out = dir.join("received.img");
    let idle = ["--idle-timeout", "2s"];
    let receiver = Receiver::start_with(
        &pki,
        &out,
        &[&idle[..], &["--resume-grace", "20s"]].concat(),
    );
    let (mut sender, mut sender_stderr) = spawn_piped(
        send(&pki, &receiver.address, &trace, strategy, rate)
            .args(idle)
            .args(["--resume-backoff", "200ms"])
            .args(send_extra),
    );
    let line = next_line(&mut sender_stderr);
    assert!(line.starts_with("migrating to"), "send said {line:?}");
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut sender_stderr, &mut rest).unwrap();
        rest
    });
    std::thread::sleep(cut.after);
    set_loopback("down").unwrap();
    std::thread::sleep(cut.for_);
    set_loopback("up").unwrap();
    let sent = wait(&mut sender);
    let stderr = stderr.join().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(sender.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let (received, recv_stdout, recv_stderr) = receiver.finish();
    Some(CutRun {
        sent,
        stdout,
        stderr,
        received,
        recv_stdout,
        recv_stderr,
    })
}

/// Both sides completed after at least one resumption, and the received file is the
/// source's memory as of its suspension (recv's stand-in vCPU writes nothing).
fn assert_resumed(dir: &Path, run: &CutRun) {
    assert!(run.sent, "send failed: {}", run.stderr);
    assert!(run.received, "recv failed: {}", run.recv_stderr);
    for summary in [&run.stdout, &run.recv_stdout] {
        assert!(summary.contains("Migration status: completed"), "{summary}");
        assert!(
            number_after(summary, "resumed after a dropped link: ", "") >= 1,
            "no resumption: {summary}"
        );
    }
    let landed = number_after(&run.stdout, "guest: ", "");
    assert!(
        std::fs::read(dir.join("received.img")).unwrap()
            == image_after(&dir.join("guest.trace"), landed),
        "the received memory differs from the source's final memory"
    );
}

#[test]
fn a_link_cut_mid_migration_is_resumed_and_delivers_the_final_memory() {
    let dir = scratch("cut");
    // The first pass takes seconds at 1 Mbit/s: cut it for two idle timeouts and a half.
    let cut = Cut {
        after: Duration::from_millis(500),
        for_: Duration::from_secs(5),
    };
    let Some(run) = migrate_with_a_cut(&dir, "precopy", "1mbit", cut, &["--resume-attempts", "10"])
    else {
        return;
    };
    assert_resumed(&dir, &run);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Post-copy suspends at once; at 100 kbit/s its push takes half a minute, and the stand-in
/// vCPU's faults (served on the unthrottled control stream) about a second: a cut 300 ms in
/// comes during post-copy. `Some((run, pages deferred))`.
fn post_copy_with_a_cut(dir: &Path, for_: Duration, send_extra: &[&str]) -> Option<(CutRun, u64)> {
    let cut = Cut {
        after: Duration::from_millis(300),
        for_,
    };
    let send_extra = [&["--start", "50ms"][..], send_extra].concat();
    let run = migrate_with_a_cut(dir, "postcopy", "100kbit", cut, &send_extra)?;
    let deferred = number_after(&run.stdout, "post-copy:", "");
    assert!(
        deferred > 0,
        "the cut came before post-copy: {}",
        run.stdout
    );
    Some((run, deferred))
}

/// Post-copy resumes too: the guest ran at the destination, which reports every page it
/// holds, and the source sends the deferred pages still missing.
#[test]
fn a_link_cut_in_post_copy_is_resumed_and_delivers_the_memory() {
    let dir = scratch("cut-postcopy");
    let Some((run, _)) = post_copy_with_a_cut(&dir, Duration::from_secs(5), &[]) else {
        return;
    };
    assert_resumed(&dir, &run);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Without resumption a link cut after POSTCOPY_BEGIN fails both sides, and each says what
/// became of the guest, which ran at the destination.
#[test]
fn a_link_cut_in_post_copy_without_resumption_names_the_guests_state() {
    let dir = scratch("cut-postcopy-final");
    let Some((run, deferred)) =
        post_copy_with_a_cut(&dir, Duration::from_secs(3), &["--resume-attempts", "0"])
    else {
        return;
    };
    assert!(
        !run.sent && !run.received,
        "the migration survived the cut:\n{}\n{}",
        run.stdout,
        run.recv_stdout
    );
    assert!(
        run.stderr
            .contains("post-copy failed: the guest has run at the destination"),
        "send said: {}",
        run.stderr
    );
    let missing = run
        .recv_stderr
        .split("lacks ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("recv said: {}", run.recv_stderr));
    assert!(
        (1..=deferred).contains(&missing)
            && run.recv_stderr.contains(&format!("of its {PAGES} pages")),
        "recv said: {}",
        run.recv_stderr
    );
    assert!(!dir.join("received.img").exists() && !dir.join("received.img.partial").exists());
    std::fs::remove_dir_all(dir).unwrap();
}
