// Row reductions shared by every design's softmax and norm units: a maximum tree over N lane
// inputs (softmax pass 1) and an adder tree into a row accumulator (softmax pass 2 sum, norm
// mean/variance sums). `clear` starts a new row. Bit-exact with the Rust model
// fpga::rtl::quark::row_reduce (the row max and sum of ops::quark::softmax), co-simulated by
// rtl::tests::row_reduce_matches_rust.
// Pipeline: 1 cycle (tree) + 1 (accumulate).
module row_reduce #(
    parameter N = 16,    // lanes
    parameter W = 23,    // lane value width (signed)
    parameter AW = 37    // accumulator width (signed)
) (
    input clk,
    input clear,
    input [N*W-1:0] v,   // N lane values, lane i at bits [i*W +: W]
    output reg signed [W-1:0] vmax,
    output reg signed [AW-1:0] acc
);
  integer i;
  reg signed [W-1:0] m;
  reg signed [AW-1:0] s;
  reg signed [W-1:0] vmax1;
  reg signed [AW-1:0] s1;
  reg clear1;
  always @* begin
    m = v[W-1:0];
    s = 0;
    for (i = 0; i < N; i = i + 1) begin
      if ($signed(v[i*W+:W]) > m) m = v[i*W+:W];
      s = s + $signed(v[i*W+:W]);
    end
  end
  always @(posedge clk) begin
    vmax1 <= m;
    s1 <= s;
    clear1 <= clear;
    vmax <= (clear1 || vmax1 > vmax) ? vmax1 : vmax;
    acc <= (clear1 ? 0 : acc) + s1;
  end
endmodule
