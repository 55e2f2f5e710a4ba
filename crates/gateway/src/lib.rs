//! The HTTP front door of a Nimbus region.
//!
//! Every RPC request takes one path ([`Gateway::handle`]): parse → authenticate (v1 or V3 signature,
//! timestamp window, nonce replay) → throttle (per AccessKey) → route (Version, Action) → authorize
//! (the RAM action and resource ARNs the service names) → handle → audit. The gateway knows nothing
//! about products; products know nothing about HTTP.
//!
//! - [`signature`]: the signature algorithms, shared with the CLI's client side.
//! - `pipeline`: the request path above.
//! - `render`: JSON and XML bodies in Alibaba's shapes.
//! - [`object`]: the OSS/S3 REST front door, on its own listener, with the same request path.
//! - [`server`]: listeners (HTTPS, loopback HTTP), keep-alive, limits, graceful shutdown.

pub mod object;
mod pipeline;
mod render;
mod replay;
pub mod server;
pub mod signature;
mod throttle;

pub use object::{ObjectGateway, ObjectGatewayConfig};
pub use pipeline::{Gateway, GatewayConfig, Hooks, SIGN_IN_PATH};
pub use throttle::ThrottleConfig;
