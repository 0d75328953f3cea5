// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Keccak Merkle tree of (index, account, amount) leaves shared by the settlement contracts.
/// @notice Leaf = keccak256(abi.encodePacked(jobId, index, account, amount)); the tree is padded
/// with zero leaves to a power of two; a node is keccak256(left ‖ right) and the path is read
/// bottom-up with the leaf index choosing the side at each level.
library MerkleClaims {
    function leaf(uint256 jobId, uint256 index, address account, uint256 amount)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(jobId, index, account, amount));
    }

    /// @return the root obtained by hashing `node` at position `index` up the sibling `path`.
    function rootOf(bytes32 node, uint256 index, bytes32[] calldata path, uint256 from, uint256 depth)
        internal
        pure
        returns (bytes32)
    {
        for (uint256 i = 0; i < depth; i++) {
            bytes32 sib = path[from + i];
            node = (index & 1) == 0
                ? keccak256(abi.encodePacked(node, sib))
                : keccak256(abi.encodePacked(sib, node));
            index >>= 1;
        }
        return node;
    }
}
