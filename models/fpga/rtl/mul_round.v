// The output multiplier of a separate softmax or norm lane: y = round(a * b / 2^F)
// (softmax: exp times the row reciprocal; LayerNorm: centred value times 1/sqrt(var)).
// Bit-exact with fpga::fixed::shr_round(a * b, F). Latency 1.
module mul_round #(
    parameter F = 16,
    parameter AW = 23,          // width of a (signed)
    parameter BW = 35,          // width of b (signed)
    parameter YW = 42           // width of y (signed)
) (
    input clk,
    input signed [AW-1:0] a,
    input signed [BW-1:0] b,
    output reg signed [YW-1:0] y
);
  wire signed [AW+BW-1:0] p = a * b + (1 << (F - 1));
  always @(posedge clk) y <= p >>> F;
endmodule
