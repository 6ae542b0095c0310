//! Which of this machine's TCP connections belong to its build hooks, so a
//! builder's `SSH_CONNECTION` can be traced back to one of our slots.
//!
//! A hook holding a slot (found in `current-load`, see [`crate::slots`]) runs
//! `ssh` to the machine; that ssh's socket is one of the hook's descendants'
//! open files (`/proc/PID/fd`, readable for our own processes or as root),
//! and `/proc/net/tcp{,6}` (readable by anyone) gives each socket's two
//! addresses. The builder reports the same two addresses, swapped, so the
//! pair names the connection on both ends. Linux only; elsewhere nothing
//! matches and builds from here show as `ssh`.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::classify::{LocalEnd, LocalEnds, SshConnection};
use crate::jobs::process_tree;
use crate::slots::LocalLoad;

/// A TCP connection as this machine sees it: (local, remote).
type Tuple = (SocketAddr, SocketAddr);

/// This machine's connections and which hook owns which.
#[derive(Debug, Default)]
pub struct LocalLinks {
    /// Socket inode of every established connection.
    sockets: HashMap<Tuple, u64>,
    /// Socket inode → (machine index, slot, hook pid).
    hook_sockets: HashMap<u64, (usize, u32, u32)>,
    /// Machines where this machine's hooks hold a slot now.
    busy: HashSet<usize>,
}

impl LocalLinks {
    /// Read the connections and the sockets of every slot holder in `load`
    /// (machines in the same order as given to [`crate::slots::read`]).
    pub fn read(load: &LocalLoad) -> LocalLinks {
        let mut links = LocalLinks::default();
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let Ok(text) = std::fs::read_to_string(path) {
                links.sockets.extend(parse_tcp_table(&text));
            }
        }
        let Some(machines) = load.machines() else {
            return links;
        };
        for (index, machine) in machines.iter().enumerate() {
            for holder in &machine.holders {
                links.busy.insert(index);
                let mut pids = vec![holder.pid];
                pids.extend(process_tree::descendants(holder.pid).iter().map(|p| p.pid));
                // Another user's hooks' files are not readable: their
                // connections are then only "likely" this machine's slots.
                for inode in pids.into_iter().filter_map(socket_inodes).flatten() {
                    links
                        .hook_sockets
                        .insert(inode, (index, holder.slot, holder.pid));
                }
            }
        }
        links
    }

    /// What this machine knows of connections to machine `index`.
    pub fn for_machine(&self, index: usize) -> MachineLinks<'_> {
        MachineLinks { links: self, index }
    }
}

/// [`LocalLinks`] seen from one machine.
pub struct MachineLinks<'a> {
    links: &'a LocalLinks,
    index: usize,
}

impl LocalEnds for MachineLinks<'_> {
    fn local_end(&self, connection: &SshConnection) -> LocalEnd {
        let tuple = (plain(connection.client), plain(connection.server));
        let Some(inode) = self.links.sockets.get(&tuple) else {
            return LocalEnd::Elsewhere;
        };
        if let Some(&(machine, slot, hook)) = self.links.hook_sockets.get(inode)
            && machine == self.index
        {
            return LocalEnd::Slot { slot, hook };
        }
        // Not a hook's own socket, but this machine holds slots there: the
        // hooks' sockets were not readable, or their ssh went through a
        // ControlMaster whose socket belongs to the master.
        if self.links.busy.contains(&self.index) {
            LocalEnd::LikelySlot
        } else {
            LocalEnd::NotAHook
        }
    }
}

/// The socket inodes among `pid`'s open files; `None` if they cannot be read.
fn socket_inodes(pid: u32) -> Option<Vec<u64>> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut inodes = Vec::new();
    for entry in entries.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|inode| inode.parse().ok())
        {
            inodes.push(inode);
        }
    }
    Some(inodes)
}

/// Established connections (state `01`) of a `/proc/net/tcp` or `tcp6` table.
pub(super) fn parse_tcp_table(text: &str) -> Vec<(Tuple, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"01") {
                return None;
            }
            let local = parse_address(fields.get(1)?)?;
            let remote = parse_address(fields.get(2)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            Some(((local, remote), inode))
        })
        .collect()
}

/// `0100007F:A72C` (IPv4) or 32 hex digits and a port (IPv6). The kernel
/// prints each 32-bit word of the address as a number in the host's byte
/// order, hence `to_ne_bytes`.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(plain(SocketAddr::new(ip, port)))
}

/// An IPv4-mapped IPv6 address as the IPv4 one, as `sshd` reports it.
fn plain(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), address.port()),
            None => address,
        },
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn tables_of_both_families() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 631 1 0 100 0 0 10 0\n\
   1: 0100007F:9C56 0B00007F:08AE 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n";
        assert_eq!(
            parse_tcp_table(v4),
            [((addr("127.0.0.1:40022"), addr("127.0.0.11:2222")), 4242)],
            "the listener is not established"
        );
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0000000000000000FFFF00000100007F:9C57 0000000000000000FFFF00000B00007F:08AE 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0\n\
   1: 00000000000000000000000001000000:9C58 00000000000000000000000001000000:0016 01 00000000:00000000 00:00000000 00000000     0        0 78 1 0\n";
        assert_eq!(
            parse_tcp_table(v6),
            [
                ((addr("127.0.0.1:40023"), addr("127.0.0.11:2222")), 77),
                ((addr("[::1]:40024"), addr("[::1]:22")), 78)
            ]
        );
    }

    #[test]
    fn a_hook_socket_is_its_slot_and_other_local_sockets_are_not() {
        let here = (addr("127.0.0.1:40022"), addr("127.0.0.11:2222"));
        let other = (addr("127.0.0.1:40023"), addr("127.0.0.11:2222"));
        let mut links = LocalLinks::default();
        links.sockets.insert(here, 1);
        links.sockets.insert(other, 2);
        links.hook_sockets.insert(1, (0, 3, 999));
        links.busy.insert(0);
        let connection = |(client, server): Tuple| SshConnection { client, server };
        let b1 = links.for_machine(0);
        assert_eq!(
            b1.local_end(&connection(here)),
            LocalEnd::Slot { slot: 3, hook: 999 }
        );
        assert_eq!(
            b1.local_end(&connection(other)),
            LocalEnd::LikelySlot,
            "from here, to a machine our hooks use (a ControlMaster's socket, say)"
        );
        assert_eq!(
            links.for_machine(1).local_end(&connection(other)),
            LocalEnd::NotAHook,
            "no slot held there"
        );
        let elsewhere = (addr("10.0.0.5:40022"), addr("127.0.0.11:2222"));
        assert_eq!(b1.local_end(&connection(elsewhere)), LocalEnd::Elsewhere);
        assert_eq!(
            links.for_machine(1).local_end(&connection(here)),
            LocalEnd::NotAHook,
            "a hook's socket counts for the machine whose slot it holds"
        );
    }

    /// A real connection of this process's: its socket is found by pid and
    /// its addresses in /proc/net/tcp.
    #[test]
    fn a_real_connection_is_found_by_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _accepted = listener.accept().unwrap();
        let tuple = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let inode = parse_tcp_table(&table)
            .into_iter()
            .find(|(t, _)| *t == tuple)
            .map(|(_, inode)| inode)
            .expect("the connection is listed");
        let ours = socket_inodes(std::process::id()).unwrap();
        assert!(ours.contains(&inode), "{inode} in {ours:?}");
    }
}
