// Reads the JSON lines of one run.sh run on stdin and prints a markdown table: every system's
// figures, and tickler's as ratios to the best peer of the same run (higher is better for rates,
// lower for lateness; a ratio above 1 is tickler ahead).
import { readFileSync } from 'node:fs'

const lines = readFileSync(0, 'utf8').split('\n').filter(l => l.trim()).map(l => JSON.parse(l))
const peers = lines.filter(l => !l.system.startsWith('tickler'))
const ours = lines.filter(l => l.system.startsWith('tickler'))
const fmt = x => (x == null ? '—' : Number.isInteger(x) ? String(x) : x.toFixed(1))
const row = l => `| ${l.system} | ${l.durability} | ${fmt(l.schedule_per_s)} | ${fmt(l.fire_per_s)} | ${fmt(l.late_ms.p50)} / ${fmt(l.late_ms.p99)} / ${fmt(l.late_ms.max)} | ${l.early} | ${l.lost} | ${fmt(l.host.foreign_cpu_pct)} |`

console.log(`N = ${lines[0]?.n}, W = ${lines[0]?.window_ms} ms, C = ${lines[0]?.callers}, ${lines[0]?.host.cpus} CPUs\n`)
console.log('| system | durability | schedule/s | fire/s | late p50 / p99 / max ms | early | lost | foreign CPU % |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (const l of lines) console.log(row(l))

if (peers.length > 0 && ours.length > 0) {
  const best = (key, better) => peers.map(key).filter(x => x != null).reduce((a, b) => (better(a, b) ? a : b))
  const higher = (a, b) => a >= b
  const lower = (a, b) => a <= b
  const bestSchedule = best(l => l.schedule_per_s, higher)
  const bestFire = best(l => l.fire_per_s, higher)
  const bestP99 = best(l => l.late_ms.p99, lower)
  console.log('\nratios to the best peer of this run (schedule and fire: tickler ÷ peer; p99 lateness: peer ÷ tickler)\n')
  console.log('| system | schedule | fire | p99 lateness |')
  console.log('| --- | --- | --- | --- |')
  for (const l of ours) {
    const r = (a, b) => (a == null || b == null || b === 0 ? '—' : (a / b).toFixed(2) + '×')
    console.log(`| ${l.system} (${l.durability.split(':')[0]}) | ${r(l.schedule_per_s, bestSchedule)} | ${r(l.fire_per_s, bestFire)} | ${r(bestP99, l.late_ms.p99)} |`)
  }
}
