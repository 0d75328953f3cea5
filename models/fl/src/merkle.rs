//! The keccak Merkle tree of cumulative rewards, bit-for-bit the one `contracts/MerkleClaims.sol`
//! checks: leaf = keccak256(jobId ‖ index ‖ account ‖ amount) (abi.encodePacked: 32+32+20+32 bytes),
//! padded with zero leaves to a power of two (at least 2), node = keccak256(left ‖ right).

use revm::primitives::{Address, B256, U256, keccak256};

/// The contracts' leaf hash.
pub fn leaf(job: U256, index: usize, account: Address, amount: U256) -> B256 {
    let mut buf = [0u8; 116];
    buf[..32].copy_from_slice(&job.to_be_bytes::<32>());
    buf[32..64].copy_from_slice(&U256::from(index).to_be_bytes::<32>());
    buf[64..84].copy_from_slice(account.as_slice());
    buf[84..].copy_from_slice(&amount.to_be_bytes::<32>());
    keccak256(buf)
}

fn node(l: &B256, r: &B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(l.as_slice());
    buf[32..].copy_from_slice(r.as_slice());
    keccak256(buf)
}

/// Depth of the tree over `n` leaves: ⌈log₂ n⌉, at least 1.
pub fn depth_for(n: usize) -> usize {
    n.max(2).next_power_of_two().trailing_zeros() as usize
}

/// A complete tree: `levels[0]` are the (padded) leaves, the last level is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct MerkleTree {
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`.
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut level = leaves;
        level.resize(1 << depth_for(level.len()), B256::ZERO);
        let mut levels = vec![level];
        while levels.last().map_or(0, Vec::len) > 1 {
            let prev = levels.last().expect("non-empty");
            let next = prev.chunks(2).map(|p| node(&p[0], &p[1])).collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.levels.last().expect("non-empty")[0]
    }

    /// Depth (siblings per proof).
    pub fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    /// Sibling path of leaf `index`, bottom-up.
    pub fn proof(&self, index: usize) -> Vec<B256> {
        let mut i = index;
        self.levels[..self.depth()]
            .iter()
            .map(|l| {
                let s = l[i ^ 1];
                i >>= 1;
                s
            })
            .collect()
    }
}

/// Root reached from `leaf` at `index` along `path` (what the contracts compute).
pub fn root_of(leaf: B256, index: usize, path: &[B256]) -> B256 {
    let mut n = leaf;
    let mut i = index;
    for s in path {
        n = if i & 1 == 0 { node(&n, s) } else { node(s, &n) };
        i >>= 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proof_verifies_and_a_tampered_leaf_fails() {
        for n in [1usize, 2, 3, 7, 8, 33] {
            let leaves: Vec<B256> = (0..n)
                .map(|i| {
                    leaf(
                        U256::from(1),
                        i,
                        Address::with_last_byte(i as u8),
                        U256::from(i * 10),
                    )
                })
                .collect();
            let t = MerkleTree::new(leaves.clone());
            assert_eq!(t.depth(), depth_for(n));
            for (i, l) in leaves.iter().enumerate() {
                assert_eq!(root_of(*l, i, &t.proof(i)), t.root(), "n={n} i={i}");
                let bad = leaf(
                    U256::from(1),
                    i,
                    Address::with_last_byte(i as u8),
                    U256::from(i * 10 + 1),
                );
                assert_ne!(root_of(bad, i, &t.proof(i)), t.root());
            }
        }
    }
}
