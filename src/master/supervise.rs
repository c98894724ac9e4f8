//! Supervision and reloads: a worker is started with what it inherits (`spawn`); a shard
//! that exits is logged and, unless it was told to stop, replaced (at once, or after a
//! backoff when it keeps dying); a reload starts a new generation and drains the old one
//! once the new one serves.

use super::*;

impl Master {
    /// Start a worker for shard `index` of `generation` on the shard's listeners.
    pub(super) fn spawn(&mut self, index: usize, generation: u32) -> io::Result<u32> {
        let listeners = &self.slots[index].listeners;
        if listeners.is_empty() {
            return Err(io::Error::other("the server is stopping"));
        }
        // Dropped (closed) once the worker has its copy.
        let tickets = self.tickets_memfd()?;
        if let Some(fd) = &tickets {
            sys::set_inheritable(fd, true)?;
        }
        for listener in listeners {
            sys::set_inheritable(listener, true)?;
        }
        sys::set_inheritable(&self.ready_tx, true)?;
        sys::set_inheritable(&self.stats_fd, true)?;
        let fds: Vec<String> = listeners.iter().map(|l| l.as_raw_fd().to_string()).collect();
        let block = self.free_block(index);
        let mut command = Command::new(&self.exe);
        if let Some(fd) = &tickets {
            command.env(TICKETS_FD_ENV, fd.as_raw_fd().to_string());
        }
        let child = command
            .args(&self.args)
            .arg("--worker")
            .arg(index.to_string())
            .env(LISTEN_FD_ENV, fds.join(","))
            .env(READY_FD_ENV, self.ready_tx.as_raw_fd().to_string())
            .env(MASTER_PID_ENV, std::process::id().to_string())
            .env(BACKEND_ENV, backend_name(self.backend))
            .env(MAX_CONNS_ENV, self.per_shard.to_string())
            .env(GENERATION_ENV, generation.to_string())
            .env(STATS_FD_ENV, self.stats_fd.as_raw_fd().to_string())
            .env(STATS_BLOCKS_ENV, stats::blocks(self.slots.len()).to_string())
            .env(STATS_BLOCK_ENV, block.to_string())
            .env_remove("NOTIFY_SOCKET")
            .spawn();
        for listener in listeners {
            sys::set_inheritable(listener, false)?;
        }
        sys::set_inheritable(&self.ready_tx, false)?;
        sys::set_inheritable(&self.stats_fd, false)?;
        let child = child?;
        let pid = child.id();
        let counters = &self.stats[block];
        counters.pid.store(u64::from(pid), Ordering::Relaxed);
        counters.generation.store(u64::from(generation), Ordering::Relaxed);
        counters.started.store(unix_now(), Ordering::Relaxed);
        let started = Instant::now();
        let serving = false;
        self.workers.push(Worker {
            index,
            generation,
            block,
            child,
            started,
            serving,
            stopped: false,
            kill_at: None,
            killed: false,
        });
        Ok(pid)
    }

    /// A block of shard `index` that no living worker counts in; when every one is taken
    /// (more generations draining than `BLOCKS_PER_SHARD` allows for), the one of its
    /// oldest worker, shared until both have exited (`supervise::reap`).
    fn free_block(&self, index: usize) -> usize {
        let shards = self.slots.len();
        let mut blocks = stats::blocks_of(index, shards);
        blocks.find(|&b| self.workers.iter().all(|w| w.block != b)).unwrap_or_else(|| {
            let oldest = self.workers.iter().filter(|w| w.index == index).min_by_key(|w| w.started);
            oldest.map_or(index, |w| w.block)
        })
    }

