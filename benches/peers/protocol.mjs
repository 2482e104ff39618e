// The half of the peer measurers that is the same for every system: parameters,
// choosing the lead, the concurrent scheduling loop, per-job bookkeeping, the
// end-of-run rule, percentiles and the one JSON line. Keeping it here means
// bullmq.mjs and pgboss.mjs differ only in how they talk to their system, and
// tickler's own load generator can copy these rules exactly (see README.md).
import { readFileSync, readdirSync } from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'

// CPU used by *other* work while the run was active (scheduling, and firing
// from just before the first due instant; not the idle lead in between), as
// a share of the whole machine: busy ticks of all CPUs (/proc/stat) minus the
// ticks of the processes that belong to a run (node, redis-server, postgres,
// and their reaped children). Short-lived foreign processes (each rustc of a
// build) count too: they are in the machine total but not in ours. Well above
// 0 means the run's numbers are skewed.
const OURS = /^(node|redis-server|postgres)$/
function machineTicks () {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  // idle and iowait are not busy; irq and softirq are left out too, being
  // mostly the kernel moving this run's own loopback traffic. steal stays in.
  return { total, busy: total - f[3] - f[4] - f[5] - f[6] }
}
function ourTicks () {
  let ticks = 0
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const close = st.lastIndexOf(')')
      if (!OURS.test(st.slice(st.indexOf('(') + 1, close))) continue
      // utime + stime, plus cutime + cstime: the CPU of reaped children, such
      // as PostgreSQL's short-lived autovacuum workers.
      const f = st.slice(close + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    } catch { /* process exited meanwhile */ }
  }
  return ticks
}
// How busy the whole machine was in the second before the run (this process
// is idle then), and the 1-minute load average at the start.
const loadAtStart = os.loadavg()[0]
const idle0 = machineTicks()
await new Promise(resolve => setTimeout(resolve, 1000))
const idle1 = machineTicks()
const busyBeforePct = (100 * (idle1.busy - idle0.busy)) / Math.max(1, idle1.total - idle0.total)

export function foreignCpuMeter () {
  let foreign = 0; let total = 0; let from = null
  const snap = () => ({ m: machineTicks(), o: ourTicks() })
  const meter = {
    resume () { if (!from) from = snap() },
    pause () {
      if (!from) return
      const to = snap()
      foreign += Math.max(0, (to.m.busy - from.m.busy) - (to.o - from.o))
      total += to.m.total - from.m.total
      from = null
    },
    pct () { meter.pause(); return (100 * foreign) / Math.max(1, total) }
  }
  meter.resume()
  return meter
}

// N W C come from argv (`node bullmq.mjs 10000 2000 64`) or env; env also
// holds the knobs that are not part of a run's identity.
export function params () {
  const [a, b, c] = process.argv.slice(2)
  const num = (v, env, dflt) => Number(v ?? process.env[env] ?? dflt)
  const p = {
    n: num(a, 'N', 10000),
    windowMs: num(b, 'W', 2000),
    callers: num(c, 'C', 64),
    minLeadMs: num(undefined, 'LEAD_MS', 5000), // floor for L
    timeoutMs: num(undefined, 'TIMEOUT_MS', 60000) // see waitForFires()
  }
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isFinite(v) || v < 0 || (k !== 'windowMs' && v === 0)) throw new Error(`bad ${k}=${v}`)
  }
  return p
}

export const log = (...a) => console.error(`[${new Date().toISOString()}]`, ...a)

// Version of an installed package, read from its package.json (the packages'
// "exports" maps do not all allow importing package.json).
export function pkgVersion (name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url)
  return JSON.parse(readFileSync(url, 'utf8')).version
}

// Run call(0..count-1) through `callers` concurrent async loops, each taking
// the next index as soon as its previous call was acknowledged. Returns the ms
// from the first call to the last acknowledgement.
export async function runCallers (count, callers, call) {
  let next = 0
  const start = performance.now()
  const loop = async () => {
    for (let i = next++; i < count; i = next++) await call(i)
  }
  await Promise.all(Array.from({ length: Math.min(callers, count) }, loop))
  return performance.now() - start
}

// L, the lead from the start of scheduling to the first due instant. Scheduling
// must be over before firing begins, or the two phases would compete for the
// same 2 cores and the schedule rate and lateness would both be blurred. So a
// calibration batch is scheduled first (far in the future, into a throw-away
// queue), and L = max(LEAD_MS, 1.5 x the projected time to schedule N + 1 s).
export const CALIBRATION_JOBS = 2000
export function chooseLead (p, calibCount, calibMs) {
  const projectedMs = (p.n / calibCount) * calibMs
  return Math.max(p.minLeadMs, Math.ceil(1.5 * projectedMs + 1000))
}

