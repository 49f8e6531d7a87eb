// SPDX-License-Identifier: GPL-2.0

//! `swcci fw`: firmware update of a switch, or of a component behind it through tunnels
//! (swcci-lib's `Cci::fw_*`, Documentation/firmware.rst): `info`, `update`, `activate`,
//! `abort`.
//!
//! `update` shows a progress bar on a terminal (indicatif, on standard error), or with
//! `--json` prints progress as JSON lines and a final result line on standard output.
//! SIGINT and SIGTERM (signal-hook) set the library's cancel flag: the transfer is aborted and
//! the device's confirmation awaited; a second signal exits at once.

use crate::args::fw::{AbortArgs, ActivateArgs, ActivateWhen, FwArgs, FwCommand, UpdateArgs};
use crate::decode;
use crate::dev;
use crate::error::{
    CliError, EXIT_ABORT_UNCONFIRMED, EXIT_INTERRUPTED, EXIT_UNCONFIRMED, EXIT_USAGE,
};
use crate::output::{render_record, render_table, Field, Outcome, Record};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use swcci::{
    command_name, AbortOutcome, ActivateAction, ActivateReport, Cci, FwError, FwFailure, FwInfo,
    FwOptions, Phase, Progress, Target, TransferReport,
};
use swcci_proto::opcode;

type Result<T> = std::result::Result<T, CliError>;

/// What a `fw` command printed and the errors after it (for the dispatch in main.rs).
pub fn run(args: FwArgs, json: bool) -> Result<Outcome> {
    let (stdout, errors) = match args.what {
        FwCommand::Info(a) => {
            let d = dev::open(&a.dev)?;
            (info(&d.on(a.target.target()))?.render(json), Vec::new())
        }
        FwCommand::Update(a) => update(&a, json)?,
        FwCommand::Activate(a) => activate(&a, json)?,
        FwCommand::Abort(a) => abort(&a, json)?,
    };
    Ok(Outcome {
        stdout,
        warnings: Vec::new(),
        errors,
    })
}

/// `via port 3` for messages (empty for the switch itself).
fn via(t: Target) -> String {
    match t {
        Target::Direct => String::new(),
        t => format!(" via {t}"),
    }
}

/// A slot number of Get FW Info (CXL r3.1 §8.2.9.3.1); 0 means none: `-`, JSON null.
fn slot_field(key: &'static str, s: u8) -> Field {
    if s == 0 {
        Field::new(key, "-", Value::Null)
    } else {
        Field::num(key, s)
    }
}

/// The fields of Get FW Info, and one row per slot.
fn info_parts(i: &FwInfo) -> (Record, Vec<Record>) {
    let head = Record(vec![
        Field::num("slots_supported", i.slots_supported),
        slot_field("active_slot", i.active_slot),
        slot_field("staged_slot", i.staged_slot),
        Field::new(
            "online_activation",
            if i.online_activation { "yes" } else { "no" },
            i.online_activation,
        ),
    ]);
    let n = i
        .slots_supported
        .min(swcci_proto::payload::firmware::MAX_SLOTS);
    let rows = (1..=n)
        .map(|s| {
            let rev = swcci::revision_text(i, s);
            let state = match (s == i.active_slot, s == i.staged_slot) {
                (true, _) => "active",
                (false, true) => "staged",
                _ => "-",
            };
            Record(vec![
                Field::num("slot", s),
                Field::new("state", state, state)
                    .with("active", s == i.active_slot)
                    .with("staged", s == i.staged_slot),
                Field::new(
                    "revision",
                    if rev.is_empty() { "-" } else { rev.as_str() },
                    rev.clone(),
                ),
            ])
        })
        .collect();
    (head, rows)
}

/// A rendered Get FW Info: `key : value` lines then a slot table; JSON with a `slots` array.
struct InfoDoc {
    head: Record,
    slots: Vec<Record>,
}

impl InfoDoc {
    fn render(&self, json: bool) -> String {
        if json {
            let mut m = match self.head.to_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            m.insert(
                "slots".into(),
                Value::Array(self.slots.iter().map(Record::to_json).collect()),
            );
            return format!("{:#}\n", Value::Object(m));
        }
        let headings: Vec<String> = self
            .slots
            .first()
            .map(|r| r.0.iter().map(Field::heading).collect())
            .unwrap_or_default();
        let cells: Vec<Vec<String>> = self
            .slots
            .iter()
            .map(|r| r.0.iter().map(|f| f.text.clone()).collect())
            .collect();
        format!(
            "{}\n{}",
            render_record(&self.head),
            render_table(&headings, &cells)
        )
    }
}

