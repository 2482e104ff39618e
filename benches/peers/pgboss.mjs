// Measures pg-boss + PostgreSQL on the one-shot timer protocol (README.md).
//   node pgboss.mjs N W C      (PG_URL, default postgres://postgres@127.0.0.1:5440/postgres)
// A timer is a job sent with startAfter; boss.send() resolves once its INSERT
// has committed (autocommit, synchronous_commit as configured: read back and
// reported; run.sh leaves PostgreSQL's default, on).
import PgBoss from 'pg-boss'
import pg from 'pg'
import {
  params, log, pkgVersion, runCallers, chooseLead, CALIBRATION_JOBS,
  Tracker, waitForFires, report, sleep
} from './protocol.mjs'

const p = params()
const PG_URL = process.env.PG_URL || 'postgres://postgres@127.0.0.1:5440/postgres'
// pg-boss 10's work() is a polling loop: fetch up to batchSize jobs, run the
// handler, then sleep out the rest of pollingIntervalSeconds (default: 1 job
// every 2 s). The library recommends no number; its levers are batchSize and
// more work() calls. We use the minimum interval it allows (0.5 s, for the
// best lateness) and 4 loops x 2500 jobs, so the polling cadence allows
// 20k jobs/s, 4x the 5k/s of the N=10000 W=2000 run, and the default pool
// (10 connections). README.md shows how the numbers move with these knobs.
const BATCH = Number(process.env.PGBOSS_BATCH || 2500)
const LOOPS = Number(process.env.PGBOSS_LOOPS || 4)
const POLL_S = Number(process.env.PGBOSS_POLL_S || 0.5)
const POOL = Number(process.env.PGBOSS_POOL || 10)

// A plain client for reading settings and, at the end, completion times.
const admin = new pg.Client({ connectionString: PG_URL })
await admin.connect()
const setting = async name => (await admin.query(`SHOW ${name}`)).rows[0][name]
const syncCommit = await setting('synchronous_commit')
const fsync = await setting('fsync')
const pgVersion = await setting('server_version')

const boss = new PgBoss({ connectionString: PG_URL, max: POOL })
boss.on('error', err => log('pg-boss error:', err.message))
await boss.start()

// 1. Calibrate on a throw-away queue (jobs due in an hour, then deleted).
const stamp = Date.now()
const calibQ = `calib_${stamp}`
await boss.createQueue(calibQ)
const calibCount = Math.min(CALIBRATION_JOBS, p.n)
const far = new Date(Date.now() + 3600_000)
const calibMs = await runCallers(calibCount, p.callers, i => boss.send(calibQ, { i }, { startAfter: far }))
await boss.purgeQueue(calibQ) // deleteQueue refuses while the queue has jobs
await boss.deleteQueue(calibQ)
const leadMs = chooseLead(p, calibCount, calibMs)
log(`pg-boss: calibration ${calibCount} sends in ${calibMs.toFixed(0)} ms -> lead ${leadMs} ms`)

// 2. Schedule N jobs (pg-boss gives each a uuid) through C concurrent callers.
const q = `timers_${stamp}`
await boss.createQueue(q)
const t0 = Date.now()
const tr = new Tracker(p, t0, leadMs)
const scheduleMs = await runCallers(p.n, p.callers, i =>
  boss.send(q, { i }, { startAfter: new Date(tr.due[i]) }))
log(`pg-boss: scheduled ${p.n} in ${scheduleMs.toFixed(0)} ms; first due in ${tr.due[0] - Date.now()} ms`)

// 3. Workers. fired_at is taken when the handler runs (once per job of the
// batch). pg-boss completes the batch *after* the handler resolves, without
// awaiting it, so handler return is not completion: completion is read from
// the job rows afterwards (completed_on = now() of the completing statement,
// i.e. when the completion was written, on the same host clock).
for (let k = 0; k < LOOPS; k++) {
  await boss.work(q, { batchSize: BATCH, pollingIntervalSeconds: POLL_S }, async jobs => {
    const now = Date.now()
    for (const job of jobs) tr.fire(job.data.i, now)
  })
}

await waitForFires(tr, p.timeoutMs)

// Completions are fire-and-forget inside pg-boss: wait (up to 30 s) until the
// rows of every fired job say completed, then read their completion instants.
const countDone = async () => Number((await admin.query(
  "SELECT count(*) AS c FROM pgboss.job WHERE name = $1 AND state = 'completed'", [q])).rows[0].c)
for (let k = 0; k < 300 && (await countDone()) < tr.firedCount; k++) await sleep(100)
const { rows } = await admin.query(
  `SELECT (data->>'i')::int AS i, extract(epoch FROM completed_on) * 1000 AS at
     FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [q])
for (const r of rows) tr.complete(r.i, Number(r.at))

report({
  system: 'pg-boss+postgresql',
  p,
  tr,
  scheduleMs,
  leadMs,
  durability: `postgresql synchronous_commit=${syncCommit} fsync=${fsync}`,
  versions: { 'pg-boss': pkgVersion('pg-boss'), pg: pkgVersion('pg'), postgresql: pgVersion },
  extra: {
    worker: `${LOOPS} x work(batchSize ${BATCH}, pollingIntervalSeconds ${POLL_S}), pool max ${POOL}`,
    completion: 'job.completed_on from PostgreSQL (completion is not awaited by the handler)'
  }
})

await boss.offWork(q)
await boss.stop({ graceful: false, wait: true, timeout: 1000 })
await admin.end()
