//! The family's subcommands (`tickler site|course|learner|preview …`, feature `cli`): requests
//! over the admin socket, the bulk import of enrolments from a CSV or JSON-lines file, and the
//! human view of the replies. The binary mounts them; they read only the files they are given.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tickler_admin::protocol::{EntityArg, PROTOCOL_VERSION};
use tickler_admin::{Call, Client, Request, out};
use tickler_core::{EntityId, Timestamp, Zone};

use crate::commands::{ChangeTrack, LearnerInCourse, OptOut};
use crate::{CourseSettings, Enrolment, Highlight, PreviewRequest, SiteSettings};
use tokio::sync::mpsc;

/// Concurrent connections an import uses (they share the daemon's group commits).
const IMPORT_CONNECTIONS: usize = 16;
/// Rows queued per connection: the reader waits beyond this, so memory stays flat however
/// long the file is.
const LANE_QUEUE_LEN: usize = 256;
/// The checkpoint is rewritten after this many more rows are done.
const CHECKPOINT_EVERY: u64 = 1_000;

#[derive(Subcommand)]
pub enum SiteCmd {
    /// Create a site or change its settings (unset flags keep their value).
    Set {
        site: String,
        #[arg(long)]
        name: Option<String>,
        /// Create schedules for enrolments in courses that do not say otherwise.
        #[arg(long)]
        create_schedules: Option<bool>,
        /// The fraction of new enrolments held back in a control group, 0 to 1.
        #[arg(long)]
        hold_back_ratio: Option<f64>,
        /// Upgrade deadline days (a course's own and its org's come first; default 21).
        #[arg(long)]
        deadline_days: Option<i64>,
        /// Deadline days of an org, `ORG=DAYS`; repeat for several.
        #[arg(long = "org-deadline-days", value_parser = org_days)]
        org_deadline_days: Vec<(String, i64)>,
        /// The zone of learners who do not give theirs.
        #[arg(long)]
        default_zone: Option<Zone>,
        /// The local delivery time (`HH:MM`) of learners who do not give theirs.
        #[arg(long)]
        delivery_time: Option<String>,
        /// The LMS base URL that message links point to.
        #[arg(long)]
        lms_url: Option<String>,
        /// A kill switch, `NAME=true|false`: enqueue, deliver, enqueue_<kind>, deliver_<kind>
        /// (kinds: recurring_nudge, upgrade_reminder, course_update). Repeat for several.
        #[arg(long = "switch", value_parser = switch)]
        switches: Vec<(String, bool)>,
    },
    /// A site's settings.
    Show { site: String },
}

#[derive(Subcommand)]
pub enum CourseCmd {
    /// Create a course or change it: a change reaches every schedule of the course.
    Set {
        course: String,
        /// The site (needed for a new course).
        #[arg(long)]
        site: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// The organisation (its deadline days apply).
        #[arg(long)]
        org: Option<String>,
        /// self or instructor.
        #[arg(long)]
        pacing: Option<String>,
        /// Needed for a new course.
        #[arg(long)]
        start: Option<Timestamp>,
        /// When the course ends (RFC 3339).
        #[arg(long)]
        end: Option<Timestamp>,
        /// The course has a verified track to upgrade to.
        #[arg(long)]
        verified: Option<bool>,
        /// When the verified track can no longer be bought (RFC 3339).
        #[arg(long)]
        verified_expiry: Option<Timestamp>,
        /// Create schedules for this course's enrolments.
        #[arg(long)]
        create_schedules: Option<bool>,
        /// Upgrade deadline days for this course (0 to 3,650).
        #[arg(long)]
        deadline_days: Option<i64>,
        /// No upgrade deadline (and no upgrade reminder).
        #[arg(long)]
        deadline_opt_out: Option<bool>,
        /// A JSON file: `[{"section": "Week 1", "highlights": "one\nper line"}, …]`.
        #[arg(long)]
        highlights: Option<PathBuf>,
    },
    /// A course's settings.
    Show { course: String },
}

