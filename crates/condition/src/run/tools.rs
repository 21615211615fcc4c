//! Running ffmpeg and ffprobe as child processes: at a lower CPU priority (`nice`), with a deadline, and
//! killed when the future running them is dropped — a job that times out, loses its lease or whose pool
//! shuts down leaves no encoder behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::error::{Error, Result};

/// Where the tools are and how to run them.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
    /// `nice` increment (0: run at the caller's priority).
    pub niceness: i32,
    /// Longest run of one process.
    pub timeout: Duration,
}

/// What a finished process left.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status 0.
    pub success: bool,
    /// The exit status, for messages.
    pub status: String,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Tools {
    /// The tools on `PATH`, at niceness 10, one hour per process.
    pub fn from_path() -> Tools {
        Tools {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            niceness: 10,
            timeout: Duration::from_secs(3600),
        }
    }

    /// Runs `program` with `args` to completion. An error means it could not be run or ran out of time; a
    /// non-zero exit is reported in [`Finished::success`].
    pub async fn run(&self, program: &std::path::Path, args: &[String]) -> Result<Finished> {
        let mut cmd = if self.niceness != 0 {
            let mut c = tokio::process::Command::new("nice");
            c.arg("-n").arg(self.niceness.to_string()).arg(program);
            c
        } else {
            tokio::process::Command::new(program)
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let name = program.display().to_string();
        let child = cmd.spawn().map_err(|e| Error::Process {
            program: name.clone(),
            reason: format!("cannot start: {e}"),
        })?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| Error::Process {
                program: name.clone(),
                reason: format!("killed after {:?}", self.timeout),
            })?
            .map_err(|e| Error::Process {
                program: name,
                reason: e.to_string(),
            })?;
        Ok(Finished {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// ffmpeg with `args`.
    pub async fn ffmpeg(&self, args: &[String]) -> Result<Finished> {
        self.run(&self.ffmpeg, args).await
    }

    /// ffprobe with `args`.
    pub async fn ffprobe(&self, args: &[String]) -> Result<Finished> {
        self.run(&self.ffprobe, args).await
    }

    /// ffmpeg with `args`, which must exit 0; the error carries the tail of its error output.
    pub async fn ffmpeg_ok(&self, what: &str, args: &[String]) -> Result<Finished> {
        let out = self.ffmpeg(args).await?;
        if out.success {
            Ok(out)
        } else {
            Err(Error::Process {
                program: format!("ffmpeg ({what})"),
                reason: format!("{}: {}", out.status, tail(&out.stderr)),
            })
        }
    }
}

/// The last few lines of a tool's error output.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overrunning_process_is_killed() {
        let tools = Tools {
            timeout: Duration::from_millis(200),
            ..Tools::from_path()
        };
        let r = tools
            .run(std::path::Path::new("sleep"), &["30".into()])
            .await;
        assert!(
            matches!(r, Err(Error::Process { ref reason, .. }) if reason.starts_with("killed")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn missing_tool_is_an_error_not_a_panic() {
        let r = Tools {
            niceness: 0,
            ..Tools::from_path()
        }
        .run(std::path::Path::new("/nonexistent/ffmpeg"), &[])
        .await;
        assert!(matches!(r, Err(Error::Process { .. })));
    }
}
