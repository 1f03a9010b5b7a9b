//! `forewarm-runner`: serve the runner protocol (see the library docs).

use forewarm_runner::{Runner, RunnerConfig};

// One container serves one invocation at a time: one thread, plus the blocking pool for work.
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = match RunnerConfig::from_env(|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forewarm-runner: {e}");
            std::process::exit(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("forewarm-runner: cannot listen on {}: {e}", config.listen);
            std::process::exit(1);
        }
    };
    let runner = Runner::new(config);
    let init = runner.clone();
    tokio::spawn(async move {
        if let Err(e) = init.initialise().await {
            eprintln!("forewarm-runner: initialisation failed: {e}");
            std::process::exit(1);
        }
    });
    // As PID 1 in a container, SIGTERM is ignored unless handled: handle it, so `docker stop`
    // is immediate.
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    // Answers go out as soon as they are written (no Nagle wait behind an unacknowledged
    // segment), as on the node's own listener.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, runner.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("forewarm-runner: {e}");
        std::process::exit(1);
    }
}
