//! The access log's file, which each shard writes its batched lines to: appended to, or
//! stdout, and reopened by path when logrotate has moved it (SIGUSR1).

use std::io::{self, Write};
use std::os::fd::AsFd;

/// The access log's file: appended to (O_APPEND, so lines of several shards never mix),
/// or stdout for `-`; reopened by path on request (after logrotate moved it).
pub struct LogFile {
    path: Option<std::path::PathBuf>,
    file: std::fs::File,
}

impl LogFile {
    pub fn open(target: &str) -> io::Result<LogFile> {
        if target == "-" {
            let file = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            return Ok(LogFile { path: None, file });
        }
        let path = std::path::PathBuf::from(target);
        Ok(LogFile { file: open_append(&path)?, path: Some(path) })
    }

    /// Write `lines` (whole lines) in one write where the kernel takes them whole.
    pub fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        self.file.write_all(lines)
    }

    /// Open the path again: what is written from now on goes to the file there now.
    pub fn reopen(&mut self) -> io::Result<()> {
        if let Some(path) = &self.path {
            self.file = open_append(path)?;
        }
        Ok(())
    }
}

fn open_append(path: &std::path::Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().append(true).create(true).open(path)
}
