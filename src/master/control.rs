//! The master's loop: it sleeps until a shard reports that it serves, a signal comes, or a
//! tick passes; then it reads signals, reaps exits, moves a reload on and restarts what is
//! due. Nothing in it waits on a client (the status listener has its own thread). Stops:
//! SIGTERM/SIGINT drain, a second one or SIGQUIT is at once.

use super::*;

impl Master {
    /// Start the first generation, then supervise until stopped. `Err` with the exit code
    /// when the server cannot start at all.
    /// `addrs`: every listener's address as bound, TLS or not, for the start's lines.
    pub(super) fn start(&mut self, mut signals: Signals, addrs: &[(std::net::SocketAddr, bool)]) -> Result<(), i32> {
        for index in 0..self.slots.len() {
            if let Err(e) = self.spawn(index, 1) {
                log::error(format_args!("cannot start shard {index}: {e}"));
                self.stop_now();
                return Err(1);
            }
        }
        loop {
            self.wait_for_reports();
            if let Some(keys) = &mut self.tickets {
                keys.advance(unix_now());
            }
            for signal in signals.pending() {
                let name = if signal == SIGUSR2 { "SIGUSR2" } else { "SIGHUP" };
                match signal {
                    SIGHUP | SIGUSR2 if !self.serving || self.reload.is_some() || self.stopping.is_some() => {
                        log::info(format_args!("{name}: a start, reload or stop is under way; ignored"))
                    }
                    // nginx's binary upgrade: a reload runs the binary at the path the server
                    // was started from, so an upgrade installed over it is what it runs.
                    SIGUSR2 => {
                        log::info(format_args!("SIGUSR2: upgrade: reloading from {}", self.exe.display()));
                        self.reload();
                    }
                    SIGHUP => self.reload(),
                    SIGWINCH | SIGALRM => log::info(format_args!(
                        "{}: ignored (SIGHUP or SIGUSR2 reloads, SIGUSR1 reopens the access log, SIGTERM \
                         drains and stops, SIGQUIT stops at once)",
                        if signal == SIGWINCH { "SIGWINCH" } else { "SIGALRM" }
                    )),
                    SIGUSR1 if !self.access_log => {
                        log::info(format_args!("SIGUSR1: no access log to reopen (--access-log off)"))
                    }
                    SIGUSR1 => {
                        log::info(format_args!("SIGUSR1: every shard reopens its access log"));
                        for w in &self.workers {
                            let _ = kill(Pid::from_raw(w.child.id() as i32), Signal::SIGUSR1);
                        }
                    }
                    SIGQUIT => self.stop(true),
                    _ => self.stop(self.stopping.is_some()),
                }
            }
            if !self.serving && self.stopping.is_none() {
                if let Some(why) = self.first_generation_failed() {
                    log::error(format_args!("cannot start: {why}"));
                    self.stop_now();
                    return Err(1);
                }
                if self.workers.iter().all(|w| w.serving) {
                    self.serving = true;
                    self.publish();
                    // Every shard takes new connections before the line says so: a shard
                    // down from then on is one the next steer has to steer away from.
                    self.steer();
                    for line in listen::listening_lines(addrs, self.slots.len(), backend_name(self.backend)) {
                        log::info(format_args!("{line}"));
                    }
                    self.notify.send("READY=1");
                }
            }
            if self.serving || self.stopping.is_some() {
                self.reap();
            }
            self.enforce_kill_deadlines();
            if self.stopping.is_some() {
                if self.workers.is_empty() {
                    log::info(format_args!("stopped"));
                    return Ok(());
                }
                continue;
            }
            self.progress_reload();
            self.restart_due();
            self.steer();
        }
    }

    /// SIGKILL the workers that outstayed their stop.
    pub(super) fn enforce_kill_deadlines(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            if w.kill_at.is_some_and(|at| now >= at) {
                log::warn(format_args!("shard {} (pid {}) outstayed its stop: SIGKILL", w.index, w.child.id()));
                let _ = w.child.kill();
                w.killed = true;
                w.kill_at = None;
            }
        }
    }

    /// Tell worker `i` to drain (SIGTERM) or to stop at once (SIGQUIT, SIGKILL).
    pub(super) fn tell(&mut self, i: usize, signal: Signal) {
        let now = Instant::now();
        let w = &mut self.workers[i];
        let _ = kill(Pid::from_raw(w.child.id() as i32), signal);
        w.stopped = true;
        w.killed |= signal == Signal::SIGKILL;
        w.kill_at = match signal {
            Signal::SIGTERM => Some(now + self.grace + KILL_GRACE),
            Signal::SIGKILL => None,
            _ => Some(now + KILL_GRACE),
        };
    }

    /// Sleep until a worker reports that it serves, a signal comes or `TICK` passes; mark
    /// those that serve.
    pub(super) fn wait_for_reports(&mut self) {
        let mut fds = [PollFd::new(self.ready_rx.as_fd(), PollFlags::POLLIN)];
        let ms = TICK.as_millis() as u16;
        if !matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0) {
            return;
        }
        let mut buf = [0u8; 512];
        let n = match self.ready_rx.read(&mut buf) {
            Ok(n) => n,
            Err(_) => return,
        };
        self.ready_buf.extend_from_slice(&buf[..n]);
        while let Some(end) = self.ready_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.ready_buf.drain(..=end).collect();
            let pid = std::str::from_utf8(&line).ok().and_then(|l| l.trim().parse::<u32>().ok());
            if let Some(w) = self.workers.iter_mut().find(|w| Some(w.child.id()) == pid) {
                w.serving = true;
            }
        }
    }

    /// Why the first generation will not serve: a shard exited or is late.
    pub(super) fn first_generation_failed(&mut self) -> Option<String> {
        for w in &mut self.workers {
            if let Ok(Some(status)) = w.child.try_wait() {
                return Some(format!("shard {} (pid {}) {} before serving", w.index, w.child.id(), ended(status)));
            }
            if !w.serving && w.started.elapsed() > START_TIMEOUT {
                return Some(format!(
                    "shard {} (pid {}) did not serve within {START_TIMEOUT:?}",
                    w.index,
                    w.child.id()
                ));
            }
        }
        None
    }

    /// SIGTERM/SIGINT: drain every shard; a second one, or SIGQUIT (`immediate`), stops
    /// them at once.
    pub(super) fn stop(&mut self, immediate: bool) {
        if self.stopping == Some(true) {
            return;
        }
        let first = self.stopping.is_none();
        self.stopping = Some(immediate);
        self.reload = None;
        // `/healthz` says so before any shard hears of it, so a load balancer stops first.
        self.publish();
        if first {
            self.notify.send("STOPPING=1");
        }
        // The shards' copies of the listeners are the last: once each shard has taken
        // what its queue holds and closed its copy, new connections are refused.
        for slot in &mut self.slots {
            slot.listeners.clear();
            slot.restart_at = None;
        }
        if immediate {
            log::info(format_args!("stopping at once"));
        } else {
            log::info(format_args!("stopping: draining connections, {} s at most", self.grace.as_secs()));
        }
        for i in 0..self.workers.len() {
            // A shard draining already (the old generation of a reload) keeps its deadline.
            if immediate || !self.workers[i].stopped {
                self.tell(i, if immediate { Signal::SIGQUIT } else { Signal::SIGTERM });
            }
        }
    }

    /// Start-up failed: stop whatever started, without waiting on it.
    pub(super) fn stop_now(&mut self) {
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        self.workers.clear();
    }
}
