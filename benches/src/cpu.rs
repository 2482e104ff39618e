//! How undisturbed a run was on a shared machine, measured the way `benches/peers/protocol.mjs`
//! does: the share of the whole machine's CPU that *other* processes used while the run was
//! active (busy ticks of all CPUs from /proc/stat, minus this process's own ticks), and how busy
//! the machine was in the second before the run.

use std::time::Duration;

/// Busy and total ticks of the whole machine. idle, iowait, irq and softirq are not busy (the
/// last two are mostly the kernel moving this run's own traffic); steal is.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    if fields.len() < 8 {
        return (0, 0);
    }
    let total: u64 = fields.iter().sum();
    (total - fields[3] - fields[4] - fields[5] - fields[6], total)
}

/// A process's ticks (user + system, and its reaped children's).
fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<u64> = after_name
        .split(' ')
        .skip(11)
        .take(4)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum()
}

/// The machine's busy share (%) over the next second, while this process idles.
pub fn busy_pct_over_a_second() -> f64 {
    let (busy0, total0) = machine_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let (busy1, total1) = machine_ticks();
    100.0 * (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64
}

/// Accumulates the CPU share of other processes over the intervals it is resumed for.
#[derive(Default)]
pub struct ForeignCpuMeter {
    /// A process of the run besides this one (the daemon), whose ticks are not foreign.
    also: Option<u32>,
    from: Option<(u64, u64, u64)>,
    foreign: u64,
    total: u64,
}

impl ForeignCpuMeter {
    /// A meter running from now; `also` names another process of the run.
    pub fn started(also: Option<u32>) -> ForeignCpuMeter {
        let mut meter = ForeignCpuMeter {
            also,
            ..ForeignCpuMeter::default()
        };
        meter.resume();
        meter
    }

    /// Counts another process as part of the run from now on (a daemon started after the meter).
    pub fn also(&mut self, pid: u32) {
        self.pause();
        self.also = Some(pid);
        self.resume();
    }

    fn own_ticks(&self) -> u64 {
        process_ticks("self") + self.also.map_or(0, |pid| process_ticks(&pid.to_string()))
    }

    pub fn resume(&mut self) {
        if self.from.is_none() {
            let (busy, total) = machine_ticks();
            self.from = Some((busy, total, self.own_ticks()));
        }
    }

    pub fn pause(&mut self) {
        if let Some((busy0, total0, own0)) = self.from.take() {
            let (busy1, total1) = machine_ticks();
            let own1 = self.own_ticks();
            self.foreign += (busy1 - busy0).saturating_sub(own1 - own0);
            self.total += total1 - total0;
        }
    }

    pub fn pct(&mut self) -> f64 {
        self.pause();
        100.0 * self.foreign as f64 / self.total.max(1) as f64
    }
}

/// The time every runnable task of the machine was stalled on I/O at once (Linux pressure
/// stall information, `/proc/pressure/io`, "full"), in microseconds since boot; `None` where
/// the kernel does not report it. A run's share of it says whether the disk, not the system
/// measured, held things up (a cloud disk pausing for a tenth of a second, say).
pub fn io_full_stall_us() -> Option<u64> {
    parse_io_full_stall_us(&std::fs::read_to_string("/proc/pressure/io").ok()?)
}

fn parse_io_full_stall_us(pressure: &str) -> Option<u64> {
    pressure
        .lines()
        .find(|line| line.starts_with("full "))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_io_stall_total_is_read_from_the_pressure_file() {
        let pressure = "some avg10=1.32 avg60=8.75 avg300=4.62 total=1877932181\n\
                        full avg10=1.30 avg60=8.25 avg300=4.08 total=1530213971\n";
        assert_eq!(parse_io_full_stall_us(pressure), Some(1_530_213_971));
        assert_eq!(parse_io_full_stall_us("some avg10=0.00 total=5\n"), None);
    }
}
