//! Downloads of `dataset_url`s, and the defence against server-side request forgery that they
//! need. The admin fetches whatever URL a user names, from inside the deployment: unchecked,
//! a user could make it fetch its own API, Postgres's port, a cloud metadata service or
//! anything else on its private networks, and store the answer as a dataset.
//!
//! So every connection a download makes goes to a global unicast address, unless the operator
//! allowed the host (`RAFIKI_DATASET_URL_ALLOW`). Names are checked where they are resolved (a
//! resolver that drops refused addresses), so a name cannot resolve to one address when it is
//! checked and to another when it is connected; IP literals, which never reach the resolver,
//! are checked on the first URL and on every redirect. Proxies from the environment are not
//! used: a proxy would make the connection on the admin's behalf, past these checks.
//!
//! Every refusal answers with the same message, before any connection is made, so the errors
//! tell nothing of what a refused address would have answered. Credentials in a URL
//! (`user:password@`) are sent to the server but never stored or repeated in an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rafiki_types::error::ErrorName;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use reqwest::Url;

use crate::error::{ApiError, ApiResult};
use crate::storage::{Upload, WriteError};
use crate::upload::FileLimit;

/// Redirects followed at most, per download.
const MAX_REDIRECTS: usize = 5;

/// The environment variable of the allow-list, named in errors.
const ALLOW_SETTING: &str = "RAFIKI_DATASET_URL_ALLOW";

/// The operator's exceptions to "global addresses only": internal mirrors a download may
/// reach. A host name on it is admitted whatever it resolves to; a network admits the
/// addresses inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetUrlAllow {
    /// Lower-case host names, without a trailing dot.
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl DatasetUrlAllow {
    /// Parses the comma-separated entries of `RAFIKI_DATASET_URL_ALLOW`: CIDRs (`10.0.0.0/8`),
    /// single addresses and host names. The error names the first bad entry.
    pub fn parse(text: &str) -> Result<DatasetUrlAllow, String> {
        let mut allow = DatasetUrlAllow::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = IpNet::from_str(entry) {
                if net != net.trunc() {
                    return Err(format!(
                        "{ALLOW_SETTING}: `{entry}` has bits set past its prefix; did you mean \
                         `{}`?",
                        net.trunc()
                    ));
                }
                allow.nets.push(net);
            } else if let Ok(ip) = IpAddr::from_str(entry) {
                allow.nets.push(IpNet::from(ip));
            } else if let Some(host) = host_name(entry) {
                allow.hosts.push(host);
            } else {
                return Err(format!(
                    "{ALLOW_SETTING}: `{entry}` is neither a CIDR (e.g. 10.0.0.0/8), an IP \
                     address nor an ASCII host name"
                ));
            }
        }
        Ok(allow)
    }

    /// Whether a connection to the host named `name` may use any address it resolves to.
    fn admits_host(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether a connection may go to `ip`: a global unicast address, or one the operator
    /// allowed. IPv4-mapped addresses are compared as the IPv4 address they reach.
    fn admits_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        is_global_unicast(ip) || self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The checks of a URL about to be fetched, the first or a redirect's: http(s) only, and
    /// an IP literal host must be admitted. Host names are left to the resolver.
    fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme(url.scheme().to_owned()));
        }
        // The URL parser has already turned every IPv4 spelling (`2130706433`, `127.1`,
        // `0x7f.1`) into dotted form, and IPv6 literals are bracketed.
        let host = url.host_str().ok_or(Refusal::Address)?;
        let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let Ok(ip) = IpAddr::from_str(literal.unwrap_or(host)) else {
            return Ok(());
        };
        if self.admits_ip(ip) {
            Ok(())
        } else {
            Err(Refusal::Address)
        }
    }
}

/// `entry` as a host name the allow-list can match (lower case, no trailing dot), if it is
/// one: dot-separated labels of letters, digits, `-` and `_`. A name whose last label is a
/// number is refused: URLs read such hosts as IPv4 addresses (`127.1`), so it would never
/// match.
fn host_name(entry: &str) -> Option<String> {
    let name = entry
        .strip_suffix('.')
        .unwrap_or(entry)
        .to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let last = labels.last()?;
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    (name.len() <= 253 && labels.iter().all(label_ok) && !numeric).then_some(name)
}