#[derive(Subcommand)]
pub enum LearnerCmd {
    /// Enrol a learner: a schedule when schedule creation is on.
    Enroll {
        #[arg(long)]
        learner: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        course: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Default: now (the daemon's clock).
        #[arg(long)]
        enrolled_at: Option<Timestamp>,
        /// Default: the site's.
        #[arg(long)]
        zone: Option<Zone>,
        /// The track: audit or verified.
        #[arg(long, default_value = "audit")]
        track: String,
        /// `HH:MM` local; default: the site's.
        #[arg(long)]
        delivery_time: Option<String>,
    },
    /// Enrol the learners of a CSV (with a header row) or JSON-lines file.
    Import(ImportArgs),
    /// A learner's schedule: anchors, settings and upcoming messages.
    Show {
        #[arg(long)]
        course: String,
        #[arg(long)]
        learner: String,
    },
    /// What was sent to a learner in a course, and what was not and why.
    History {
        #[arg(long)]
        course: String,
        #[arg(long)]
        learner: String,
    },
    /// The learner left the course: pending messages are cancelled.
    Unenroll {
        #[arg(long)]
        course: String,
        #[arg(long)]
        learner: String,
    },
    /// The learner upgraded to the verified track (no upgrade reminder; the schedule restarts).
    Upgrade {
        #[arg(long)]
        course: String,
        #[arg(long)]
        learner: String,
    },
    /// The learner moved to another track (audit or verified).
    ChangeTrack {
        #[arg(long)]
        course: String,
        #[arg(long)]
        learner: String,
        /// The new track: audit or verified.
        #[arg(long)]
        track: String,
    },
    /// The learner unsubscribed: from one course (--course), or from all of the site's email.
    OptOut {
        #[arg(long)]
        site: String,
        #[arg(long)]
        learner: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        course: Option<String>,
    },
}

#[derive(Args)]
pub struct ImportArgs {
    /// `.csv` (columns learner, email, name, course, enrolled_at, zone, track, delivery_time;
    /// only learner, email and course are required) or JSON lines (one enrolment per line).
    #[arg(long)]
    pub file: PathBuf,
    /// Where rows that failed are listed, one JSON object per line: {"line", "error", "row"}.
    /// Default: <file>.report.jsonl.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Continue an import that stopped: rows up to the checkpoint (<file>.checkpoint) are
    /// skipped. Re-sending a row is harmless anyway (an enrolment is idempotent).
    #[arg(long)]
    pub resume: bool,
}

fn org_days(text: &str) -> Result<(String, i64), String> {
    let (org, days) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ORG=DAYS"))?;
    let days = days
        .parse()
        .map_err(|_| format!("{days:?} in {text:?} is not a number of days"))?;
    Ok((org.to_owned(), days))
}

fn switch(text: &str) -> Result<(String, bool), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=true|false"))?;
    let value = value
        .parse()
        .map_err(|_| format!("{value:?} in {text:?} is not true or false"))?;
    Ok((name.to_owned(), value))
}

fn schedule(course: &str, learner: &str) -> anyhow::Result<EntityId> {
    Ok(crate::schedule_id(course, learner)?)
}

pub fn site_request(command: SiteCmd) -> anyhow::Result<Call> {
    Ok(match command {
        SiteCmd::Set {
            site,
            name,
            create_schedules,
            hold_back_ratio,
            deadline_days,
            org_deadline_days,
            default_zone,
            delivery_time,
            lms_url,
            switches,
        } => call(
            "site.set",
            &SiteSettings {
                site,
                name,
                create_schedules,
                hold_back_ratio,
                deadline_days,
                org_deadline_days: (!org_deadline_days.is_empty())
                    .then(|| org_deadline_days.into_iter().collect()),
                default_zone,
                delivery_time,
                lms_url,
                switches: switches.into_iter().collect(),
            },
        ),
        SiteCmd::Show { site } => Call::from(Request::Show(EntityArg {
            entity: crate::site_id(&site)?,
        })),
    })
}

pub fn course_request(command: CourseCmd) -> anyhow::Result<Call> {
    Ok(match command {
        CourseCmd::Set {
            course,
            site,
            name,
            org,
            pacing,
            start,
            end,
            verified,
            verified_expiry,
            create_schedules,
            deadline_days,
            deadline_opt_out,
            highlights,
        } => {
            let highlights = highlights
                .map(|path| -> anyhow::Result<Vec<Highlight>> {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    serde_json::from_str(&text).with_context(|| {
                        format!(
                            "{}: expected a JSON list of {{\"section\", \"highlights\"}}",
                            path.display()
                        )
                    })
                })
                .transpose()?;
            call(
                "course.set",
                &CourseSettings {
                    course,
                    site,
                    name,
                    org,
                    pacing,
                    start,
                    end,
                    verified,
                    verified_expiry,
                    create_schedules,
                    deadline_days,
                    deadline_opt_out,
                    highlights,
                },
            )
        }
        CourseCmd::Show { course } => Call::from(Request::Show(EntityArg {
            entity: crate::course_id(&course)?,
        })),
    })
}

