//! Minimal Solidity ABI encoding for the settlement contracts' calls and constructors
//! (head/tail layout of the Solidity ABI spec, static words and dynamic arrays of static words).

use revm::primitives::{Address, B256, Bytes, U256, keccak256};

/// One ABI argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// `uint256`.
    U(U256),
    /// `address`.
    A(Address),
    /// `bytes32`.
    H(B256),
    /// `bool`.
    Bool(bool),
    /// A static array `T[N]` of words, encoded in place.
    Fixed(Vec<Tok>),
    /// A dynamic array `T[]` of static words.
    Array(Vec<Tok>),
}

impl Tok {
    fn word(&self, out: &mut Vec<u8>) {
        match self {
            Tok::U(v) => out.extend_from_slice(&v.to_be_bytes::<32>()),
            Tok::A(a) => {
                out.extend_from_slice(&[0u8; 12]);
                out.extend_from_slice(a.as_slice());
            }
            Tok::H(h) => out.extend_from_slice(h.as_slice()),
            Tok::Bool(b) => out.extend_from_slice(&U256::from(u8::from(*b)).to_be_bytes::<32>()),
            Tok::Fixed(v) => v.iter().for_each(|t| t.word(out)),
            Tok::Array(_) => unreachable!("dynamic arrays are encoded in the tail"),
        }
    }

    fn head_words(&self) -> usize {
        match self {
            Tok::Fixed(v) => v.len(),
            _ => 1,
        }
    }
}

/// The 4-byte selector of function signature `sig` (e.g. `"commit(uint256,bytes32,bytes32)"`).
pub fn selector(sig: &str) -> [u8; 4] {
    let h = keccak256(sig.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// ABI-encodes `args` (no selector).
pub fn encode(args: &[Tok]) -> Vec<u8> {
    let head_len: usize = args.iter().map(Tok::head_words).sum::<usize>() * 32;
    let (mut head, mut tail) = (Vec::with_capacity(head_len), Vec::new());
    for a in args {
        if let Tok::Array(items) = a {
            head.extend_from_slice(&U256::from(head_len + tail.len()).to_be_bytes::<32>());
            tail.extend_from_slice(&U256::from(items.len()).to_be_bytes::<32>());
            items.iter().for_each(|t| t.word(&mut tail));
        } else {
            a.word(&mut head);
        }
    }
    head.extend_from_slice(&tail);
    head
}

/// Calldata of `sig(args…)`.
pub fn call(sig: &str, args: &[Tok]) -> Bytes {
    let mut data = selector(sig).to_vec();
    data.extend_from_slice(&encode(args));
    data.into()
}

/// `U(U256::from(v))`.
pub fn u(v: u64) -> Tok {
    Tok::U(U256::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_of_transfer_matches_erc20() {
        assert_eq!(
            selector("transfer(address,uint256)"),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
    }

    #[test]
    fn dynamic_array_goes_to_the_tail() {
        let e = encode(&[u(1), Tok::Array(vec![u(7), u(8)])]);
        assert_eq!(e.len(), 5 * 32);
        assert_eq!(U256::from_be_slice(&e[32..64]), U256::from(64));
        assert_eq!(U256::from_be_slice(&e[64..96]), U256::from(2));
        assert_eq!(U256::from_be_slice(&e[128..160]), U256::from(8));
    }
}
