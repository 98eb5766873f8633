//! Outbound safety: Handoff calls the URLs of its contract (targets, token and key URLs) and
//! follows their redirects, and none of them may turn it against the network it runs in. A
//! name that resolves to a private, loopback or link-local address, or a redirect to such an
//! address, is refused unless the system's `outbound_allow` names its network. An address
//! written as an IP literal in the contract is the contract's own choice and is allowed; a name
//! is checked at every resolution, so re-pointing its DNS later changes nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use handoff_contract::System;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

/// Redirects followed at most, as reqwest does by default.
const MAX_REDIRECTS: usize = 10;

/// The networks one system's calls may reach besides the public internet.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    allow: Arc<[IpNet]>,
}

impl Outbound {
    /// The system's `outbound_allow`, and the address its `base_url` names if it is an IP
    /// literal (so a redirect back to it is followed).
    pub fn of(system: &System) -> Outbound {
        let literal = system.base_url.as_deref().and_then(|u| reqwest::Url::parse(u).ok()).and_then(|u| ip_literal(&u));
        Outbound { allow: system.outbound_allow.iter().copied().chain(literal.map(IpNet::from)).collect() }
    }

    /// Whether a call may reach `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        !is_internal(ip) || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// A client builder whose every resolution and redirect is checked.
    pub fn client(&self) -> reqwest::ClientBuilder {
        let redirects = self.clone();
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match ip_literal(attempt.url()) {
                Some(ip) if !redirects.permits(ip) => {
                    attempt.error(format!("a redirect to {ip}, a private address not in outbound_allow"))
                }
                _ => attempt.follow(),
            }
        });
        reqwest::Client::builder().dns_resolver(Arc::new(self.clone())).redirect(policy)
    }
}

impl Resolve for Outbound {
    fn resolve(&self, name: Name) -> Resolving {
        let outbound = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved.iter().copied().filter(|a| outbound.permits(a.ip())).collect();
            if permitted.is_empty() {
                let ips: Vec<String> = resolved.iter().map(|a| a.ip().to_string()).collect();
                let refusal = format!(
                    "{host} resolves to {}: private, loopback or link-local, and not in outbound_allow",
                    ips.join(", ")
                );
                return Err(refusal.into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The address a URL names when its host is an IP literal (no resolution happens for it).
fn ip_literal(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Loopback, private (RFC 1918, unique local), shared (RFC 6598), link-local and unspecified
/// addresses: the ones that lead into the network Handoff runs in.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback() || ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(allow: &[&str]) -> Outbound {
        Outbound { allow: allow.iter().map(|n| n.parse().unwrap()).collect() }
    }

    #[test]
    fn internal_addresses_need_the_allow_list() {
        let none = outbound(&[]);
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
            .into_iter()
            .chain(["::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::"])
        {
            assert!(!none.permits(ip.parse().unwrap()), "{ip}");
        }
        assert!(none.permits("93.184.215.14".parse().unwrap()));
        assert!(none.permits("2606:2800:21f:cb07::1".parse().unwrap()));
        let loopback = outbound(&["127.0.0.0/8", "::1/128"]);
        assert!(
            loopback.permits("127.0.0.2".parse().unwrap()) && loopback.permits("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!(!loopback.permits("10.0.0.1".parse().unwrap()));
    }

    async fn serve(answer: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let addr = serve("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
        let url = format!("http://localhost:{}/", addr.port());
        let refused = outbound(&[]).client().build().unwrap().get(&url).send().await.unwrap_err();
        assert!(format!("{refused:?}").contains("not in outbound_allow"), "{refused:?}");
        let allowed = outbound(&["127.0.0.0/8", "::1/128"]).client().build().unwrap().get(&url).send().await;
        assert_eq!(allowed.unwrap().status(), 204);
    }

    #[tokio::test]
    async fn a_redirect_into_the_network_is_not_followed() {
        let metadata =
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\n\r\n";
        let addr = serve(metadata).await;
        let mut system: System = toml::from_str(&format!(
            "role = \"erp\"\nconnector = \"http-json\"\nbase_url = \"http://127.0.0.1:{}\"",
            addr.port()
        ))
        .unwrap();
        let client = Outbound::of(&system).client().build().unwrap();
        let refused = client.get(format!("http://{addr}/")).send().await.unwrap_err();
        assert!(refused.is_redirect() && format!("{refused:?}").contains("169.254.169.254"), "{refused:?}");
        system.outbound_allow = vec!["169.254.0.0/16".parse().unwrap()];
        assert!(Outbound::of(&system).permits("169.254.169.254".parse().unwrap()));
    }
}