// Per-job bookkeeping, in flat typed arrays so 100k jobs cost nothing to track.
// due[i]: the instant job i was asked to fire at; fired[i]: Date.now() when its
// handler first ran; done[i]: when the system had recorded its completion.
export class Tracker {
  constructor (p, t0, leadMs) {
    this.n = p.n
    this.due = new Float64Array(p.n)
    // due_i = t0 + L + i*W/N, in whole ms (what the systems accept).
    for (let i = 0; i < p.n; i++) this.due[i] = Math.floor(t0 + leadMs + (i * p.windowMs) / p.n)
    this.fired = new Float64Array(p.n).fill(NaN)
    this.done = new Float64Array(p.n).fill(NaN)
    this.firedCount = 0
    this.doneCount = 0
    this.dup = 0 // a second run of a handler for the same job: reported, not hidden
    this.lastProgress = 0
    this.cpu = foreignCpuMeter() // runs from scheduling start; see waitForFires()
  }

  fire (i, at = Date.now()) {
    if (!Number.isNaN(this.fired[i])) { this.dup++; return }
    this.fired[i] = at
    this.firedCount++
    this.lastProgress = at
  }

  complete (i, at = Date.now()) {
    if (!Number.isNaN(this.done[i])) return
    this.done[i] = at
    this.doneCount++
  }
}

// Wait until every job has fired. A job that has not fired by the end of the
// run is "lost". The run ends when all N fired, or once TIMEOUT_MS (60 s) have
// passed since the last due instant AND no job has fired for TIMEOUT_MS: a
// system still draining a backlog is reported late, not lossy. A hard cap of
// 30 min (after the last due instant) keeps a crawling system from hanging.
export async function waitForFires (tr, timeoutMs) {
  const lastDue = tr.due[tr.n - 1]
  tr.cpu.pause() // scheduling is over: the idle lead is not metered
  for (;;) {
    const now = Date.now()
    if (now >= tr.due[0] - 200) tr.cpu.resume() // no-op once running
    if (tr.firedCount === tr.n) return
    if (now > lastDue + timeoutMs && now - tr.lastProgress > timeoutMs) return
    if (now > lastDue + 30 * 60 * 1000) return
    await sleep(50)
  }
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Nearest-rank percentile of an ascending array.
export function percentile (sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

const round1 = x => (x == null || !Number.isFinite(x) ? null : Math.round(x * 10) / 10)

// Build and print the run's JSON line (the only thing written to stdout).
export function report ({ system, p, tr, scheduleMs, leadMs, durability, versions, extra }) {
  const late = []
  let early = 0
  let firstFire = Infinity
  let lastDone = -Infinity
  for (let i = 0; i < tr.n; i++) {
    if (Number.isNaN(tr.fired[i])) continue
    const l = tr.fired[i] - tr.due[i]
    late.push(l)
    if (l < 0) early++
    if (tr.fired[i] < firstFire) firstFire = tr.fired[i]
    if (tr.done[i] > lastDone) lastDone = tr.done[i]
  }
  late.sort((a, b) => a - b)
  const out = {
    system,
    n: p.n,
    window_ms: p.windowMs,
    callers: p.callers,
    schedule_per_s: round1((p.n / scheduleMs) * 1000),
    // completions counted / (last completion - first fire); equals N / span when nothing is lost
    fire_per_s: round1((tr.doneCount / (lastDone - firstFire)) * 1000),
    late_ms: {
      p50: round1(percentile(late, 0.5)),
      p99: round1(percentile(late, 0.99)),
      p999: round1(percentile(late, 0.999)),
      max: round1(late[late.length - 1])
    },
    early,
    lost: tr.n - tr.firedCount,
    durability,
    versions: { node: process.versions.node, ...versions },
    lead_ms: leadMs,
    schedule_ms: round1(scheduleMs),
    schedule_done_before_first_due: scheduleMs < leadMs,
    dup: tr.dup,
    completed: tr.doneCount,
    host: { cpus: os.cpus().length, busy_pct_before: round1(busyBeforePct), foreign_cpu_pct: round1(tr.cpu.pct()), load1_start: round1(loadAtStart), load1_end: round1(os.loadavg()[0]) },
    ...extra
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  return out
}
