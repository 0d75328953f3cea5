// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Groth16 verifier over BN254 for up to 6 public inputs (EIP-196/197 precompiles).
/// @notice The verifying key is set at construction as immutables: alpha(2), beta(4), gamma(4),
/// delta(4), IC0..IC6 (14) = 28 words; `n` is the circuit's number of public inputs.
contract Groth16Verifier {
    uint256 internal constant Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    uint256 internal constant R = 21888242871839275222246405745257275088548364400416034343698204186575808495617;

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
    uint256 internal immutable ic5x;
    uint256 internal immutable ic5y;
    uint256 internal immutable ic6x;
    uint256 internal immutable ic6y;
    uint256 public immutable n;

    constructor(uint256[28] memory vk, uint256 n_) {
        require(n_ <= 6, "inputs");
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
        ic5x = vk[24];
        ic5y = vk[25];
        ic6x = vk[26];
        ic6y = vk[27];
        n = n_;
    }

    /// @notice Groth16 check e(−A, B)·e(α, β)·e(vk_x, γ)·e(C, δ) = 1 with
    /// vk_x = IC0 + Σ inputs[i]·IC(i+1).
    function verify(uint256[8] calldata p, uint256[] calldata inputs) external view returns (bool) {
        require(inputs.length == n, "arity");
        uint256[2] memory acc = [ic0x, ic0y];
        uint256[6] memory icx = [ic1x, ic2x, ic3x, ic4x, ic5x, ic6x];
        uint256[6] memory icy = [ic1y, ic2y, ic3y, ic4y, ic5y, ic6y];
        for (uint256 i = 0; i < inputs.length; i++) {
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

/// @title SettleFL redeem payouts: participants withdraw their rewards with a zero-knowledge proof
/// against the job's commitment C (Poseidon over the T×P reward matrix, the participant list with
/// each participant's payout address, and a salt).
/// @notice RedeemOneShot proves amount = Σₜ R[t][p] and pays it once; RedeemMultiShot proves
/// amount = Σ_{t₀ ≤ t < t₁} R[t][p] from the participant's last redeemed round t₀, so a
/// participant can withdraw as rounds are committed. Public inputs: (C, p, recipient, amount)
/// and (C, p, recipient, t₀, t₁, amount); the circuit binds `recipient` to p's listed address.
/// Shared by `SettleRedeem` (plain commitments) and `CommitProof` (commitments with a proof).
abstract contract RedeemPayouts {
    struct Job {
        address owner;
        uint64 payStart;
        uint256 commitment;
        uint256 rounds;
        uint256 budget;
        uint256 paidOut;
    }

    Groth16Verifier public immutable oneShot;
    Groth16Verifier public immutable multiShot;
    uint256 public immutable payDelay;
    uint256 public nextJob;
    mapping(uint256 => Job) public jobs;
    /// Rounds already redeemed per (job, participant index).
    mapping(uint256 => mapping(uint256 => uint256)) public redeemedTo;

    event Redeemed(uint256 indexed jobId, uint256 indexed participant, uint256 toRound, uint256 amount);

    constructor(Groth16Verifier oneShot_, Groth16Verifier multiShot_, uint256 payDelay_) {
        oneShot = oneShot_;
        multiShot = multiShot_;
        payDelay = payDelay_;
    }

    function _newJob() internal returns (uint256 id) {
        id = nextJob++;
        Job storage j = jobs[id];
        j.owner = msg.sender;
        j.budget = msg.value;
    }

    /// @notice Redeems participant p's whole reward at once (after the job is closed).
    function redeem_one_shot(uint256 jobId, uint256 p, address recipient, uint256 amount, uint256[8] calldata proof)
        external
    {
        Job storage j = jobs[jobId];
        require(redeemedTo[jobId][p] == 0, "redeemed");
        require(_redeemOpen(jobId, j, true), "delay");
        uint256[] memory inputs = new uint256[](4);
        inputs[0] = j.commitment;
        inputs[1] = p;
        inputs[2] = uint256(uint160(recipient));
        inputs[3] = amount;
        require(oneShot.verify(proof, inputs), "proof");
        _pay(jobId, j, p, j.rounds, recipient, amount);
    }

    /// @notice Redeems participant p's rewards of rounds [redeemedTo, toRound) of the committed ones.
    function redeem_multi_shot(
        uint256 jobId,
        uint256 p,
        address recipient,
        uint256 toRound,
        uint256 amount,
        uint256[8] calldata proof
    ) external {
        Job storage j = jobs[jobId];
        require(_redeemOpen(jobId, j, false), "delay");
        uint256 from = redeemedTo[jobId][p];
        require(from < toRound && toRound <= j.rounds, "range");
        uint256[] memory inputs = new uint256[](6);
        inputs[0] = _commitmentAt(jobId, j, toRound);
        inputs[1] = p;
        inputs[2] = uint256(uint160(recipient));
        inputs[3] = from;
        inputs[4] = toRound;
        inputs[5] = amount;
        require(multiShot.verify(proof, inputs), "proof");
        _pay(jobId, j, p, toRound, recipient, amount);
    }

    /// @notice The commitment a multi-shot redeem up to round `toRound` is proven against.
    function _commitmentAt(uint256, Job storage j, uint256) internal view virtual returns (uint256) {
        return j.commitment;
    }

    /// @notice Whether job `jobId` may be redeemed now: its whole reward (`whole`, one-shot) or
    /// its committed rounds piecewise (multi-shot).
    function _redeemOpen(uint256 jobId, Job storage j, bool whole) internal view virtual returns (bool);

    function _pay(uint256 jobId, Job storage j, uint256 p, uint256 toRound, address recipient, uint256 amount)
        internal
    {
        redeemedTo[jobId][p] = toRound;
        j.paidOut += amount;
        require(j.paidOut <= j.budget, "budget");
        emit Redeemed(jobId, p, toRound, amount);
        (bool ok,) = payable(recipient).call{value: amount}("");
        require(ok, "transfer");
    }
}

/// @title SettleFL redeem against plain (unproven) commitments: the owner posts the commitment and
/// redeeming opens after the pay delay.
contract SettleRedeem is RedeemPayouts {
    constructor(Groth16Verifier oneShot_, Groth16Verifier multiShot_, uint256 payDelay_)
        RedeemPayouts(oneShot_, multiShot_, payDelay_)
    {}

    /// @notice Opens a job; msg.value is the reward budget.
    function new_job() external payable returns (uint256 id) {
        id = _newJob();
    }

    /// @notice The owner posts the (final) commitment covering `rounds` rounds; redeeming opens
    /// after the pay delay.
    function commit(uint256 jobId, uint256 commitment, uint256 rounds) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(rounds >= j.rounds, "rounds");
        j.commitment = commitment;
        j.rounds = rounds;
        j.payStart = uint64(block.timestamp + payDelay);
    }

    function _redeemOpen(uint256, Job storage j, bool) internal view override returns (bool) {
        return j.payStart != 0 && block.timestamp >= j.payStart;
    }
}
