use c10k_server::{config::Config, log, master};

fn main() {
    // Master and shards alike: a panic is one log line saying where, before the process
    // dies (it aborts in a release build), so the master's restart line has its cause.
    log::log_panics();
    let config = Config::from_args();
    if config.check_config {
        std::process::exit(master::check_config(&config));
    }
    let code = match config.worker {
        Some(index) => master::run_worker(&config, index),
        None => master::run(&config),
    };
    std::process::exit(code);
}