fn info(cci: &Cci<'_>) -> Result<InfoDoc> {
    let i = cci.fw_info().map_err(|e| info_error(e, cci.target()))?;
    let (fields, slots) = info_parts(&i);
    let mut head = match cci.target() {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    };
    head.extend(fields);
    Ok(InfoDoc { head, slots })
}

/// A failed Get FW Info (0200h) to `target`: a refusal gets its meaning ([`swcci::rc_meaning`]:
/// unsupported on the switch itself, or through tunnels).
fn info_error(e: swcci::Error, target: Target) -> CliError {
    match e
        .rc()
        .and_then(|rc| swcci::rc_meaning(opcode::GET_FW_INFO, rc, target))
    {
        Some(m) => CliError::Exit {
            code: crate::error::lib_exit_code(&e),
            message: format!("{e}: {m}"),
        },
        None => e.into(),
    }
}

/// The exit status of a failed firmware command.
pub fn exit_code(e: &FwError) -> i32 {
    if !e.abort.is_clean() {
        return EXIT_ABORT_UNCONFIRMED;
    }
    match &e.failure {
        FwFailure::Cancelled => EXIT_INTERRUPTED,
        FwFailure::Invalid(_) => EXIT_USAGE,
        FwFailure::Unconfirmed(_) => EXIT_UNCONFIRMED,
        FwFailure::Command { error, .. } => crate::error::lib_exit_code(error),
    }
}

/// The CLI error of a failed firmware command, with the hint of its library error
/// ([`crate::error::hint`]: EPERM).
fn cli_error(e: &FwError) -> CliError {
    let message = match e.error().and_then(crate::error::hint) {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    };
    CliError::Exit {
        code: exit_code(e),
        message,
    }
}

/// `not-needed`, `confirmed` or `failed`.
fn abort_name(a: &AbortOutcome) -> &'static str {
    match a {
        AbortOutcome::NotNeeded => "not-needed",
        AbortOutcome::Confirmed { .. } => "confirmed",
        AbortOutcome::Failed(_) => "failed",
    }
}

/// The JSON members of a failed firmware command.
fn failure_json(e: &FwError) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ok".into(), false.into());
    m.insert("error".into(), e.to_string().into());
    m.insert("exit_status".into(), exit_code(e).into());
    let kind = match &e.failure {
        FwFailure::Invalid(_) => "invalid",
        FwFailure::Command { .. } => "command",
        FwFailure::Cancelled => "interrupted",
        FwFailure::Unconfirmed(_) => "unconfirmed",
    };
    m.insert("failure".into(), kind.into());
    if let Some(rc) = e.rc() {
        m.insert("rc".into(), rc.raw().into());
        m.insert("rc_name".into(), rc.name().unwrap_or("unknown").into());
    }
    if let Some(errno) = e.error().and_then(swcci::Error::errno) {
        m.insert("errno".into(), swcci::errno_name(errno).into());
    }
    m.insert("sent".into(), e.sent.into());
    m.insert("total".into(), e.total.into());
    m.insert("abort".into(), abort_name(&e.abort).into());
    m
}

/// Registers SIGINT and SIGTERM: the first sets `flag`, a second exits at once with
/// [`EXIT_ABORT_UNCONFIRMED`].
fn catch_signals(flag: &Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Order matters: the shutdown checks the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            EXIT_ABORT_UNCONFIRMED,
            Arc::clone(flag),
        )
        .and_then(|_| signal_hook::flag::register(sig, Arc::clone(flag)))
        .map_err(|err| {
            CliError::Lib(swcci::Error::Os {
                op: "install the SIGINT/SIGTERM handlers".into(),
                err,
            })
        })?;
    }
    Ok(())
}

/// Writes one line to stdout at once (progress must not wait for the end).
fn emit_line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

/// Turns library progress into the bar or JSON lines.
struct Reporter {
    json: bool,
    bar: Option<ProgressBar>,
    last: Option<(Phase, u64)>,
    /// The cancel flag: set by a signal; the abort that follows is announced.
    cancel: Arc<AtomicBool>,
    told_abort: bool,
}

