//! Store URIs of the machines file: Nix's `ssh://` auto-prefix and an RFC 3986
//! reading of the authority (user, host, port), as Nix ≥ 2.31 does.

use std::collections::BTreeMap;

use url::Url;

/// A machine's store, as Nix would open it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreUri {
    /// The URI after Nix's normalisation (`host` becomes `ssh://host`).
    pub uri: String,
    /// `ssh`, `ssh-ng`, or the scheme of any other store (`local`, `daemon`, `unix`, ...).
    pub protocol: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Query parameters such as `remote-program` or `remote-store`, decoded.
    pub params: BTreeMap<String, String>,
    /// Written as an IPv6 address without brackets (`ssh://::1`,
    /// `root@fe80::1%eth0`): Nix ≥ 2.32 and ≤ 2.30 accept it, 2.31 does not.
    pub unbracketed_ipv6: bool,
}

impl StoreUri {
    /// Whether Nix reaches this store by running `ssh`.
    pub fn is_ssh(&self) -> bool {
        matches!(self.protocol.as_str(), "ssh" | "ssh-ng")
    }
}

/// Nix's backwards-compatibility rule: a schemeless word that is not a path and
/// not one of the special store names is a host name, reached over `ssh://`.
pub fn normalise(raw: &str) -> String {
    let special = |word: &str| raw == word || raw.starts_with(&format!("{word}?"));
    if raw.contains("://")
        || raw.contains('/')
        || special("auto")
        || special("daemon")
        || special("local")
        || raw.starts_with('?')
    {
        raw.to_string()
    } else {
        format!("ssh://{raw}")
    }
}

/// Parse a store URI as written in column #0. Errors are short phrases that
/// the caller puts into a located diagnostic.
pub fn parse(raw: &str) -> Result<StoreUri, String> {
    let uri = normalise(raw);
    if !uri.contains("://") {
        return Ok(parse_special(&uri));
    }
    let authority = uri.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '?', '#']).next().unwrap_or("")
    });
    if authority.matches('@').count() > 1 {
        // RFC 3986 (and so Nix ≥ 2.31) has no '@' inside the user part.
        return Err(format!(
            "'{uri}' has more than one '@'; Nix cannot parse it"
        ));
    }
    let parsed = match Url::parse(&uri) {
        Ok(parsed) if !authority.contains('%') => parsed,
        // Nix's shim for what RFC 3986 refuses: an IPv6 address without
        // brackets, or with a zone id (which the url crate does not take).
        failed => {
            if let Some(store) = ipv6_shim(&uri) {
                return Ok(store);
            }
            failed.map_err(|e| format!("'{uri}' is not a valid URI: {e}"))?
        }
    };
    let protocol = parsed.scheme().to_string();
    let host = parsed.host_str().filter(|h| !h.is_empty()).map(|h| {
        // IPv6 literals keep their brackets in the URI but not in the host field.
        h.trim_start_matches('[').trim_end_matches(']').to_string()
    });
    let user = Some(parsed.username())
        .filter(|u| !u.is_empty())
        .map(percent_decode);
    if matches!(protocol.as_str(), "ssh" | "ssh-ng") && host.is_none() {
        return Err(format!("'{uri}' names no host to connect to"));
    }
    if parsed.port() == Some(0) {
        return Err(format!("'{uri}' has port 0, which ssh cannot connect to"));
    }
    Ok(StoreUri {
        protocol,
        user,
        host: host.map(|h| percent_decode(&h)),
        port: parsed.port(),
        params: query_params(&parsed),
        uri,
        unbracketed_ipv6: false,
    })
}

/// Nix ≥ 2.32's back-compatibility reading (`StoreReference::parse`):
/// `[user@]ADDR[%ZONE]` or `[user@][ADDR%ZONE][:port]` after the scheme,
/// where ADDR is an IPv6 address. Unbracketed, the whole rest is the
/// address (no port can follow), and a zone id is taken literally (so
/// `%25` is the zone `25`); in brackets, `%25` is an encoded `%`.
fn ipv6_shim(uri: &str) -> Option<StoreUri> {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let (scheme, authority) = base.split_once("://")?;
    if authority.contains('/') {
        return None;
    }
    let (user, host_part) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let (inner, port, bracketed) = match host_part.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port.parse::<u16>().ok().filter(|&p| p != 0)?),
                None if after.is_empty() => None,
                None => return None,
            };
            (inner, port, true)
        }
        None => (host_part, None, false),
    };
    let (address, zone) = match inner.split_once('%') {
        Some((address, zone)) if bracketed => {
            (address, Some(zone.strip_prefix("25").unwrap_or(zone)))
        }
        Some((address, zone)) => (address, Some(zone)),
        None => (inner, None),
    };
    address.parse::<std::net::Ipv6Addr>().ok()?;
    if zone.is_some_and(str::is_empty) {
        return None;
    }
    let host = match zone {
        Some(zone) => format!("{address}%{}", percent_decode(zone)),
        None => address.to_string(),
    };
    let params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(StoreUri {
        uri: uri.to_string(),
        protocol: scheme.to_string(),
        user: user.filter(|u| !u.is_empty()).map(percent_decode),
        host: Some(host),
        port,
        params,
        unbracketed_ipv6: !bracketed,
    })
}

