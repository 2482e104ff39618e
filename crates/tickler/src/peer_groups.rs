//! A socket peer's supplementary groups, for its role on the admin socket (`tickler_admin::role`):
//! SO_PEERCRED carries the primary group only, so the rest are read from `/proc/PID/status`.

/// The supplementary groups of process `pid`; none if it is gone or `/proc` is unreadable.
pub fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|status| groups_line(&status))
        .unwrap_or_default()
}

/// The gids of a `/proc/PID/status` text's `Groups:` line.
fn groups_line(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|gid| gid.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_are_read_from_the_status_files_groups_line() {
        let status = "Name:\tpython3\nUid:\t1002\t1002\t1002\t1002\nGroups:\t33 100 \nNgid:\t0\n";
        assert_eq!(groups_line(status), vec![33, 100]);
        assert_eq!(groups_line("Name:\tx\n"), Vec::<u32>::new());
    }

    #[test]
    fn this_process_has_its_groups_read() {
        // Every process has a Groups: line, possibly empty; reading our own must not fail.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("Groups:"));
        assert_eq!(
            supplementary_groups(std::process::id() as i32),
            groups_line(&status)
        );
    }
}