pub fn learner_request(command: LearnerCmd) -> anyhow::Result<Call> {
    Ok(match command {
        LearnerCmd::Enroll {
            learner,
            email,
            course,
            name,
            enrolled_at,
            zone,
            track,
            delivery_time,
        } => call(
            "learner.enroll",
            &Enrolment {
                learner,
                email,
                name,
                course,
                enrolled_at,
                zone,
                track,
                delivery_time,
            },
        ),
        LearnerCmd::Import(_) => unreachable!("run by `import`, not as one request"),
        LearnerCmd::Show { course, learner } => Call::from(Request::Show(EntityArg {
            entity: schedule(&course, &learner)?,
        })),
        LearnerCmd::History { course, learner } => {
            Call::from(Request::History(tickler_admin::protocol::History {
                entity: schedule(&course, &learner)?,
                outcome: None,
                since: None,
                until: None,
            }))
        }
        LearnerCmd::Unenroll { course, learner } => {
            call("learner.unenroll", &LearnerInCourse { course, learner })
        }
        LearnerCmd::Upgrade { course, learner } => call(
            "learner.change-track",
            &ChangeTrack {
                course,
                learner,
                track: "verified".into(),
            },
        ),
        LearnerCmd::ChangeTrack {
            course,
            learner,
            track,
        } => call(
            "learner.change-track",
            &ChangeTrack {
                course,
                learner,
                track,
            },
        ),
        LearnerCmd::OptOut {
            site,
            learner,
            email,
            course,
        } => call(
            "learner.opt-out",
            &OptOut {
                site,
                learner,
                email,
                course,
            },
        ),
    })
}