/// `auto`, `daemon`, `local` (each optionally with `?params`) and plain paths.
fn parse_special(uri: &str) -> StoreUri {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let protocol = match base {
        "" | "auto" => "auto",
        "daemon" => "daemon",
        _ => "local", // `local` itself and any filesystem path
    };
    let params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    StoreUri {
        uri: uri.to_string(),
        protocol: protocol.to_string(),
        user: None,
        host: None,
        port: None,
        params,
        unbracketed_ipv6: false,
    }
}

fn query_params(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_host_gets_ssh_prefix() {
        assert_eq!(
            normalise("nix@scratchy.labs.cs.uu.nl"),
            "ssh://nix@scratchy.labs.cs.uu.nl"
        );
        assert_eq!(normalise("ssh-ng://b1"), "ssh-ng://b1");
        assert_eq!(normalise("/nix/store-root"), "/nix/store-root");
        for special in [
            "auto",
            "daemon",
            "local",
            "local?root=/x",
            "daemon?x=1",
            "?a=b",
        ] {
            assert_eq!(normalise(special), special);
        }
        // A word that merely starts like a special name is still a host.
        assert_eq!(normalise("localhost"), "ssh://localhost");
        assert_eq!(normalise("autobuilder"), "ssh://autobuilder");
    }

    #[test]
    fn user_host_port_are_split() {
        let s = parse("nix@host:2222").unwrap();
        assert_eq!(s.uri, "ssh://nix@host:2222");
        assert_eq!(s.protocol, "ssh");
        assert_eq!(s.user.as_deref(), Some("nix"));
        assert_eq!(s.host.as_deref(), Some("host"));
        assert_eq!(s.port, Some(2222));
    }

    #[test]
    fn ssh_ng_with_query_parameters() {
        let s = parse("ssh-ng://b1?remote-program=/opt/nix/bin/nix-daemon&remote-store=%2Fmnt")
            .unwrap();
        assert_eq!(s.protocol, "ssh-ng");
        assert_eq!(s.host.as_deref(), Some("b1"));
        assert_eq!(s.user, None);
        assert_eq!(s.port, None);
        assert_eq!(s.params["remote-program"], "/opt/nix/bin/nix-daemon");
        assert_eq!(s.params["remote-store"], "/mnt");
    }

    #[test]
    fn bracketed_ipv6_with_port() {
        let s = parse("ssh://root@[::1]:2200").unwrap();
        assert_eq!(s.host.as_deref(), Some("::1"));
        assert_eq!(s.port, Some(2200));
    }

    #[test]
    fn special_stores_have_their_own_protocol() {
        assert_eq!(parse("daemon").unwrap().protocol, "daemon");
        assert_eq!(parse("auto").unwrap().protocol, "auto");
        assert_eq!(parse("local").unwrap().protocol, "local");
        assert_eq!(parse("/srv/nix").unwrap().protocol, "local");
        let unix = parse("unix:///run/nix/socket").unwrap();
        assert_eq!(unix.protocol, "unix");
        assert_eq!(unix.host, None);
        assert_eq!(parse("local?root=/x").unwrap().params["root"], "/x");
    }

    #[test]
    fn bad_ports_and_missing_hosts_are_errors() {
        assert!(parse("host:notaport").unwrap_err().contains("invalid port"));
        assert!(parse("host:70000").unwrap_err().contains("invalid port"));
        assert!(parse("host:0").unwrap_err().contains("port 0"));
        assert!(parse("ssh://").unwrap_err().contains("no host"));
        assert!(
            parse("ssh://a@b@c")
                .unwrap_err()
                .contains("more than one '@'")
        );
        assert!(parse("ssh://a@b/x@y").is_ok());
    }

    #[test]
    fn unbracketed_ipv6_as_nix_2_32_reads_it() {
        let s = parse("root@fe80::1").unwrap();
        assert_eq!(s.uri, "ssh://root@fe80::1");
        assert_eq!(s.user.as_deref(), Some("root"));
        assert_eq!(s.host.as_deref(), Some("fe80::1"));
        assert_eq!(s.port, None);
        assert!(s.unbracketed_ipv6);
        let zoned = parse("ssh-ng://fe80::1%eth0?remote-store=/x").unwrap();
        assert_eq!(zoned.protocol, "ssh-ng");
        assert_eq!(zoned.host.as_deref(), Some("fe80::1%eth0"));
        assert_eq!(zoned.params["remote-store"], "/x");
        // In brackets, %25 is an encoded '%' and a port may follow.
        let bracketed = parse("ssh://[fe80::1%25eth0]:2222").unwrap();
        assert_eq!(bracketed.host.as_deref(), Some("fe80::1%eth0"));
        assert_eq!(bracketed.port, Some(2222));
        assert!(!bracketed.unbracketed_ipv6);
        // Not an IPv6 address: still an error.
        assert!(parse("ssh://fe80::zz").is_err());
    }
}
