// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title On-chain reward settlement (SettleFL's baseline): every round the job owner writes each
/// participant's reward into contract storage; payouts read the stored balances.
contract OnchainSettle {
    struct Job {
        address owner;
        uint64 payStart; // 0 until reward_init
        bytes32 pubHash;
        bytes32 salt;
        uint256 budget; // wei deposited with new_job
        uint256 assigned; // wei of rewards written so far
        uint256 rounds;
    }

    uint256 public immutable payDelay;
    uint256 public nextJob;
    mapping(uint256 => Job) public jobs;
    mapping(uint256 => mapping(address => uint256)) public balance;

    event Round(uint256 indexed jobId, uint256 round, uint256 written);

    constructor(uint256 payDelay_) {
        payDelay = payDelay_;
    }

    /// @notice Opens a job; msg.value is the reward budget.
    function new_job(bytes32 pubHash, bytes32 salt) external payable returns (uint256 id) {
        id = nextJob++;
        jobs[id] = Job(msg.sender, 0, pubHash, salt, msg.value, 0, 0);
    }

    /// @notice Writes one round's rewards (a batch of participants) into storage.
    function commit(uint256 jobId, address[] calldata who, uint256[] calldata amount, bool lastBatch) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0, "closed");
        require(who.length == amount.length, "length");
        uint256 sum;
        for (uint256 i = 0; i < who.length; i++) {
            balance[jobId][who[i]] += amount[i];
            sum += amount[i];
        }
        j.assigned += sum;
        require(j.assigned <= j.budget, "budget");
        if (lastBatch) {
            emit Round(jobId, j.rounds, who.length);
            j.rounds += 1;
        }
    }

    /// @notice Closes the job and starts the payout delay.
    function reward_init(uint256 jobId) external {
        Job storage j = jobs[jobId];
        require(msg.sender == j.owner, "owner");
        require(j.payStart == 0, "closed");
        j.payStart = uint64(block.timestamp + payDelay);
    }

    /// @notice A participant withdraws its balance.
    function reward_pay(uint256 jobId) external {
        _pay(jobId, msg.sender);
    }

    /// @notice The owner pays a batch of participants.
    function reward_pay_multi(uint256 jobId, address[] calldata who) external {
        require(msg.sender == jobs[jobId].owner, "owner");
        for (uint256 i = 0; i < who.length; i++) {
            _pay(jobId, who[i]);
        }
    }

    function _pay(uint256 jobId, address who) internal {
        Job storage j = jobs[jobId];
        require(j.payStart != 0 && block.timestamp >= j.payStart, "delay");
        uint256 amount = balance[jobId][who];
        if (amount == 0) return;
        balance[jobId][who] = 0;
        (bool ok,) = payable(who).call{value: amount}("");
        require(ok, "transfer");
    }
}
