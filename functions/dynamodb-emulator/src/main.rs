//! The emulator as a process, for benchmarks:
//!
//!   dynamodb-emulator --host 127.0.0.1 --port N [--latency-ms 5] [--jitter-ms 2]
//!       [--partition-wcu 1000] [--partition-rcu 3000]
//!
//! Prints `listening on http://HOST:PORT` once it accepts connections (`--port 0` takes a
//! free port), and serves until SIGTERM or Ctrl-C. `GET /emulator/stats` answers its
//! counters as JSON (requests by operation, units consumed, conflicts, throttling, the
//! most requests in flight at once); `POST /emulator/reset` zeroes them.

use dynamodb_emulator::{Config, Emulator};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: dynamodb-emulator --host 127.0.0.1 --port N [--latency-ms 5] \
                     [--jitter-ms 2] [--partition-wcu 1000] [--partition-rcu 3000]";

fn parse(args: &[String]) -> Result<(SocketAddr, Config), String> {
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: Option<u16> = None;
    let mut config = Config::default();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{flag}: not a non-negative number: {value}"))
        };
        match flag {
            "--host" => {
                host = value
                    .parse()
                    .map_err(|_| format!("--host: not an IP address: {value}"))?
            }
            "--port" => {
                port = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--port: not a port: {value}"))?,
                )
            }
            "--latency-ms" => config.latency = Duration::from_secs_f64(number()? / 1000.0),
            "--jitter-ms" => config.jitter = Duration::from_secs_f64(number()? / 1000.0),
            "--partition-wcu" => config.partition_wcu = number()?,
            "--partition-rcu" => config.partition_rcu = number()?,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
        i += 2;
    }
    let port = port.ok_or_else(|| format!("--port is required\n{USAGE}"))?;
    Ok((SocketAddr::new(host, port), config))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, config) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match Emulator::bind(config.clone(), addr).await {
            Ok(emulator) => {
                println!(
                    "listening on {} (latency {:?} + up to {:?}, partition {} WCU/s, {} RCU/s; 0 = unlimited)",
                    emulator.endpoint(),
                    config.latency,
                    config.jitter,
                    config.partition_wcu,
                    config.partition_rcu
                );
                emulator.run_until_signal().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot listen on {addr}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let (addr, config) = parse(&args(
            "--host 127.0.0.1 --port 8000 --latency-ms 3 --jitter-ms 0.5 --partition-wcu 0",
        ))
        .unwrap();
        assert_eq!(addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(config.latency, Duration::from_millis(3));
        assert_eq!(config.jitter, Duration::from_micros(500));
        assert_eq!(config.partition_wcu, 0.0);
        assert_eq!(config.partition_rcu, 3000.0);
        assert!(parse(&args("--host 127.0.0.1")).is_err());
        assert!(parse(&args("--port 1 --latency-ms -1")).is_err());
        assert!(parse(&args("--port 1 --bogus 2")).is_err());
    }
}