impl Reporter {
    fn new(json: bool, total: u64, cancel: Arc<AtomicBool>) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:9} [{bar:30}] {bytes}/{total_bytes} {percent:>3}% {binary_bytes_per_sec} \
                 ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            json,
            bar,
            last: None,
            cancel,
            told_abort: false,
        }
    }

    /// The JSON progress line for `p`, when its phase or whole percent changed.
    fn line(&mut self, p: &Progress) -> Option<Value> {
        let percent = p.sent.saturating_mul(100).checked_div(p.total).unwrap_or(0);
        let key = (p.phase, percent);
        if self.last == Some(key) {
            return None;
        }
        self.last = Some(key);
        Some(json!({
            "event": "progress",
            "phase": p.phase.name(),
            "sent": p.sent,
            "total": p.total,
            "percent": percent,
            "part": p.part,
            "parts": p.parts,
        }))
    }

    fn progress(&mut self, p: &Progress) {
        if p.phase == Phase::Abort && self.cancel.load(Ordering::SeqCst) && !self.told_abort {
            self.told_abort = true;
            let msg = "swcci: interrupted: sending Transfer FW (Abort) and waiting for the \
                       device (Ctrl-C again to exit at once)";
            match &self.bar {
                Some(b) => b.suspend(|| eprintln!("{msg}")),
                None if !self.json => eprintln!("{msg}"),
                None => {}
            }
        }
        if self.json {
            if let Some(v) = self.line(p) {
                emit_line(&v);
            }
        } else if let Some(b) = &self.bar {
            b.set_message(p.phase.name());
            b.set_position(p.sent);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The fields of a completed transfer.
fn transfer_record(r: &TransferReport) -> Record {
    let secs = r.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        r.bytes as f64 / secs
    } else {
        0.0
    };
    let mut rec = match r.target {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    };
    let rev = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    rec.extend(Record(vec![
        Field::num("slot", r.slot),
        Field::num("bytes", r.bytes),
        Field::num("parts", r.parts as u64),
        Field::num("part_size", r.part_size as u64),
        Field::new("seconds", format!("{secs:.3}"), secs),
        Field::new("rate", format!("{:.0} B/s", rate), rate.round()),
        Field::num("busy_retries", r.busy_retries),
        Field::new(
            "revision_before",
            rev(&r.revision_before),
            r.revision_before.clone(),
        ),
        Field::new("revision", rev(&r.revision), r.revision.clone()),
        Field::new(
            "changed",
            if r.changed() { "yes" } else { "no" },
            r.changed(),
        ),
    ]));
    rec
}

fn activation_record(a: &ActivateReport) -> Record {
    let when = match a.action {
        ActivateAction::Online => "online",
        ActivateAction::OnReset => "reset",
    };
    Record(vec![
        Field::new("activated", when, when),
        slot_field("active_slot", a.info.active_slot),
        slot_field("staged_slot", a.info.staged_slot),
    ])
}

/// How a command ended, for its final document.
enum End<'a> {
    /// It succeeded.
    Done,
    /// It failed; `show`: the text output still shows the record (what was done before).
    Failed(&'a FwError, bool),
    /// The transfer completed but Ctrl-C came before the activation.
    NotActivated,
}

/// The final document: `key : value` lines, or (with --json) one result line with `ok` and,
/// on failure, the error's members.
fn result_text(rec: &Record, json: bool, end: End<'_>) -> String {
    if json {
        let mut m = match rec.to_json() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("event".into(), "result".into());
        match end {
            End::Done => {
                m.insert("ok".into(), true.into());
            }
            End::Failed(e, _) => m.extend(failure_json(e)),
            End::NotActivated => {
                m.insert("ok".into(), false.into());
                m.insert("failure".into(), "interrupted".into());
                m.insert("exit_status".into(), EXIT_INTERRUPTED.into());
            }
        }
        return format!("{}\n", Value::Object(m));
    }
    match end {
        End::Failed(_, false) => String::new(),
        _ => render_record(rec),
    }
}

/// The largest image `fw update` sends, in bytes (256 MiB). Transfer FW (0201h) offsets, in
/// 128-byte units, would reach 512 GiB ([`swcci::MAX_IMAGE`]); switch and device firmware is
/// a few MiB, and the whole image is held in memory. Documentation/firmware.rst.
pub const IMAGE_LIMIT: u64 = 256 << 20;

/// Reads an image of at most `limit` bytes. A file that cannot be read is an OS error; an
/// empty or larger one a usage error (exit status 2), before the device is opened; a larger
/// one is found after reading `limit + 1` bytes at most (`/dev/zero` is endless).
fn read_image(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let os = |err| {
        CliError::Lib(swcci::Error::Os {
            op: format!("read image {}", path.display()),
            err,
        })
    };
    let mut image = Vec::new();
    std::fs::File::open(path)
        .map_err(os)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut image)
        .map_err(os)?;
    if image.is_empty() {
        return Err(CliError::Exit {
            code: EXIT_USAGE,
            message: format!(
                "image {}: empty (0 bytes); nothing was sent",
                path.display()
            ),
        });
    }
    if u64::try_from(image.len()).is_ok_and(|n| n <= limit) {
        return Ok(image);
    }
    let size = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => format!("{} bytes", m.len()),
        _ => format!("more than {limit} bytes"),
    };
    Err(CliError::Exit {
        code: EXIT_USAGE,
        message: format!(
            "image {}: {size}; swcci fw update sends images of at most {limit} bytes ({} MiB); \
             nothing was sent",
            path.display(),
            limit >> 20
        ),
    })
}

