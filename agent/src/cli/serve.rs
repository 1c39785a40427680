//! `autoarch serve [ARCHIVE]`: the dashboard of an archive, finished or running (then through
//! the review snapshot the campaign keeps, refreshed as it changes).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use autoarch_agent::machine::IsolatedTracer;
use autoarch_agent::serve::{self, Dashboard};

use super::UsageError;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The archive directory [default: --archive, or autoarch-archive].
    pub archive: Option<PathBuf>,
    /// The port (0: any free one).
    #[arg(long, default_value_t = 8321)]
    pub port: u16,
    /// The address to listen on. Anything but a loopback address exposes the archive to the
    /// network without authentication.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
}

pub fn tracer() -> anyhow::Result<Arc<IsolatedTracer>> {
    Ok(Arc::new(IsolatedTracer {
        child: super::trace_child()?,
    }))
}

/// Binds the listener and says where the dashboard is (and warns on a non-loopback address).
pub async fn listen(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| UsageError(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    if let Some(w) = serve::exposure_warning(&bound) {
        eprintln!("{w}");
    }
    let shown = if bound.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), bound.port())
    } else {
        bound
    };
    eprintln!("dashboard: http://{shown}/");
    Ok(listener)
}

pub fn serve(args: ServeArgs, default_dir: &Path) -> anyhow::Result<ExitCode> {
    let dir = args.archive.unwrap_or_else(|| default_dir.to_path_buf());
    let dash = Dashboard::dir(&dir, tracer()?).map_err(|e| UsageError(format!("{e:#}")))?;
    let (_, note) = dash.status();
    eprintln!("serving {} ({note}); Ctrl-C to stop", dir.display());
    let rt = super::runtime()?;
    rt.block_on(async move {
        let listener = listen(SocketAddr::new(args.bind, args.port)).await?;
        serve::serve(listener, dash, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the dashboard")
    })?;
    Ok(ExitCode::SUCCESS)
}
