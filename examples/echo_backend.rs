//! An example backend that echoes the headers it received as JSON, so you
//! can see what the gateway injects.
//!
//!     cargo run --example echo_backend -- --listen 127.0.0.1:8000

#[path = "../tests/common/echo.rs"]
mod echo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8000".to_string();
    let mut name = "echo".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or(listen),
            "--name" => name = args.next().unwrap_or(name),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: echo_backend [--listen ADDR] [--name NAME]"
                );
                std::process::exit(2);
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "echo backend listening on http://{}",
        listener.local_addr()?
    );
    echo::serve_echo(listener, name).await;
    Ok(())
}
