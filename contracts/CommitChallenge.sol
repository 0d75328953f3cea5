// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleClaims} from "./MerkleClaims.sol";

/// @title SettleFL Commit-and-Challenge (optimistic settlement).
/// @notice Each round the aggregator commits two keccak Merkle roots: `root` over the participants'
/// cumulative rewards and `deltaRoot` over the round's rewards, backed by a bond. During the
/// challenge window any watcher may submit a fraud proof for one participant: the three leaves
/// (previous cumulative, delta, new cumulative) with their paths. The contract recomputes the
/// paths and slashes the bond when cumulative ≠ previous + delta. The aggregator then counters by
/// re-posting the bond and a corrected root for that round (later rounds are re-committed).
/// After the last window, reward_init fixes the final root and participants claim with proofs.
contract CommitChallenge {
    struct Job {
        address owner;
        uint64 payStart; // 0 until reward_init
        bool slashed; // a fraud proof succeeded and no counter yet
        bytes32 pubHash;
        bytes32 salt;
        uint256 budget;
        uint256 bond; // current bond, wei
        uint256 rounds; // committed rounds
        bytes32 finalRoot;
        uint256 paidOut;
    }

    struct Commitment {
        bytes32 root;
        bytes32 deltaRoot;
        uint64 at;
    }

    uint256 public immutable bondWei;
    uint256 public immutable challengeWindow;
    uint256 public immutable payDelay;
    uint256 public immutable depth;
    uint256 public nextJob;
    mapping(uint256 => Job) public jobs;
    mapping(uint256 => mapping(uint256 => Commitment)) public commits;
    mapping(uint256 => mapping(address => uint256)) public paid;

    event Committed(uint256 indexed jobId, uint256 round, bytes32 root);
    event Slashed(uint256 indexed jobId, uint256 round, address challenger, uint256 bond);
    event Countered(uint256 indexed jobId, uint256 round, bytes32 root);

    constructor(uint256 bondWei_, uint256 challengeWindow_, uint256 payDelay_, uint256 depth_) {
        bondWei = bondWei_;
        challengeWindow = challengeWindow_;
        payDelay = payDelay_;
        depth = depth_;
    }

    /// @notice Opens a job; msg.value = reward budget + bond.
    function new_job(bytes32 pubHash, bytes32 salt) external payable returns (uint256 id) {
        require(msg.value > bondWei, "value");
        id = nextJob++;
        Job storage j = jobs[id];
        j.owner = msg.sender;
        j.pubHash = pubHash;
        j.salt = salt;
        j.budget = msg.value - bondWei;
        j.bond = bondWei;
    }

    /// @notice Commits the next round's cumulative-reward root and delta root.
    function commit(uint256 jobId, bytes32 root, bytes32 deltaRoot) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(!j.slashed, "slashed");
        require(j.payStart == 0, "closed");
        uint256 r = j.rounds++;
        commits[jobId][r] = Commitment(root, deltaRoot, uint64(block.timestamp));
        emit Committed(jobId, r, root);
    }

    /// @notice Fraud proof for participant `index` (`who`) in `round`: `paths` holds the previous
    /// root's path (absent for round 0), the delta path and the new root's path, `depth` each.
    function challenge(
        uint256 jobId,
        uint256 round,
        uint256 index,
        address who,
        uint256 prevCum,
        uint256 delta,
        uint256 cum,
        bytes32[] calldata paths
    ) external {
        Job storage j = jobs[jobId];
        Commitment storage c = commits[jobId][round];
        require(round < j.rounds && !j.slashed, "round");
        require(block.timestamp < c.at + challengeWindow, "window");
        uint256 d = depth;
        uint256 off = 0;
        if (round > 0) {
            bytes32 prev = MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, prevCum), index, paths, 0, d);
            require(prev == commits[jobId][round - 1].root, "prev path");
            off = d;
        } else {
            require(prevCum == 0, "prev");
        }
        require(
            MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, delta), index, paths, off, d) == c.deltaRoot,
            "delta path"
        );
        require(MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, cum), index, paths, off + d, d) == c.root, "path");
        require(cum != prevCum + delta, "consistent");
        uint256 bond = j.bond;
        j.bond = 0;
        j.slashed = true;
        j.rounds = round; // the disputed round and everything after it must be re-committed
        emit Slashed(jobId, round, msg.sender, bond);
        (bool ok,) = payable(msg.sender).call{value: bond / 2}("");
        require(ok, "reward");
        j.budget += bond - bond / 2; // the other half goes to the participants' pool
    }

    /// @notice The aggregator's answer to a successful challenge: a fresh bond and a corrected
    /// commitment for the disputed round.
    function counter(uint256 jobId, bytes32 root, bytes32 deltaRoot) external payable {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.slashed, "not slashed");
        require(msg.value >= bondWei, "bond");
        j.bond = msg.value;
        j.slashed = false;
        uint256 r = j.rounds++;
        commits[jobId][r] = Commitment(root, deltaRoot, uint64(block.timestamp));
        emit Countered(jobId, r, root);
    }

    /// @notice Fixes the last round's root once its challenge window has passed; starts the delay.
    function reward_init(uint256 jobId) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0 && !j.slashed && j.rounds > 0, "state");
        Commitment storage c = commits[jobId][j.rounds - 1];
        require(block.timestamp >= c.at + challengeWindow, "window");
        j.finalRoot = c.root;
        j.payStart = uint64(block.timestamp + payDelay);
        (bool ok,) = payable(j.owner).call{value: j.bond}(""); // bond returned
        require(ok, "bond");
        j.bond = 0;
    }

    /// @notice A participant claims its cumulative reward with a Merkle proof.
    function reward_pay(uint256 jobId, uint256 index, uint256 cum, bytes32[] calldata path) external {
        _pay(jobId, index, msg.sender, cum, path, 0);
    }

    /// @notice Batched payouts: `paths` holds `depth` siblings per participant, in order.
    function reward_pay_multi(
        uint256 jobId,
        uint256[] calldata index,
        address[] calldata who,
        uint256[] calldata cum,
        bytes32[] calldata paths
    ) external {
        require(index.length == who.length && who.length == cum.length, "length");
        uint256 d = depth;
        for (uint256 i = 0; i < who.length; i++) {
            _pay(jobId, index[i], who[i], cum[i], paths, i * d);
        }
    }

    function _pay(uint256 jobId, uint256 index, address who, uint256 cum, bytes32[] calldata paths, uint256 off)
        internal
    {
        Job storage j = jobs[jobId];
        require(j.payStart != 0 && block.timestamp >= j.payStart, "delay");
        require(
            MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, cum), index, paths, off, depth) == j.finalRoot,
            "proof"
        );
        uint256 amount = cum - paid[jobId][who];
        if (amount == 0) return;
        paid[jobId][who] = cum;
        j.paidOut += amount;
        require(j.paidOut <= j.budget, "budget");
        (bool ok,) = payable(who).call{value: amount}("");
        require(ok, "transfer");
    }
}
