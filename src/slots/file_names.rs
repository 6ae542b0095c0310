//! How Nix's build hook names a machine's files in `current-load`: the
//! machine's store URI as each Nix version spells it, with `/` turned into
//! `_` (see the module doc of [`crate::slots`]).

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// The distinct file-name prefixes Nix versions use for a machine whose
/// (normalised) store URI is `uri`, i.e. [`crate::machines::Machine::uri`]: the slot files are
/// `<prefix>-<slot>` and the upload lock `<prefix>.upload-lock`. First the
/// Nix 2.8 spelling, then the `StoreReference` ones that differ from it.
pub fn file_name_candidates(uri: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let forms = [
        Some(uri.to_owned()),
        store_reference_verbatim(uri),
        store_reference_rendered(uri),
    ];
    for form in forms.into_iter().flatten() {
        let name = escape_uri(&form);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Nix's `escapeUri`: `/` becomes `_`, nothing else changes.
pub fn escape_uri(uri: &str) -> String {
    uri.replace('/', "_")
}

/// The parts of `scheme://authority/path?query`.
struct UriParts<'a> {
    scheme: &'a str,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(rest) => {
            let end = rest.find('/').unwrap_or(rest.len());
            (Some(&rest[..end]), &rest[end..])
        }
        None => (None, rest),
    };
    Some(UriParts {
        scheme,
        authority,
        path,
        query,
    })
}

/// `StoreReference::render()` of Nix releases whose URL parser kept the
/// authority verbatim and percent-decoded the path (≈ 2.20 to 2.30).
fn store_reference_verbatim(uri: &str) -> Option<String> {
    let parts = split_uri(uri)?;
    let mut out = format!("{}://{}", parts.scheme, parts.authority.unwrap_or(""));
    out.push_str(&String::from_utf8_lossy(&percent_decode(parts.path)?));
    push_query(&mut out, parts.query)?;
    Some(out)
}

/// `StoreReference::render()` of current Nix: authority and path decoded and
/// re-encoded, query sorted and re-encoded; its fallbacks for `auto`,
/// `daemon`, `local` and absolute paths.
fn store_reference_rendered(uri: &str) -> Option<String> {
    let Some(parts) = split_uri(uri) else {
        return special_store_rendered(uri);
    };
    let mut out = format!("{}://", parts.scheme);
    if let Some(authority) = parts.authority {
        out.push_str(&render_authority(authority)?);
    }
    if !parts.path.is_empty() {
        let segments: Option<Vec<String>> = parts
            .path
            .split('/')
            .map(|s| Some(percent_encode(&percent_decode(s)?, PATH_SEGMENT)))
            .collect();
        out.push_str(&segments?.join("/"));
    }
    push_query(&mut out, parts.query)?;
    Some(out)
}

fn special_store_rendered(uri: &str) -> Option<String> {
    let (base, query) = match uri.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (uri, None),
    };
    let has_params = !decode_query(query.unwrap_or(""))?.is_empty();
    let mut out = match base {
        "" | "auto" => "auto".to_owned(),
        "daemon" if has_params => "unix://".to_owned(),
        "daemon" => "daemon".to_owned(),
        "local" if has_params => "local://".to_owned(),
        "local" => "local".to_owned(),
        path if path.starts_with('/') && !path.contains("://") => {
            format!("local://{}", canonical_path(path))
        }
        _ => return None, // a relative path depends on the hook's cwd
    };
    push_query(&mut out, query)?;
    Some(out)
}

/// `user[:password]@host[:port]`, each part decoded and re-encoded; a port
/// is written as a number, an empty one dropped.
fn render_authority(authority: &str) -> Option<String> {
    if authority.matches('@').count() > 1 {
        return None;
    }
    let (userinfo, host_port) = match authority.split_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let mut out = String::new();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        out.push_str(&percent_encode(&percent_decode(user)?, AUTHORITY_PART));
        if let Some(password) = password {
            out.push(':');
            out.push_str(&percent_encode(&percent_decode(password)?, AUTHORITY_PART));
        }
        out.push('@');
    }
    let port = if let Some(literal) = host_port.strip_prefix('[') {
        let (address, after) = literal.split_once(']')?;
        out.push('[');
        out.push_str(&percent_encode(&percent_decode(address)?, IP_LITERAL));
        out.push(']');
        match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        }
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        out.push_str(&percent_encode(&percent_decode(host)?, AUTHORITY_PART));
        port
    };
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
        write!(out, ":{port}").ok()?;
    }
    Some(out)
}

/// Appends `?k=v&...` (sorted, re-encoded) unless the query has no parameter.
fn push_query(out: &mut String, query: Option<&str>) -> Option<()> {
    let params = decode_query(query.unwrap_or(""))?;
    let mut first = true;
    for (key, value) in &params {
        out.push(if first { '?' } else { '&' });
        first = false;
        out.push_str(&percent_encode(key, QUERY_PART));
        out.push('=');
        out.push_str(&percent_encode(value, QUERY_PART));
    }
    Some(())
}

/// Nix's `decodeQuery`: `&`-separated `key=value`, a piece without `=`
/// ignored, the first of repeated keys kept; `+` is not a space.
fn decode_query(query: &str) -> Option<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut params = std::collections::BTreeMap::new();
    for piece in query.split('&') {
        let Some((key, value)) = piece.split_once('=') else {
            continue;
        };
        params
            .entry(percent_decode(key)?)
            .or_insert(percent_decode(value)?);
    }
    Some(params)
}