/// `tickler preview`: what a course would send between two instants (its schedules, and
/// simulated learners), with counts per day and kind; nothing is sent.
#[derive(Args)]
pub struct PreviewArgs {
    #[arg(long)]
    course: String,
    /// The first instant of the preview (RFC 3339).
    #[arg(long)]
    from: Timestamp,
    /// The instant after its last (RFC 3339).
    #[arg(long)]
    to: Timestamp,
    /// Also simulate this many learners enrolling at --from (as if schedules were on).
    #[arg(long, default_value_t = 0)]
    sample: u32,
    /// Leave out the course's existing schedules.
    #[arg(long)]
    no_existing: bool,
    /// List at most this many messages (the counts include all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

pub fn preview_request(args: PreviewArgs) -> Call {
    call(
        "preview",
        &PreviewRequest {
            course: args.course,
            from: args.from,
            to: args.to,
            enrolments: Vec::new(),
            sample: args.sample,
            existing: !args.no_existing,
            limit: Some(args.limit),
        },
    )
}

/// One row of an import file, read: its line number and its enrolment or why it is bad.
struct Row {
    line: u64,
    raw: String,
    enrolment: Result<Enrolment, String>,
}

/// A CSV row as written: every column text, parsed here so an error names the line, the
/// column and the value.
#[derive(serde::Deserialize)]
struct CsvRow {
    learner: String,
    email: String,
    #[serde(default)]
    name: String,
    course: String,
    #[serde(default)]
    enrolled_at: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    track: String,
    #[serde(default)]
    delivery_time: String,
}

impl CsvRow {
    fn into_enrolment(self) -> Result<Enrolment, String> {
        let enrolled_at = match self.enrolled_at.trim() {
            "" => None,
            text => Some(
                text.parse::<Timestamp>()
                    .map_err(|err| format!("enrolled_at {text:?}: {err}"))?,
            ),
        };
        let zone = match self.zone.trim() {
            "" => None,
            text => Some(Zone::parse(text).map_err(|err| format!("zone {text:?}: {err}"))?),
        };
        let nonempty = |text: String| {
            let text = text.trim().to_owned();
            (!text.is_empty()).then_some(text)
        };
        Ok(Enrolment {
            learner: self.learner.trim().to_owned(),
            email: self.email.trim().to_owned(),
            name: self.name.trim().to_owned(),
            course: self.course.trim().to_owned(),
            enrolled_at,
            zone,
            track: nonempty(self.track).unwrap_or_else(|| "audit".to_owned()),
            delivery_time: nonempty(self.delivery_time),
        })
    }
}

/// Reads `file` row by row on a blocking thread and sends each row on: memory stays bounded by
/// the lanes' queues, not the file.
fn read_rows(file: PathBuf, skip_through: u64, rows: mpsc::Sender<Row>) -> anyhow::Result<u64> {
    let handle =
        std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
    let is_csv = file
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    let mut total = 0;
    if is_csv {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::Headers)
            .flexible(false)
            .from_reader(handle);
        let headers = reader
            .headers()
            .with_context(|| format!("{}: cannot read the header row", file.display()))?
            .clone();
        for required in ["learner", "email", "course"] {
            if !headers.iter().any(|h| h == required) {
                bail!(
                    "{}: the header row has no {required:?} column (it has: {})",
                    file.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                );
            }
        }
        for record in reader.records() {
            let (line, raw, enrolment) = match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line());
                    let raw = record.iter().collect::<Vec<_>>().join(",");
                    let enrolment = record
                        .deserialize::<CsvRow>(Some(&headers))
                        .map_err(|err| err.to_string())
                        .and_then(CsvRow::into_enrolment);
                    (line, raw, enrolment)
                }
                Err(err) => {
                    let line = err.position().map_or(0, |p| p.line());
                    (line, String::new(), Err(err.to_string()))
                }
            };
            total += 1;
            if line <= skip_through {
                continue;
            }
            if rows
                .blocking_send(Row {
                    line,
                    raw,
                    enrolment,
                })
                .is_err()
            {
                break;
            }
        }
    } else {
        for (index, text) in BufReader::new(handle).lines().enumerate() {
            let line = index as u64 + 1;
            let text = text.with_context(|| format!("{}: line {line}", file.display()))?;
            if text.trim().is_empty() {
                continue;
            }
            total += 1;
            if line <= skip_through {
                continue;
            }
            let enrolment = serde_json::from_str::<Enrolment>(&text).map_err(|err| err.to_string());
            if rows
                .blocking_send(Row {
                    line,
                    raw: text,
                    enrolment,
                })
                .is_err()
            {
                break;
            }
        }
    }
    Ok(total)
}

/// The lowest line not yet known to be done: every row before it has its reply (or its
/// report line), so a resumed import may start after `done_through`.
#[derive(Default)]
struct Checkpoint {
    done_through: u64,
    /// Lines done out of order, above the watermark.
    ahead: BTreeSet<u64>,
    /// The line numbers handed out, in order, not yet done.
    outstanding: BTreeSet<u64>,
}

impl Checkpoint {
    fn started(&mut self, line: u64) {
        self.outstanding.insert(line);
    }

    fn done(&mut self, line: u64) {
        self.outstanding.remove(&line);
        self.ahead.insert(line);
        let low = self.outstanding.first().copied().unwrap_or(u64::MAX);
        while let Some(&first) = self.ahead.first() {
            if first < low {
                self.done_through = first;
                self.ahead.remove(&first);
            } else {
                break;
            }
        }
    }
}

enum Done {
    Enrolled {
        line: u64,
        outcome: String,
    },
    Failed {
        line: u64,
        raw: String,
        error: String,
    },
}

