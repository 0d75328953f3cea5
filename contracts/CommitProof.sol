// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleClaims} from "./MerkleClaims.sol";

/// @title SettleFL Commit-with-Proof (validity-proof settlement).
/// @notice Each round the aggregator commits the new algebraic reward commitment `cNew`, the
/// round's reward total, the keccak claim root and a Groth16 proof over BN254 that the transition
/// cPrev → cNew adds non-negative rewards summing to the total; the proof's public inputs are
/// (cPrev, cNew, total, root mod r). The verifier uses the EIP-196/197 precompiles (0x06 ecAdd,
/// 0x07 ecMul, 0x08 pairing); the verifying key is set at construction as immutables. A round is
/// final when its commit is included. Claims use Merkle proofs against the last root.
contract CommitProof {
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

    struct Job {
        address owner;
        uint64 payStart;
        bytes32 pubHash;
        bytes32 salt;
        uint256 budget;
        uint256 commitment; // cPrev of the next round
        uint256 rounds;
        bytes32 root;
        uint256 paidOut;
    }

    // Verifying key (G1: x, y; G2: x_im, x_re, y_im, y_re as the pairing precompile expects).
    uint256 internal immutable ax;
    uint256 internal immutable ay;
    uint256 internal immutable bx1;
    uint256 internal immutable bx0;
    uint256 internal immutable by1;
    uint256 internal immutable by0;
    uint256 internal immutable gx1;
    uint256 internal immutable gx0;
    uint256 internal immutable gy1;
    uint256 internal immutable gy0;
    uint256 internal immutable dx1;
    uint256 internal immutable dx0;
    uint256 internal immutable dy1;
    uint256 internal immutable dy0;
    uint256 internal immutable ic0x;
    uint256 internal immutable ic0y;
    uint256 internal immutable ic1x;
    uint256 internal immutable ic1y;
    uint256 internal immutable ic2x;
    uint256 internal immutable ic2y;
    uint256 internal immutable ic3x;
    uint256 internal immutable ic3y;
    uint256 internal immutable ic4x;
    uint256 internal immutable ic4y;
    uint256 public immutable c0; // commitment to all-zero rewards
    uint256 public immutable payDelay;
    uint256 public immutable depth;

    uint256 public nextJob;
    mapping(uint256 => Job) public jobs;
    mapping(uint256 => mapping(address => uint256)) public paid;

    event Committed(uint256 indexed jobId, uint256 round, uint256 commitment, bytes32 root);

    /// @param vk alpha(2), beta(4), gamma(4), delta(4), ic0..ic4 (10) = 24 words.
    constructor(uint256[24] memory vk, uint256 c0_, uint256 payDelay_, uint256 depth_) {
        ax = vk[0];
        ay = vk[1];
        bx1 = vk[2];
        bx0 = vk[3];
        by1 = vk[4];
        by0 = vk[5];
        gx1 = vk[6];
        gx0 = vk[7];
        gy1 = vk[8];
        gy0 = vk[9];
        dx1 = vk[10];
        dx0 = vk[11];
        dy1 = vk[12];
        dy0 = vk[13];
        ic0x = vk[14];
        ic0y = vk[15];
        ic1x = vk[16];
        ic1y = vk[17];
        ic2x = vk[18];
        ic2y = vk[19];
        ic3x = vk[20];
        ic3y = vk[21];
        ic4x = vk[22];
        ic4y = vk[23];
        c0 = c0_;
        payDelay = payDelay_;
        depth = depth_;
    }

    /// @notice Opens a job; msg.value is the reward budget.
    function new_job(bytes32 pubHash, bytes32 salt) external payable returns (uint256 id) {
        id = nextJob++;
        Job storage j = jobs[id];
        j.owner = msg.sender;
        j.pubHash = pubHash;
        j.salt = salt;
        j.budget = msg.value;
        j.commitment = c0;
    }

    /// @notice Commits a round with its validity proof (A, B, C as 8 words, B in precompile order).
    function commit(uint256 jobId, uint256 cNew, uint256 total, bytes32 root, uint256[8] calldata proof) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0, "closed");
        uint256[4] memory inputs = [j.commitment, cNew, total, uint256(root) % R];
        require(verify(proof, inputs), "proof");
        j.commitment = cNew;
        j.root = root;
        emit Committed(jobId, j.rounds, cNew, root);
        j.rounds += 1;
    }

    /// @notice Closes the job (every committed round is already final) and starts the delay.
    function reward_init(uint256 jobId) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0 && j.rounds > 0, "state");
        j.payStart = uint64(block.timestamp + payDelay);
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
            MerkleClaims.rootOf(MerkleClaims.leaf(jobId, index, who, cum), index, paths, off, depth) == j.root,
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

    /// @notice Groth16 check e(−A, B)·e(α, β)·e(vk_x, γ)·e(C, δ) = 1 with
    /// vk_x = IC0 + Σ inputs[i]·IC(i+1).
    function verify(uint256[8] calldata p, uint256[4] memory inputs) public view returns (bool) {
        uint256[2] memory acc = [ic0x, ic0y];
        uint256[4] memory icx = [ic1x, ic2x, ic3x, ic4x];
        uint256[4] memory icy = [ic1y, ic2y, ic3y, ic4y];
        for (uint256 i = 0; i < 4; i++) {
            require(inputs[i] < R, "input");
            acc = ecAdd(acc, ecMul(icx[i], icy[i], inputs[i]));
        }
        uint256[24] memory pin;
        pin[0] = p[0];
        pin[1] = p[1] == 0 ? 0 : Q - (p[1] % Q);
        pin[2] = p[2];
        pin[3] = p[3];
        pin[4] = p[4];
        pin[5] = p[5];
        pin[6] = ax;
        pin[7] = ay;
        pin[8] = bx1;
        pin[9] = bx0;
        pin[10] = by1;
        pin[11] = by0;
        pin[12] = acc[0];
        pin[13] = acc[1];
        pin[14] = gx1;
        pin[15] = gx0;
        pin[16] = gy1;
        pin[17] = gy0;
        pin[18] = p[6];
        pin[19] = p[7];
        pin[20] = dx1;
        pin[21] = dx0;
        pin[22] = dy1;
        pin[23] = dy0;
        uint256[1] memory out;
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x08, pin, 768, out, 32)
        }
        return ok && out[0] == 1;
    }

    function ecMul(uint256 x, uint256 y, uint256 s) internal view returns (uint256[2] memory r) {
        uint256[3] memory inp = [x, y, s];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x07, inp, 96, r, 64)
        }
        require(ok, "ecMul");
    }

    function ecAdd(uint256[2] memory a, uint256[2] memory b) internal view returns (uint256[2] memory r) {
        uint256[4] memory inp = [a[0], a[1], b[0], b[1]];
        bool ok;
        assembly {
            ok := staticcall(gas(), 0x06, inp, 128, r, 64)
        }
        require(ok, "ecAdd");
    }
}