/// What stays as it is when Nix re-encodes a part of a URI: the RFC 3986
/// unreserved characters. Everything else becomes `%XX` (upper-case hex).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// User, password and host name.
const AUTHORITY_PART: &AsciiSet = UNRESERVED;
/// The address inside `[...]`.
const IP_LITERAL: &AsciiSet = &UNRESERVED.remove(b':');
/// One segment of the path.
const PATH_SEGMENT: &AsciiSet = &UNRESERVED.remove(b':').remove(b'@');
/// A query parameter's key or value.
const QUERY_PART: &AsciiSet = &UNRESERVED
    .remove(b':')
    .remove(b'@')
    .remove(b'/')
    .remove(b'?');

/// `%XX` decoded, or `None` when a `%` is not followed by two hex digits
/// (Nix's `percentDecode` throws on those; the crate would keep them as
/// they are).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let well_formed = s.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    well_formed.then(|| percent_encoding::percent_decode_str(s).collect())
}

/// `bytes` with every byte of `set`, and every non-ASCII one, as `%XX`.
fn percent_encode(bytes: &[u8], set: &'static AsciiSet) -> String {
    percent_encoding::percent_encode(bytes, set).to_string()
}

/// `/a//b/./c/../d` → `/a/b/d`, without looking at the file system.
fn canonical_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_for_plain_ssh_stores() {
        assert_eq!(file_name_candidates("ssh://rtest"), ["ssh:__rtest"]);
        assert_eq!(file_name_candidates("ssh-ng://rtest"), ["ssh-ng:__rtest"]);
        assert_eq!(
            file_name_candidates("ssh://[::1]:2200"),
            ["ssh:__[::1]:2200"]
        );
    }

    #[test]
    fn candidates_with_user_and_path() {
        assert_eq!(
            file_name_candidates("ssh://nix@b1.example.org:2222/srv/store"),
            ["ssh:__nix@b1.example.org:2222_srv_store"]
        );
        // Current Nix decodes and re-encodes the authority; a padded port is a number.
        assert_eq!(
            file_name_candidates("ssh-ng://n%69x@host:022"),
            ["ssh-ng:__n%69x@host:022", "ssh-ng:__nix@host:22"]
        );
    }

    #[test]
    fn candidates_with_query() {
        // 2.8 keeps the query verbatim; StoreReference sorts it by key.
        assert_eq!(
            file_name_candidates("ssh://b1?remote-store=/mnt&compress=true"),
            [
                "ssh:__b1?remote-store=_mnt&compress=true",
                "ssh:__b1?compress=true&remote-store=_mnt"
            ]
        );
        // ... and decodes it: %2F becomes '/', hence '_'.
        assert_eq!(
            file_name_candidates(
                "ssh-ng://b1?remote-program=/opt/nix%20daemon&remote-store=%2Fmnt"
            ),
            [
                "ssh-ng:__b1?remote-program=_opt_nix%20daemon&remote-store=%2Fmnt",
                "ssh-ng:__b1?remote-program=_opt_nix%20daemon&remote-store=_mnt"
            ]
        );
        // A parameter without '=' is dropped; an empty query disappears.
        assert_eq!(
            file_name_candidates("ssh://b1?compress"),
            ["ssh:__b1?compress", "ssh:__b1"]
        );
    }

    #[test]
    fn candidates_for_special_stores() {
        assert_eq!(file_name_candidates("daemon"), ["daemon"]);
        assert_eq!(file_name_candidates("auto"), ["auto"]);
        assert_eq!(
            file_name_candidates("local?root=/tmp/r"),
            ["local?root=_tmp_r", "local:__?root=_tmp_r"]
        );
        assert_eq!(
            file_name_candidates("/srv//nix/./x"),
            ["_srv__nix_._x", "local:___srv_nix_x"]
        );
    }

    #[test]
    fn percent_decoding_refuses_a_lone_percent() {
        assert_eq!(percent_decode("a%41%2fb").as_deref(), Some(&b"aA/b"[..]));
        assert_eq!(percent_decode("%e2%82%AC").as_deref(), Some("€".as_bytes()));
        assert_eq!(percent_decode("").as_deref(), Some(&b""[..]));
        for bad in ["%", "a%", "%4", "%4g", "%%41", "%zz", "%é0", "x%41%"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        // Nothing that fails to decode makes a spelling.
        assert_eq!(file_name_candidates("ssh://b%zz"), ["ssh:__b%zz"]);
    }

    #[test]
    fn percent_encoding_keeps_the_unreserved_and_what_each_part_allows() {
        for (set, keep) in [
            (AUTHORITY_PART, ""),
            (IP_LITERAL, ":"),
            (PATH_SEGMENT, ":@"),
            (QUERY_PART, ":@/?"),
        ] {
            for b in 0..=u8::MAX {
                let stays = b.is_ascii_alphanumeric()
                    || b"-._~".contains(&b)
                    || keep.as_bytes().contains(&b);
                let expected = if stays {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                };
                assert_eq!(
                    percent_encode(&[b], set),
                    expected,
                    "{b:#04x} keeping {keep:?}"
                );
            }
        }
    }
}