fn update(a: &UpdateArgs, json: bool) -> Result<(String, Vec<CliError>)> {
    let target = a.target.target();
    if !a.yes {
        return Err(CliError::Refused(format!(
            "write {} to firmware slot {} of {}{} ({}){}",
            a.image.display(),
            a.slot,
            a.dev,
            via(target),
            command_name(opcode::TRANSFER_FW),
            match a.activate {
                Some(ActivateWhen::Online) => " and activate it online",
                Some(ActivateWhen::Reset) => " and activate it at the next cold reset",
                None => "",
            }
        )));
    }
    let image = read_image(&a.image, IMAGE_LIMIT)?;
    let dev = dev::open(&a.dev)?;
    let cci = dev.on(target);
    let cancel = Arc::new(AtomicBool::new(false));
    catch_signals(&cancel)?;
    // Over MCTP the background wait is the library's: the signal ends it as it ends the
    // driver's.
    dev.set_cancel(Arc::clone(&cancel));
    let opts = FwOptions {
        max_part: a.max_part,
        expect_revision: a.expect_revision.clone(),
        ..a.wait.options()
    };
    let mut rep = Reporter::new(json, image.len() as u64, Arc::clone(&cancel));
    let r = cci.fw_transfer(&image, a.slot, &opts, &mut |p| rep.progress(p), &cancel);
    rep.finish();
    let done = match r {
        Ok(done) => done,
        Err(e) => {
            let mut rec = decode::target_record(target);
            if target == Target::Direct {
                rec = Record::default();
            }
            rec.push(Field::num("slot", a.slot));
            return Ok((
                result_text(&rec, json, End::Failed(&e, false)),
                vec![cli_error(&e)],
            ));
        }
    };
    let mut rec = transfer_record(&done);
    let Some(when) = a.activate else {
        return Ok((result_text(&rec, json, End::Done), Vec::new()));
    };
    if cancel.load(Ordering::SeqCst) {
        let msg = format!(
            "{}: interrupted before activation: slot {} holds the new image (revision {:?}); \
             it was not activated",
            cci.op("firmware update"),
            a.slot,
            done.revision
        );
        rec.push(Field::new("activated", "no", false));
        let e = CliError::Exit {
            code: EXIT_INTERRUPTED,
            message: msg,
        };
        return Ok((result_text(&rec, json, End::NotActivated), vec![e]));
    }
    match cci.fw_activate(a.slot, when.action(), &opts) {
        Ok(act) => {
            rec.extend(activation_record(&act));
            Ok((result_text(&rec, json, End::Done), Vec::new()))
        }
        Err(e) => {
            rec.push(Field::new("activated", "no", false));
            let e2 = CliError::Exit {
                code: exit_code(&e),
                message: format!(
                    "the transfer completed (slot {} reports revision {:?}), but {e}",
                    a.slot, done.revision
                ),
            };
            Ok((result_text(&rec, json, End::Failed(&e, true)), vec![e2]))
        }
    }
}

