// QUARK exp2 unit (arXiv 2511.06767): t = -k + r with r in (-1, 0],
// 2^r ~ A*r^2 + B*r + 1, then a rounding barrel shift by k.
// Bit-exact with fpga::ops::quark::exp2 for -(T-range) <= t <= LSH*2^F.
// Pipeline: 3 stages (reduce+square | polynomial | shift).
module quark_exp2 #(
    parameter F = 16,          // fractional bits of t and y
    parameter TW = 24,         // width of t (signed)
    parameter LSH = 0,         // largest left shift (t <= LSH in real units)
    parameter [F-1:0] A = 0,   // konst(0.1713, F)
    parameter [F-1:0] B = 0    // konst(0.6647, F)
) (
    input clk,
    input signed [TW-1:0] t,
    output reg [F+LSH:0] y
);
  localparam KW = TW - F + 2;  // width of k (signed)
  // stage 1: -t = k*2^F + rem, r = -rem; rem^2
  wire signed [TW:0] nt = -t;
  wire signed [KW-1:0] k0 = nt >>> F;
  wire [F-1:0] rem0 = nt[F-1:0];
  wire [2*F-1:0] sq0 = rem0 * rem0;
  wire [2*F:0] sqr0 = sq0 + (1 << (F - 1));
  reg signed [KW-1:0] k1;
  reg [F-1:0] rem1;
  reg [F:0] r2_1;
  always @(posedge clk) begin
    k1 <= k0;
    rem1 <= rem0;
    r2_1 <= sqr0[2*F:F];
  end
  // stage 2: p = round(A*r2) + round(-B*rem) + 1
  wire [2*F+1:0] ar = A * r2_1 + (1 << (F - 1));
  wire [2*F:0] br = B * rem1;
  wire signed [2*F+2:0] bneg = (1 << (F - 1)) - $signed({2'b0, br});
  wire signed [F+2:0] p1 = $signed({2'b0, ar[2*F+1:F]}) + (bneg >>> F) + (1 << F);
  reg signed [KW-1:0] k2;
  reg [F:0] p2;
  always @(posedge clk) begin
    k2 <= k1;
    p2 <= p1[F:0];
  end
  // stage 3: shift by k (right with round-half-up, or left by up to LSH)
  integer s;
  reg [2*F+LSH+2:0] v;
  always @* begin
    s = k2;
    v = {{(F + LSH + 2) {1'b0}}, p2};
    if (s > F + 1) v = 0;
    else if (s > 0) v = (v + (1 << (s - 1))) >> s;
    else v = v << (-s);
  end
  always @(posedge clk) y <= v[F+LSH:0];
endmodule