/// Why a URL is not fetched. Raised inside the client (resolver, redirect policy) and found
/// again in its error's causes.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// The address is not global and not allowed. One message for every such address,
    /// whatever it is and whether anything listens there.
    #[error(
        "`dataset_url` and its redirects must resolve to public addresses; operators can allow \
         internal hosts with {ALLOW_SETTING}."
    )]
    Address,
    /// Not http(s).
    #[error("`dataset_url` and its redirects must be http or https URLs, not `{0}:`.")]
    Scheme(String),
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("it redirects too many times")]
    TooManyRedirects,
}

/// A `dataset_url` as the user gave it, parsed. It keeps any credentials for the request;
/// [`DatasetUrl::source`] is what may be stored and shown.
pub struct DatasetUrl {
    /// The URL fetched, credentials included.
    fetch: Url,
    /// The URL without credentials.
    source: String,
}

impl DatasetUrl {
    /// Parses `text`; it must be an http(s) URL.
    pub fn parse(text: &str) -> ApiResult<DatasetUrl> {
        let fetch = Url::parse(text)
            .map_err(|err| invalid_dataset(format!("`dataset_url` is not a valid URL: {err}.")))?;
        if !matches!(fetch.scheme(), "http" | "https") {
            return Err(invalid_dataset(
                Refusal::Scheme(fetch.scheme().to_owned()).to_string(),
            ));
        }
        let mut public = fetch.clone();
        // Cannot fail: http(s) URLs have a host.
        let _ = public.set_username("");
        let _ = public.set_password(None);
        Ok(DatasetUrl {
            fetch,
            source: public.into(),
        })
    }

    /// The URL without credentials: stored as the dataset's `source_url`.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Shows the URL without its credentials.
impl fmt::Debug for DatasetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatasetUrl").field(&self.source).finish()
    }
}

/// Fetches `dataset_url`s under the address rules of this module.
#[derive(Clone)]
pub struct DatasetUrlFetcher {
    client: reqwest::Client,
    allow: Arc<DatasetUrlAllow>,
}

impl DatasetUrlFetcher {
    /// A fetcher admitting global addresses and those on `allow`. Its client uses rustls with
    /// the bundled web roots (no system certificates needed), bounded connect and total
    /// times, no proxies, and at most [`MAX_REDIRECTS`] redirects.
    pub fn new(allow: DatasetUrlAllow, timeout: Duration) -> anyhow::Result<DatasetUrlFetcher> {
        let allow = Arc::new(allow);
        let redirects = allow.clone();
        let client = reqwest::Client::builder()
            .user_agent(concat!("rafiki-admin/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .no_proxy()
            .dns_resolver(Arc::new(AdmittingResolver {
                allow: allow.clone(),
            }))
            .redirect(Policy::custom(move |attempt: Attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(Refusal::TooManyRedirects);
                }
                match redirects.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .build()
            .context("cannot build the HTTP client of dataset_url downloads")?;
        Ok(DatasetUrlFetcher { client, allow })
    }

    /// Downloads `url` into `upload`, under `limit`.
    pub async fn download(
        &self,
        url: &DatasetUrl,
        upload: &mut Upload,
        limit: &FileLimit,
    ) -> ApiResult<()> {
        self.allow
            .check(&url.fetch)
            .map_err(|refusal| invalid_dataset(refusal.to_string()))?;
        let failed = |err: reqwest::Error| download_failed(url, err);
        let mut response = self
            .client
            .get(url.fetch.clone())
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            // The body is not read: it is the server's, and may be anything.
            return Err(invalid_dataset(format!(
                "Cannot download `dataset_url` {}: the server answered HTTP {status}.",
                url.source
            )));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit.max_bytes())
        {
            return Err(limit.error("dataset"));
        }
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            upload.write(&chunk).await.map_err(|err| match err {
                WriteError::TooLarge { .. } => limit.error("dataset"),
                WriteError::Io(err) => ApiError::internal(err),
            })?;
        }
        Ok(())
    }
}

/// The error of a download that did not complete: the refusal if the client refused an
/// address on the way, else the cause, named without the URL's credentials.
fn download_failed(url: &DatasetUrl, err: reqwest::Error) -> ApiError {
    let err = err.without_url();
    let refusal = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .find_map(|e| e.downcast_ref::<Refusal>());
    let reason = match refusal {
        Some(Refusal::TooManyRedirects) => Refusal::TooManyRedirects.to_string(),
        Some(refusal) => return invalid_dataset(refusal.to_string()),
        None if err.is_timeout() => {
            "the download timed out (RAFIKI_DATASET_URL_TIMEOUT_SECS)".to_owned()
        }
        None if err.is_connect() => "the server cannot be reached".to_owned(),
        None => format!("the download failed ({})", error_chain(&err)),
    };
    invalid_dataset(format!(
        "Cannot download `dataset_url` {}: {reason}.",
        url.source
    ))
}

/// The messages of an error and its causes, for a client who needs to know what went wrong.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn invalid_dataset(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorName::InvalidDatasetError, message)
}