fn activate(a: &ActivateArgs, json: bool) -> Result<(String, Vec<CliError>)> {
    let target = a.target.target();
    let action = match a.activate {
        Some(when) => when.action(),
        None if a.online => ActivateAction::Online,
        None => ActivateAction::OnReset,
    };
    if !a.yes {
        return Err(CliError::Refused(format!(
            "activate firmware slot {} of {}{} {} ({})",
            a.slot,
            a.dev,
            via(target),
            action,
            command_name(opcode::ACTIVATE_FW)
        )));
    }
    let dev = dev::open(&a.dev)?;
    let cci = dev.on(target);
    // Activation is not interrupted: the first signal is noted, a second exits at once.
    let cancel = Arc::new(AtomicBool::new(false));
    catch_signals(&cancel)?;
    let mut rec = match target {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    };
    rec.push(Field::num("slot", a.slot));
    match cci.fw_activate(a.slot, action, &a.wait.options()) {
        Ok(r) => {
            rec.extend(activation_record(&r));
            Ok((result_text(&rec, json, End::Done), Vec::new()))
        }
        Err(e) => Ok((
            result_text(&rec, json, End::Failed(&e, false)),
            vec![cli_error(&e)],
        )),
    }
}

fn abort(a: &AbortArgs, json: bool) -> Result<(String, Vec<CliError>)> {
    let target = a.target.target();
    if !a.yes {
        return Err(CliError::Refused(format!(
            "abort the firmware transfer open on {}{} ({} Abort)",
            a.dev,
            via(target),
            command_name(opcode::TRANSFER_FW)
        )));
    }
    let dev = dev::open(&a.dev)?;
    let cci = dev.on(target);
    let mut rec = match target {
        Target::Direct => Record::default(),
        t => decode::target_record(t),
    };
    match cci.fw_abort(&a.wait.options()) {
        Ok(r) => {
            rec.push(Field::new("aborted", "yes", true));
            rec.push(Field::num("busy_retries", r.busy_retries));
            rec.extend(info_parts(&r.info).0);
            Ok((result_text(&rec, json, End::Done), Vec::new()))
        }
        Err(e) => Ok((
            result_text(&rec, json, End::Failed(&e, false)),
            vec![cli_error(&e)],
        )),
    }
}

