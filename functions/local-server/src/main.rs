use local_server::{config::Config, logging, server};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("local-server: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    match server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "local-server stopped");
            eprintln!("local-server: {e}");
            ExitCode::FAILURE
        }
    }
}
