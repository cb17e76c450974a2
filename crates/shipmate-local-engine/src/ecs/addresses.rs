//! Per-task loopback addresses. Linux routes all of 127.0.0.0/8 to `lo`, so giving each task its
//! own 127.x.y.z lets the tasks of one service all listen on the same containerPort, as tasks with
//! their own ENI do on ECS. Addresses start at 127.0.1.1 (127.0.0.1 stays the endpoint's) and
//! are reused once a task stops.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const FIRST: u32 = u32::from_be_bytes([127, 0, 1, 1]);
const LAST: u32 = u32::from_be_bytes([127, 255, 255, 254]);

#[derive(Debug, Default)]
pub(crate) struct AddressPool {
    in_use: BTreeSet<u32>,
}

impl AddressPool {
    /// The lowest free address, skipping `.0` and `.255` in the last octet.
    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        let mut candidate = FIRST;
        for &used in self.in_use.range(FIRST..) {
            candidate = skip_unusable(candidate);
            if used > candidate {
                break;
            }
            if used == candidate {
                candidate += 1;
            }
        }
        let candidate = skip_unusable(candidate);
        (candidate <= LAST).then(|| {
            self.in_use.insert(candidate);
            Ipv4Addr::from(candidate)
        })
    }

    pub(crate) fn release(&mut self, address: Ipv4Addr) {
        self.in_use.remove(&u32::from(address));
    }
}

fn skip_unusable(mut candidate: u32) -> u32 {
    while matches!(candidate & 0xff, 0 | 255) {
        candidate += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_and_reuses() {
        let mut pool = AddressPool::default();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        let c = pool.allocate().unwrap();
        assert_eq!(
            (a, b, c),
            (
                Ipv4Addr::new(127, 0, 1, 1),
                Ipv4Addr::new(127, 0, 1, 2),
                Ipv4Addr::new(127, 0, 1, 3)
            )
        );
        pool.release(b);
        assert_eq!(pool.allocate().unwrap(), b);
        assert_eq!(pool.allocate().unwrap(), Ipv4Addr::new(127, 0, 1, 4));
    }

    #[test]
    fn skips_network_and_broadcast_octets() {
        let mut pool = AddressPool::default();
        let addresses: Vec<Ipv4Addr> = (0..300).map(|_| pool.allocate().unwrap()).collect();
        assert!(addresses.iter().all(|a| !matches!(a.octets()[3], 0 | 255)));
        assert_eq!(addresses[253], Ipv4Addr::new(127, 0, 1, 254));
        assert_eq!(addresses[254], Ipv4Addr::new(127, 0, 2, 1));
        let unique: BTreeSet<_> = addresses.iter().collect();
        assert_eq!(unique.len(), addresses.len());
    }
}
