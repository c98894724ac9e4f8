use c10k_server::{config::Config, master};

fn main() {
    let config = Config::from_args();
    let code = match config.worker {
        Some(index) => master::run_worker(&config, index),
        None => master::run(&config),
    };
    std::process::exit(code);
}
