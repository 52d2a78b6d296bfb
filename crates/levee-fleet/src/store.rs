//! The connection to the store: one multiplexed connection to a single
//! Redis, or a cluster connection. redis-rs sets no timeout on async
//! connections by default, so both are made with connection and response
//! timeouts, and every call is also wrapped in `tokio::time::timeout`: a
//! store that stalls costs one timeout, never a hung task.

use crate::FleetError;
use redis::{FromRedisValue, Pipeline};
use std::time::Duration;

pub(crate) enum Conn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    pub(crate) async fn connect(s: &crate::Settings) -> Result<Conn, FleetError> {
        let (url, connect_timeout, timeout) = (s.url.as_str(), s.connect_timeout, s.timeout);
        let certs = || redis::TlsCertificates {
            client_tls: None,
            root_cert: s.ca_pem.clone(),
        };
        let fut = async {
            if s.cluster {
                let mut b = redis::cluster::ClusterClient::builder(vec![url.to_string()])
                    .connection_timeout(connect_timeout)
                    .response_timeout(timeout);
                if s.ca_pem.is_some() {
                    b = b.certs(certs());
                }
                let c = b.build()?;
                Ok::<_, redis::RedisError>(Conn::Cluster(c.get_async_connection().await?))
            } else {
                let c = match &s.ca_pem {
                    Some(_) => redis::Client::build_with_tls(url, certs())?,
                    None => redis::Client::open(url)?,
                };
                let cfg = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(timeout));
                Ok(Conn::Single(
                    c.get_multiplexed_async_connection_with_config(&cfg).await?,
                ))
            }
        };
        match tokio::time::timeout(connect_timeout + timeout, fut).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(FleetError::Store(e.to_string())),
            Err(_) => Err(FleetError::Timeout("connecting")),
        }
    }

    /// Run a pipeline (all its keys on one slot) under `timeout`.
    pub(crate) async fn run<T: FromRedisValue>(
        &mut self,
        p: &Pipeline,
        timeout: Duration,
        what: &'static str,
    ) -> Result<T, FleetError> {
        let fut = async {
            match self {
                Conn::Single(c) => p.query_async::<T>(c).await,
                Conn::Cluster(c) => p.query_async::<T>(c).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(FleetError::Store(format!("{what}: {e}"))),
            Err(_) => Err(FleetError::Timeout(what)),
        }
    }
}
