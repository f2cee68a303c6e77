//! Gives druid-local and Tranquility separate cores of this machine, as if each had a machine
//! of its own, with `taskset` (util-linux). Without it, or with one core, both share.

use std::process::Command;

/// This process's CPUs split in two: ours (Tranquility and the load) and druid-local's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The CPUs this process may use before the split, as a `taskset` list.
    pub all: String,
    /// This process's half.
    pub ours: String,
    /// The druid-local child's half.
    pub druid: String,
}

impl Split {
    /// The split of this process's CPUs, when there are at least two and `taskset` runs.
    pub fn of_this_process() -> Option<Split> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
            .trim();
        let cpus = parse_list(list)?;
        let taskset = Command::new("taskset").arg("-V").output();
        if cpus.len() < 2 || !taskset.is_ok_and(|o| o.status.success()) {
            return None;
        }
        let (ours, druid) = cpus.split_at(cpus.len() / 2);
        Some(Split {
            all: list.to_string(),
            ours: join(ours),
            druid: join(druid),
        })
    }

    /// `command` prefixed to run on druid-local's CPUs.
    pub fn druid_command(&self, command: &[String]) -> Vec<String> {
        let mut pinned = vec!["taskset".to_string(), "-c".to_string(), self.druid.clone()];
        pinned.extend(command.iter().cloned());
        pinned
    }

    /// Moves every thread of this process onto `cpus`.
    pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
        Self::pin(std::process::id(), cpus)
    }

    /// Moves every thread of process `pid` onto `cpus`.
    pub fn pin(pid: u32, cpus: &str) -> anyhow::Result<()> {
        let out = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "taskset could not pin process {pid} to CPUs {cpus}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// `0-2,5` → `[0, 1, 2, 5]`.
fn parse_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse().ok()?),
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

fn join(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_read() {
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("3"), Some(vec![3]));
        assert_eq!(parse_list("x"), None);
        assert_eq!(join(&[0, 1, 4]), "0,1,4");
    }

    #[test]
    fn the_child_command_is_prefixed() {
        let split = Split {
            all: "0-1".into(),
            ours: "0".into(),
            druid: "1".into(),
        };
        assert_eq!(
            split.druid_command(&["bench".into(), "--serve-druid".into()]),
            ["taskset", "-c", "1", "bench", "--serve-druid"]
        );
    }
}