/// `tickler learner import`: enrols every good row, lists bad ones in the report, and keeps a
/// checkpoint so a stopped import can resume. Exits non-zero when a row failed.
pub async fn import(socket: &Path, args: ImportArgs, json: bool) -> anyhow::Result<()> {
    let checkpoint_path = with_suffix(&args.file, ".checkpoint");
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| with_suffix(&args.file, ".report.jsonl"));
    let skip_through = if args.resume {
        match std::fs::read_to_string(&checkpoint_path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{}: not a line number", checkpoint_path.display()))?,
            Err(_) => 0,
        }
    } else {
        0
    };
    // Fail before creating a report, or reading a 100k-row file, when the file cannot be
    // read or the daemon is not there.
    std::fs::File::open(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    Client::connect(socket).await?;
    // However the import ends, a report with nothing in it is not left behind (declared
    // before the report's writer, so dropped after it has flushed).
    let _cleanup = RemoveIfEmpty(report_path.clone());
    // The report names learners and addresses: a private file, never written through a link.
    let report_file = if args.resume {
        tickler_engine::private_fs::open_private_append(&report_path)
    } else {
        tickler_engine::private_fs::create_private_fresh(&report_path)
    };
    let mut report = std::io::BufWriter::new(
        report_file
            .with_context(|| format!("cannot write the report {}", report_path.display()))?,
    );

    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("importing {spinner} {pos} rows ({per_sec}) {msg}")
            .expect("a valid template"),
    );
    let (rows_tx, mut rows_rx) = mpsc::channel::<Row>(LANE_QUEUE_LEN);
    let file = args.file.clone();
    let reader = tokio::task::spawn_blocking(move || read_rows(file, skip_through, rows_tx));

    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut lanes = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..IMPORT_CONNECTIONS {
        let (tx, mut rx) = mpsc::channel::<(u64, String, Enrolment)>(LANE_QUEUE_LEN);
        lanes.push(tx);
        let socket = socket.to_owned();
        let done = done_tx.clone();
        workers.push(tokio::spawn(async move {
            let mut client = Client::connect(&socket).await?;
            while let Some((line, raw, enrolment)) = rx.recv().await {
                let request = json!({
                    "v": PROTOCOL_VERSION,
                    "id": line,
                    "cmd": "learner.enroll",
                    "args": enrolment,
                });
                let mut bytes = serde_json::to_vec(&request)?;
                bytes.push(b'\n');
                let reply = client.send_raw(&bytes).await?;
                let _ = done.send(match (reply.result, reply.error) {
                    (_, Some(error)) => Done::Failed {
                        line,
                        raw,
                        error: format!("{} [{}]", error.message, error.code),
                    },
                    (result, None) => Done::Enrolled {
                        line,
                        outcome: result
                            .as_ref()
                            .and_then(|r| r["outcome"].as_str())
                            .unwrap_or("scheduled")
                            .to_owned(),
                    },
                });
            }
            anyhow::Ok(())
        }));
    }
    drop(done_tx);

    let mut checkpoint = Checkpoint {
        done_through: skip_through,
        ..Checkpoint::default()
    };
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0u64;
    let mut since_checkpoint = 0u64;
    let mut reading = true;
    let mut record = |done: Done,
                      checkpoint: &mut Checkpoint,
                      report: &mut std::io::BufWriter<std::fs::File>|
     -> anyhow::Result<()> {
        match done {
            Done::Enrolled { line, outcome } => {
                *outcomes.entry(outcome).or_default() += 1;
                checkpoint.done(line);
            }
            Done::Failed { line, raw, error } => {
                failed += 1;
                writeln!(
                    report,
                    "{}",
                    json!({ "line": line, "error": error, "row": raw })
                )?;
                checkpoint.done(line);
            }
        }
        bar.inc(1);
        since_checkpoint += 1;
        if since_checkpoint >= CHECKPOINT_EVERY {
            since_checkpoint = 0;
            // The report first: a checkpoint never covers a failure the report lacks.
            report.flush()?;
            std::fs::write(&checkpoint_path, checkpoint.done_through.to_string())?;
        }
        Ok(())
    };
    loop {
        tokio::select! {
            row = rows_rx.recv(), if reading => match row {
                Some(row) => {
                    checkpoint.started(row.line);
                    match row.enrolment {
                        Ok(enrolment) => {
                            // One learner's rows go through one connection, in file order.
                            let lane = lane_of(&enrolment.learner);
                            lanes[lane]
                                .send((row.line, row.raw, enrolment))
                                .await
                                .context("an import connection closed")?;
                        }
                        Err(error) => record(
                            Done::Failed { line: row.line, raw: row.raw, error },
                            &mut checkpoint,
                            &mut report,
                        )?,
                    }
                }
                None => {
                    reading = false;
                    lanes.clear();
                }
            },
            done = done_rx.recv() => match done {
                Some(done) => record(done, &mut checkpoint, &mut report)?,
                None => break,
            },
        }
    }
    for worker in workers {
        worker.await??;
    }
    let total = reader.await??;
    bar.finish_and_clear();
    report.flush()?;
    std::fs::write(&checkpoint_path, checkpoint.done_through.to_string())?;

    if json {
        let summary = json!({
            "rows": total,
            "file": args.file,
            "resumed_after": (skip_through > 0).then_some(skip_through),
            "outcomes": outcomes,
            "failed": failed,
            "report": (failed > 0).then_some(&report_path),
        });
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_import_summary(
            &args.file,
            total,
            skip_through,
            &outcomes,
            failed,
            &report_path,
        );
    }
    if failed > 0 {
        bail!(
            "{failed} row(s) of {} failed; see {}",
            args.file.display(),
            report_path.display()
        );
    }
    Ok(())
}

