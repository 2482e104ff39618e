// Measures BullMQ + Redis on the one-shot timer protocol (README.md).
//   node bullmq.mjs N W C      (REDIS_HOST / REDIS_PORT, default 127.0.0.1:6390)
// A timer is a delayed job: queue.add(..., { delay }) resolves once Redis has
// executed the add script. Redis durability is whatever the server runs with;
// it is read back and reported (run.sh starts it with appendfsync everysec).
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import {
  params, log, pkgVersion, runCallers, chooseLead, CALIBRATION_JOBS,
  Tracker, waitForFires, report, sleep
} from './protocol.mjs'

const p = params()
// BullMQ's docs show `concurrency: 50` for async (I/O-bound) processors; one
// worker instance, in this process, with that concurrency.
const CONCURRENCY = Number(process.env.BULLMQ_CONCURRENCY || 50)
// maxRetriesPerRequest: null is what BullMQ requires for worker connections.
const connection = {
  host: process.env.REDIS_HOST || '127.0.0.1',
  port: Number(process.env.REDIS_PORT || 6390),
  maxRetriesPerRequest: null
}

const admin = new Redis(connection)
const [, appendonly] = await admin.config('GET', 'appendonly')
const [, appendfsync] = await admin.config('GET', 'appendfsync')
const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))[1]

// 1. Calibrate on a throw-away queue (jobs due in an hour, then obliterated).
const stamp = Date.now()
const calib = new Queue(`calib-${stamp}`, { connection })
const calibCount = Math.min(CALIBRATION_JOBS, p.n)
const calibMs = await runCallers(calibCount, p.callers, i =>
  calib.add('t', { i }, { jobId: `c${i}`, delay: 3600_000 }))
await calib.obliterate({ force: true })
await calib.close()
const leadMs = chooseLead(p, calibCount, calibMs)
log(`bullmq: calibration ${calibCount} adds in ${calibMs.toFixed(0)} ms -> lead ${leadMs} ms`)

// 2. Schedule N jobs, each with its own id, through C concurrent callers.
// BullMQ takes a relative delay and adds it to its own Date.now() inside
// add(), a fraction of a ms after ours, so its due instant is never earlier
// than ours: measured lateness may include that fraction, early fires cannot
// be hidden by it.
const queue = new Queue(`timers-${stamp}`, { connection })
await queue.waitUntilReady()
const t0 = Date.now()
const tr = new Tracker(p, t0, leadMs)
const scheduleMs = await runCallers(p.n, p.callers, i =>
  queue.add('t', { i }, { jobId: `j${i}`, delay: Math.max(0, tr.due[i] - Date.now()) }))
log(`bullmq: scheduled ${p.n} in ${scheduleMs.toFixed(0)} ms; first due in ${tr.due[0] - Date.now()} ms`)

// 3. One worker. fired_at is taken when the processor runs; completion when
// the worker emits 'completed', which BullMQ does after the moveToCompleted
// script has returned from Redis (the completion is written).
const worker = new Worker(queue.name, async job => { tr.fire(job.data.i) },
  { connection, concurrency: CONCURRENCY })
worker.on('completed', job => tr.complete(job.data.i))
worker.on('error', err => log('bullmq worker error:', err.message))
await worker.waitUntilReady()

await waitForFires(tr, p.timeoutMs)
// Let completions of the last fires arrive (they follow within a round trip).
for (let k = 0; k < 200 && tr.doneCount < tr.firedCount; k++) await sleep(50)

report({
  system: 'bullmq+redis',
  p,
  tr,
  scheduleMs,
  leadMs,
  durability: `redis appendonly ${appendonly} appendfsync ${appendfsync}`,
  versions: { bullmq: pkgVersion('bullmq'), ioredis: pkgVersion('ioredis'), redis: redisVersion },
  extra: {
    worker: `1 Worker, concurrency ${CONCURRENCY}, default job options (completed jobs kept)`,
    completion: "worker 'completed' event (after moveToCompleted returned)"
  }
})

await worker.close(true)
await queue.obliterate({ force: true })
await queue.close()
await admin.quit()