/// The resolver of the download client: the system's, keeping only admitted addresses. A name
/// left with none is refused, so no connection is attempted.
struct AdmittingResolver {
    allow: Arc<DatasetUrlAllow>,
}

impl Resolve for AdmittingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            if resolved.is_empty() || allow.admits_host(host) {
                return Ok(Box::new(resolved.into_iter()) as Addrs);
            }
            let admitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| allow.admits_ip(addr.ip()))
                .collect();
            if admitted.is_empty() {
                return Err(Refusal::Address.into());
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

/// IPv4 networks that are not global unicast (IANA's special-purpose registry, plus
/// multicast and the reserved 240/4, which holds the broadcast address).
const NON_GLOBAL_V4: &[Ipv4Net] = &[
    v4net([0, 0, 0, 0], 8),       // "this network"; 0.0.0.0 reaches this host
    v4net([10, 0, 0, 0], 8),      // private
    v4net([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    v4net([127, 0, 0, 0], 8),     // loopback
    v4net([169, 254, 0, 0], 16),  // link-local, cloud metadata (169.254.169.254)
    v4net([172, 16, 0, 0], 12),   // private
    v4net([192, 0, 0, 0], 24),    // IETF protocol assignments
    v4net([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    v4net([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    v4net([192, 168, 0, 0], 16),  // private
    v4net([198, 18, 0, 0], 15),   // benchmarking
    v4net([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    v4net([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    v4net([224, 0, 0, 0], 4),     // multicast
    v4net([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
];

/// IANA allocates global unicast IPv6 addresses from this block only: loopback,
/// unspecified, unique local (fc00::/7), link-local (fe80::/10), site-local, multicast
/// (ff00::/8), discard (100::/64) and local NAT64 (64:ff9b:1::/48) all lie outside it.
const GLOBAL_V6: Ipv6Net = v6net([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Networks inside [`GLOBAL_V6`] that are not global unicast.
const NON_GLOBAL_V6: &[Ipv6Net] = &[
    // IETF protocol assignments, Teredo (2001::/32) among them; the few global
    // assignments in it are no dataset mirror's address.
    v6net([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    v6net([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6net([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation
];

const fn v4net(octets: [u8; 4], prefix: u8) -> Ipv4Net {
    let [a, b, c, d] = octets;
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6net(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// Whether `ip` is a global unicast address: one the public internet routes, so a connection
/// to it cannot reach this host or its private networks. IPv6 forms that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by the IPv4 address they reach.
fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => !NON_GLOBAL_V4.iter().any(|net| net.contains(&ip)),
        IpAddr::V6(ip) => match embedded_ipv4(ip) {
            Some(v4) => is_global_unicast(IpAddr::V4(v4)),
            None => GLOBAL_V6.contains(&ip) && !NON_GLOBAL_V6.iter().any(|n| n.contains(&ip)),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, if it is of a form that embeds one:
/// IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96, deprecated, which also holds :: and
/// ::1), NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    const NAT64: Ipv6Net = v6net([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
    const SIX_TO_FOUR: Ipv6Net = v6net([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
    const COMPATIBLE: Ipv6Net = v6net([0; 8], 96);
    let octets = ip.octets();
    let tail = || Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if NAT64.contains(&ip) || COMPATIBLE.contains(&ip) {
        Some(tail())
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(text: &str) -> bool {
        is_global_unicast(text.parse().unwrap())
    }

    #[test]
    fn public_addresses_are_global() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(global(ip), "{ip} is global");
        }
    }

    #[test]
    fn loopback_private_link_local_and_special_ipv4_addresses_are_not_global() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!global(ip), "{ip} is not global");
        }
    }

    #[test]
    fn ipv6_equivalents_and_embedded_non_global_ipv4_are_not_global() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2001:0:4136:e378::1",
            "64:ff9b:1::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.1.2.3",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
        ] {
            assert!(!global(ip), "{ip} is not global");
        }
    }

    #[test]
    fn the_allow_list_takes_cidrs_addresses_and_host_names() {
        let allow = DatasetUrlAllow::parse(
            " 10.1.0.0/16, mirror.internal ,fd00::/8,192.168.1.5,,Data.Corp.",
        )
        .unwrap();
        assert!(allow.admits_ip("10.1.2.3".parse().unwrap()));
        assert!(allow.admits_ip("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!allow.admits_ip("10.2.0.1".parse().unwrap()));
        assert!(allow.admits_ip("fd00::5".parse().unwrap()));
        assert!(allow.admits_ip("192.168.1.5".parse().unwrap()));
        assert!(!allow.admits_ip("192.168.1.6".parse().unwrap()));
        assert!(allow.admits_ip("8.8.8.8".parse().unwrap()));
        assert!(!allow.admits_ip("127.0.0.1".parse().unwrap()));
        assert!(allow.admits_host("mirror.internal"));
        assert!(allow.admits_host("MIRROR.internal."));
        assert!(allow.admits_host("data.corp"));
        assert!(!allow.admits_host("other.internal"));
        assert!(!allow.admits_host("mirror.internal.evil.com"));
        assert_eq!(
            DatasetUrlAllow::parse("").unwrap(),
            DatasetUrlAllow::default()
        );
    }

    #[test]
    fn bad_allow_list_entries_are_named() {
        for (text, entry) in [
            ("10.0.0.0/8, 10.0.0.0/33", "10.0.0.0/33"),
            ("10.0.0.1/8", "10.0.0.1/8"),
            ("http://mirror/", "http://mirror/"),
            ("mirror:8080", "mirror:8080"),
            ("*.corp", "*.corp"),
            ("127.1", "127.1"),
            ("a..b", "a..b"),
            ("bücher.de", "bücher.de"),
        ] {
            let err = DatasetUrlAllow::parse(text).unwrap_err();
            assert!(err.contains(&format!("`{entry}`")), "{text}: {err}");
            assert!(err.contains(ALLOW_SETTING), "{err}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling_the_url_parser_accepts() {
        let allow = DatasetUrlAllow::parse("127.0.0.2/32").unwrap();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "https://169.254.169.254/latest/meta-data/",
        ] {
            let refusal = allow.check(&Url::parse(url).unwrap()).unwrap_err();
            assert!(matches!(refusal, Refusal::Address), "{url}");
        }
        for url in [
            "http://127.0.0.2:8080/d.csv",
            "https://8.8.8.8/",
            "http://localhost/",
        ] {
            allow.check(&Url::parse(url).unwrap()).unwrap();
        }
        let refusal = allow.check(&Url::parse("ftp://8.8.8.8/").unwrap());
        assert!(matches!(refusal, Err(Refusal::Scheme(s)) if s == "ftp"));
    }

    #[test]
    fn credentials_stay_out_of_the_source_url_and_debug_output() {
        let url = DatasetUrl::parse("https://alice:s3cret@example.com/d.zip?x=1").unwrap();
        assert_eq!(url.source(), "https://example.com/d.zip?x=1");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.fetch.password(), Some("s3cret"));
    }
}