/// Removes the file when dropped if it is empty.
struct RemoveIfEmpty(PathBuf);

impl Drop for RemoveIfEmpty {
    fn drop(&mut self) {
        if std::fs::metadata(&self.0).is_ok_and(|meta| meta.len() == 0) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn print_import_summary(
    file: &Path,
    total: u64,
    skip_through: u64,
    outcomes: &BTreeMap<String, u64>,
    failed: u64,
    report_path: &Path,
) {
    let summary: Vec<String> = outcomes
        .iter()
        .map(|(outcome, count)| format!("{count} {outcome}"))
        .collect();
    out!(
        "{} row(s) in {}: {}{}, {failed} failed{}",
        total,
        file.display(),
        if skip_through > 0 {
            format!("resumed after line {skip_through}; ")
        } else {
            String::new()
        },
        if summary.is_empty() {
            "none enrolled".to_owned()
        } else {
            summary.join(", ")
        },
        if failed > 0 {
            format!(" (listed in {})", report_path.display())
        } else {
            String::new()
        }
    );
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn lane_of(learner: &str) -> usize {
    learner.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % IMPORT_CONNECTIONS
}

/// A learner-schedule request.
fn call(cmd: &'static str, args: &impl serde::Serialize) -> Call {
    Call::Family(crate::commands::call(cmd, args))
}

/// The human view of a learner-schedule reply that is not an applied entity.
pub fn print(cmd: &str, result: &Value) -> bool {
    match cmd {
        "learner.enroll" => {
            match result["outcome"].as_str() {
                Some("scheduled") => out!(
                    "{}: {} message(s) planned{}",
                    text(&result["schedule"]),
                    result["pending"],
                    if result["held_back"] == true {
                        " (held back: control group)"
                    } else {
                        ""
                    }
                ),
                Some("exists") => out!("{}: already enrolled", text(&result["schedule"])),
                _ => out!("no schedule: {}", text(&result["reason"])),
            }
            true
        }
        "course.set" => {
            out!(
                "course at version {}; {} schedule(s) updated, {} ended left as they are",
                result["version"],
                result["schedules_updated"],
                result["schedules_ended"]
            );
            let failed = result["schedules_failed"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !failed.is_empty() {
                out!(
                    "{} schedule(s) not reached yet (retried on the next course set and at start-up):",
                    failed.len()
                );
                for failure in &failed {
                    out!("  {}", text(failure));
                }
            }
            true
        }
        "learner.opt-out" => {
            out!("{} schedule(s) opted out", result["schedules_changed"]);
            true
        }
        "preview" => {
            print_preview(result);
            true
        }
        _ => false,
    }
}

fn text(value: &Value) -> String {
    tickler_admin::terminal::cell(value)
}

fn print_preview(result: &Value) {
    use tickler_admin::terminal::table;
    let mut counts = table(&["day (UTC)", "kind", "messages"]);
    let mut total = 0u64;
    for count in result["counts"].as_array().into_iter().flatten() {
        total += count["count"].as_u64().unwrap_or(0);
        counts.add_row([
            text(&count["day"]),
            text(&count["kind"]),
            count["count"].to_string(),
        ]);
    }
    out!("{counts}");
    let messages = result["messages"].as_array().cloned().unwrap_or_default();
    if !messages.is_empty() {
        let mut listed = table(&["at (UTC)", "schedule", "rule", "source"]);
        for m in &messages {
            listed.add_row([
                text(&m["at"]),
                text(&m["schedule"]),
                text(&m["rule"]),
                text(&m["source"]),
            ]);
        }
        out!("{listed}");
    }
    if (messages.len() as u64) < total {
        out!(
            "showing {} of {total} messages; --limit N lists more (at most 10,000)",
            messages.len()
        );
    }
    out!("{} simulated learner(s) held back", result["held_back"]);
}