    /// Collect the workers that exited: log each, replace a dead shard of the serving
    /// generation, and fail a reload whose new shard died before serving.
    pub(super) fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let status = match self.workers[i].child.try_wait() {
                Ok(Some(status)) => status,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let w = self.workers.swap_remove(i);
            // Before a replacement can be given the block.
            if self.workers.iter().all(|other| other.block != w.block) {
                self.stats[w.block].settle();
            }
            let who = format!("shard {} (pid {}, generation {})", w.index, w.child.id(), w.generation);
            if w.killed && std::os::unix::process::ExitStatusExt::signal(&status) == Some(Signal::SIGKILL as i32) {
                // Ours: a shard not yet serving when its reload failed, or one that outstayed
                // its stop (said on the line before).
                log::info(format_args!("{who} stopped by the master (SIGKILL)"));
            } else if w.stopped {
                log::info(format_args!("{who} {}", ended(status)));
            } else if self.reload.as_ref().is_some_and(|r| r.generation == w.generation) {
                let when = if w.serving { "before its generation served" } else { "before serving" };
                self.fail_reload(&format!("{who} {} {when}", ended(status)));
            } else {
                self.died(w.index, &who, status);
            }
        }
    }

    /// A shard of the serving generation died: replace it now, or after a backoff if it
    /// keeps dying.
    pub(super) fn died(&mut self, index: usize, who: &str, status: ExitStatus) {
        let now = Instant::now();
        stats::add(&self.stats[index].restarts, 1);
        let slot = &mut self.slots[index];
        slot.deaths.push_back(now);
        while slot.deaths.front().is_some_and(|&t| now.duration_since(t) > CRASH_WINDOW) {
            slot.deaths.pop_front();
        }
        if slot.deaths.len() >= CRASH_DEATHS {
            let delay = slot.backoff;
            slot.backoff = (delay * 2).min(BACKOFF_MAX);
            slot.restart_at = Some(now + delay);
            log::error(format_args!(
                "{who} {}: {} exits in {} s, restarting it in {} s",
                ended(status),
                slot.deaths.len(),
                CRASH_WINDOW.as_secs(),
                delay.as_secs()
            ));
            return;
        }
        slot.backoff = BACKOFF_FIRST;
        match self.spawn(index, self.generation) {
            Ok(pid) => log::error(format_args!("{who} {}; replaced by pid {pid}", ended(status))),
            Err(e) => {
                log::error(format_args!("{who} {}; cannot replace it ({e}), retrying in 1 s", ended(status)));
                self.slots[index].restart_at = Some(now + BACKOFF_FIRST);
            }
        }
    }

    /// Start the shards whose backoff has passed.
    pub(super) fn restart_due(&mut self) {
        let now = Instant::now();
        for index in 0..self.slots.len() {
            if self.slots[index].restart_at.is_none_or(|at| at > now) {
                continue;
            }
            self.slots[index].restart_at = None;
            match self.spawn(index, self.generation) {
                Ok(pid) => log::info(format_args!("shard {index}: restarted as pid {pid} after its backoff")),
                Err(e) => {
                    log::error(format_args!("shard {index}: cannot restart it ({e}), retrying in 1 s"));
                    self.slots[index].restart_at = Some(now + BACKOFF_FIRST);
                }
            }
        }
    }

    /// SIGHUP: a new generation of every shard from the executable on disk, unless the
    /// certificates would not load.
    pub(super) fn reload(&mut self) {
        if !self.reconfigure() {
            return;
        }
        let generation = self.generation + 1;
        self.reload = Some(Reload { generation, started: Instant::now() });
        self.publish();
        self.notify.send("RELOADING=1");
        log::info(format_args!("reload: starting generation {generation} from {}", self.exe.display()));
        for index in 0..self.slots.len() {
            if let Err(e) = self.spawn(index, generation) {
                return self.fail_reload(&format!("cannot start shard {index} from {}: {e}", self.exe.display()));
            }
        }
    }

    /// Once every shard of the new generation serves, drain the old one; fail the reload
    /// if one is late.
    pub(super) fn progress_reload(&mut self) {
        let Some(reload) = &self.reload else { return };
        let (generation, started) = (reload.generation, reload.started);
        let new = || self.workers.iter().filter(|w| w.generation == generation);
        if new().any(|w| !w.serving) {
            if started.elapsed() > START_TIMEOUT {
                self.fail_reload(&format!("generation {generation} did not serve within {START_TIMEOUT:?}"));
            }
            return;
        }
        let pids: Vec<String> = new().map(|w| w.child.id().to_string()).collect();
        let old = self.generation;
        self.generation = generation;
        self.reload = None;
        self.reconfigured();
        self.reloads += 1;
        self.publish();
        for slot in &mut self.slots {
            slot.restart_at = None;
        }
        for i in 0..self.workers.len() {
            if self.workers[i].generation != generation && !self.workers[i].stopped {
                self.tell(i, Signal::SIGTERM);
            }
        }
        log::info(format_args!(
            "reload: generation {generation} serving (pids {}); generation {old} draining",
            pids.join(", ")
        ));
        self.notify.send("READY=1");
    }

    /// Stop the new generation; the old one keeps serving.
    pub(super) fn fail_reload(&mut self, why: &str) {
        let Some(reload) = self.reload.take() else { return };
        self.unconfigure();
        self.publish();
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            if w.generation == reload.generation && !w.stopped {
                // One not serving yet has no connection to lose.
                self.tell(i, if w.serving { Signal::SIGTERM } else { Signal::SIGKILL });
            }
        }
        log::error(format_args!("reload failed: {why}; generation {} keeps serving", self.generation));
        self.notify.send("READY=1");
    }
}

/// How a worker ended, for a log line.
pub(super) fn ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited".to_string(),
        // A panic logs where, just before: a release build aborts, a debug build exits 101.
        (Some(101), _) => "exited with status 101 (it panicked: see the line before)".to_string(),
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) if sig == Signal::SIGABRT as i32 => {
            "was killed by SIGABRT (a panic aborts: see the line before)".to_string()
        }
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
            format!("was killed by {name}")
        }
        _ => format!("ended ({status})"),
    }
}
