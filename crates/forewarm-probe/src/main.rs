//! `forewarm-probe ADDR...`: for each `ip:port`, try a TCP connection (1 s) and print one line,
//! `ADDR open` or `ADDR closed <why>`; exit 0 when every address was tried, 2 on an address
//! that does not parse. Test-only: the tenant isolation tests run it in a container on a
//! tenant's network (image `forewarm/probe:test`, `make images`) to prove, from inside, what a
//! workload can and cannot reach. The production runner carries nothing like it.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long one connection attempt may take: a dropped SYN (an internal network, a
/// firewall) times out; a refused one answers at once.
const CONNECT_WITHIN: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for arg in std::env::args().skip(1) {
        match arg.parse::<SocketAddr>() {
            Ok(addr) => match TcpStream::connect_timeout(&addr, CONNECT_WITHIN) {
                Ok(_) => println!("{addr} open"),
                Err(e) => println!("{addr} closed {e}"),
            },
            Err(e) => {
                eprintln!("forewarm-probe: {arg:?} is not ip:port: {e}");
                code = ExitCode::from(2);
            }
        }
    }
    code
}
