//! WebSocket (HTTP/1.1 Upgrade) through the gateway: the handshake reaches
//! the backend with the tenant's headers (a client's own `X-Tenant-ID` is
//! replaced), and messages flow both ways over the tunnel.

mod common;

use std::time::Duration;

use common::{pool_config, Backend, Gateway, GatewayOptions};
use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use serde_json::Value;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_websocket_round_trip_carries_the_tenant_headers() {
    let app = Backend::start("app").await;
    let gw = Gateway::start(GatewayOptions::new().config(&pool_config(&[app.yaml()], &[]))).await;

    let handshake = Request::get("ws://acme.test/chat?room=1")
        .header("host", "acme.test")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", generate_key())
        .header("x-tenant-id", "spoofed")
        .body(())
        .expect("handshake request");
    let tcp = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect to the gateway");
    let (mut ws, response) = tokio_tungstenite::client_async(handshake, tcp)
        .await
        .unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}\n{}", gw.log()));
    assert_eq!(response.status(), 101);

    // The echo backend's first message is the handshake it received.
    let seen: Value = match next_message(&mut ws).await {
        Message::Text(text) => serde_json::from_str(&text).expect("handshake JSON"),
        other => panic!("expected the handshake as text, got {other:?}"),
    };
    assert_eq!(seen["path"], "/chat?room=1");
    assert_eq!(seen["headers"]["x-tenant-id"], "acme", "{seen:#}");
    assert_eq!(seen["headers"]["upgrade"], "websocket", "{seen:#}");
    assert!(seen["headers"]["x-request-id"].is_string(), "{seen:#}");

    for text in ["hello", "and again"] {
        ws.send(Message::text(text)).await.expect("send a message");
        assert_eq!(next_message(&mut ws).await, Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .expect("send binary");
    assert_eq!(
        next_message(&mut ws).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
    ws.close(None).await.expect("close the WebSocket");
}

async fn next_message<S>(ws: &mut S) -> Message
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10s")
        .expect("the WebSocket is open")
        .expect("a valid message")
}