/// Help text of the `fw` exit statuses (also in the top-level list).
#[cfg(test)]
fn doc_for(code: i32) -> Option<&'static str> {
    crate::error::EXIT_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::fw::WaitArgs;
    use crate::args::TargetArgs;
    use std::time::Duration;
    use swcci::proto::rc::ReturnCode;

    fn info() -> FwInfo {
        let mut revisions = [[0u8; 16]; 4];
        revisions[0][..7].copy_from_slice(b"emu 1.0");
        revisions[2][..6].copy_from_slice(b"fw 2.0");
        FwInfo {
            slots_supported: 3,
            active_slot: 1,
            staged_slot: 3,
            online_activation: true,
            revisions,
        }
    }

    #[test]
    fn images_larger_than_the_limit_are_refused() {
        let path = std::env::temp_dir().join(format!("swcci-fw-{}", std::process::id()));
        std::fs::write(&path, vec![0x5a; 300]).unwrap();
        assert_eq!(read_image(&path, 300).unwrap(), vec![0x5a; 300]);
        let e = read_image(&path, 256).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert!(
            e.to_string()
                .contains(": 300 bytes; swcci fw update sends images of at most 256"),
            "{e}"
        );
        // An endless file: refused after limit + 1 bytes, without its size.
        let e = read_image(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "image /dev/zero: more than 1048576 bytes; swcci fw update sends images of at most \
             1048576 bytes (1 MiB); nothing was sent"
        );
        let e = read_image(Path::new("/nonexistent/fw.bin"), 1).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_OS);
        // An empty image: refused here, before any device is opened.
        let e = read_image(Path::new("/dev/null"), 1 << 20).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "image /dev/null: empty (0 bytes); nothing was sent"
        );
    }

    #[test]
    fn activation_shows_no_staged_slot_as_fw_info_does() {
        let mut i = info();
        i.active_slot = 2;
        i.staged_slot = 0;
        let rec = activation_record(&ActivateReport {
            slot: 2,
            action: ActivateAction::Online,
            busy_retries: 0,
            info: i,
        });
        assert_eq!(rec.text("active_slot"), Some("2"));
        assert_eq!(rec.text("staged_slot"), Some("-"));
        assert_eq!(rec.get("staged_slot").unwrap().json, Value::Null);
        assert_eq!(rec.to_json()["staged_slot"], Value::Null);
        let (head, _) = info_parts(&i);
        assert_eq!(head.text("staged_slot"), rec.text("staged_slot"));
    }

    #[test]
    fn unsupported_get_fw_info_says_why() {
        let refused = |target| {
            info_error(
                swcci::Error::Device {
                    op: "Get FW Info (0200h) on /dev/cxl/switch0".into(),
                    rc: ReturnCode::Unsupported,
                },
                target,
            )
        };
        let direct = refused(Target::Direct);
        assert_eq!(direct.exit_code(), crate::error::EXIT_DEVICE);
        assert!(
            direct
                .to_string()
                .ends_with(": the device does not implement the Firmware Update command set (QEMU's switch CCI does not)"),
            "{direct}"
        );
        let tunnelled = refused(Target::Port(1)).to_string();
        assert!(tunnelled.contains("through tunnels"), "{tunnelled}");
        // An OS error is passed on as it is.
        let os = info_error(
            swcci::Error::Os {
                op: "Get FW Info (0200h) on x".into(),
                err: std::io::Error::from_raw_os_error(libc::ENXIO),
            },
            Target::Direct,
        );
        assert!(matches!(os, CliError::Lib(_)));
    }

    #[test]
    fn info_text_and_json() {
        let (head, slots) = info_parts(&info());
        let doc = InfoDoc { head, slots };
        assert_eq!(
            doc.render(false),
            "slots_supported   : 3\nactive_slot       : 1\nstaged_slot       : 3\n\
             online_activation : yes\n\nSLOT  STATE   REVISION\n1     active  emu 1.0\n\
             2     -       -\n3     staged  fw 2.0\n"
        );
        let v: Value = serde_json::from_str(&doc.render(true)).unwrap();
        assert_eq!(v["slots_supported"], 3);
        assert_eq!(v["staged_slot"], 3);
        assert_eq!(v["slots"][0]["revision"], "emu 1.0");
        assert_eq!(v["slots"][0]["active"], true);
        assert_eq!(v["slots"][1]["revision"], "");
        assert_eq!(v["slots"][2]["staged"], true);
        let mut none = info();
        none.staged_slot = 0;
        let (head, _) = info_parts(&none);
        assert_eq!(head.text("staged_slot"), Some("-"));
        assert_eq!(head.get("staged_slot").unwrap().json, Value::Null);
    }

    fn failed(failure: FwFailure, abort: AbortOutcome) -> FwError {
        FwError {
            op: "firmware transfer to slot 2 on /dev/cxl/switch0".into(),
            target: Target::Direct,
            failure,
            abort,
            sent: 1920,
            total: 4096,
        }
    }

    fn device(rc: ReturnCode) -> FwFailure {
        FwFailure::Command {
            error: Box::new(swcci::Error::Device {
                op: "Transfer FW (0201h) on /dev/cxl/switch0".into(),
                rc,
            }),
            context: "part 2 of 3, continue, bytes 1920..3840".into(),
        }
    }

    #[test]
    fn exit_statuses() {
        let confirmed = || AbortOutcome::Confirmed { info: None };
        let lost = || {
            AbortOutcome::Failed(Box::new(swcci::Error::Device {
                op: "x".into(),
                rc: ReturnCode::Busy,
            }))
        };
        let cases = [
            (failed(FwFailure::Cancelled, confirmed()), 130),
            (failed(FwFailure::Cancelled, lost()), 5),
            (
                failed(device(ReturnCode::FwTransferOutOfOrder), confirmed()),
                1,
            ),
            (failed(device(ReturnCode::FwTransferOutOfOrder), lost()), 5),
            (
                failed(FwFailure::Invalid("x".into()), AbortOutcome::NotNeeded),
                2,
            ),
            (
                failed(FwFailure::Unconfirmed("x".into()), AbortOutcome::NotNeeded),
                6,
            ),
            (
                failed(
                    FwFailure::Command {
                        error: Box::new(swcci::Error::Os {
                            op: "x".into(),
                            err: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                        }),
                        context: "y".into(),
                    },
                    confirmed(),
                ),
                3,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(exit_code(&e), code, "{e}");
            assert!(doc_for(code).is_some(), "exit status {code} is documented");
        }
    }

    #[test]
    fn failure_json_members() {
        let e = failed(
            device(ReturnCode::FwVerificationFailed),
            AbortOutcome::Confirmed { info: None },
        );
        let rec = Record(vec![Field::num("slot", 2u8)]);
        let line = result_text(&rec, true, End::Failed(&e, false));
        assert_eq!(result_text(&rec, false, End::Failed(&e, false)), "");
        assert_eq!(line.lines().count(), 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "result");
        assert_eq!(v["ok"], false);
        assert_eq!(v["slot"], 2);
        assert_eq!(v["rc"], 0x0a);
        assert_eq!(v["rc_name"], "FW verification failed");
        assert_eq!(v["abort"], "confirmed");
        assert_eq!(v["exit_status"], 1);
        assert_eq!(v["failure"], "command");
        assert_eq!(
            (v["sent"].as_u64(), v["total"].as_u64()),
            (Some(1920), Some(4096))
        );
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("verification or authentication failed"));
    }

    #[test]
    fn progress_lines_per_phase_and_percent() {
        let mut r = Reporter {
            json: true,
            bar: None,
            last: None,
            cancel: Arc::new(AtomicBool::new(false)),
            told_abort: false,
        };
        let p = |phase, sent| Progress {
            phase,
            sent,
            total: 1000,
            part: 0,
            parts: 10,
        };
        assert!(r.line(&p(Phase::Prepare, 0)).is_some());
        assert!(r.line(&p(Phase::Transfer, 0)).is_some());
        assert!(r.line(&p(Phase::Transfer, 5)).is_none(), "same percent");
        let v = r.line(&p(Phase::Transfer, 10)).unwrap();
        assert_eq!(v["percent"], 1);
        assert_eq!(v["phase"], "transfer");
        assert!(r.line(&p(Phase::Verify, 10)).is_some(), "new phase");
        let v = r.line(&p(Phase::Confirm, 1000)).unwrap();
        assert_eq!(
            (v["sent"].as_u64(), v["percent"].as_u64()),
            (Some(1000), Some(100))
        );
        // An empty total does not divide by zero.
        let v = r
            .line(&Progress {
                total: 0,
                ..p(Phase::Abort, 0)
            })
            .unwrap();
        assert_eq!(v["percent"], 0);
    }

    #[test]
    fn transfer_fields() {
        let r = TransferReport {
            target: Target::Port(3),
            slot: 2,
            bytes: 4096,
            parts: 3,
            part_size: 1792,
            busy_retries: 1,
            elapsed: Duration::from_millis(500),
            revision_before: String::new(),
            revision: "fw 2.0".into(),
            info: info(),
        };
        let rec = transfer_record(&r);
        assert_eq!(rec.text("port"), Some("3"));
        assert_eq!(rec.text("rate"), Some("8192 B/s"));
        assert_eq!(rec.text("revision_before"), Some("-"));
        assert_eq!(rec.text("changed"), Some("yes"));
        let v: Value = serde_json::from_str(&result_text(&rec, true, End::Done)).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["seconds"], 0.5);
        assert_eq!(v["revision"], "fw 2.0");
    }

    #[test]
    fn refusals_name_what_would_be_done() {
        let dev = "/nonexistent/swcci-node".to_string();
        let target = TargetArgs {
            port: Some(3),
            ld: None,
        };
        let wait = || WaitArgs {
            bg_timeout_ms: 1000,
            busy_timeout_ms: 1000,
        };
        let e = update(
            &UpdateArgs {
                dev: dev.clone(),
                image: "/nonexistent/fw.bin".into(),
                slot: 2,
                activate: Some(ActivateWhen::Online),
                expect_revision: None,
                max_part: None,
                wait: wait(),
                target,
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        assert_eq!(
            e.to_string(),
            "would write /nonexistent/fw.bin to firmware slot 2 of /nonexistent/swcci-node via \
             port 3 (Transfer FW (0201h)) and activate it online; add --yes to do it"
        );
        let e = activate(
            &ActivateArgs {
                dev: dev.clone(),
                slot: 2,
                online: false,
                reset: true,
                activate: None,
                wait: wait(),
                target: TargetArgs::default(),
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("activate firmware slot 2 of /nonexistent/swcci-node on next cold reset"),
            "{e}"
        );
        let e = activate(
            &ActivateArgs {
                dev: dev.clone(),
                slot: 2,
                online: false,
                reset: false,
                activate: Some(ActivateWhen::Online),
                wait: wait(),
                target: TargetArgs::default(),
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("slot 2 of /nonexistent/swcci-node online"),
            "{e}"
        );
        let e = abort(
            &AbortArgs {
                dev,
                wait: wait(),
                target: TargetArgs::default(),
                yes: false,
            },
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Transfer FW (0201h) Abort"), "{e}");
    }
}
