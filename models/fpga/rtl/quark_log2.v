// QUARK log2 unit (arXiv 2511.06767): a leading-one detector gives the exponent e, the
// mantissa 1+t is normalised by a rounding shift, log2(1+t) ~ C1*t + C2*t^2 (C2 < 0).
// Bit-exact with fpga::ops::quark::log2 for 0 <= y < 2^YW; y = 0 gives -64*2^F.
// Pipeline: 3 stages (detect+normalise | square | polynomial+exponent).
module quark_log2 #(
    parameter F = 16,          // fractional bits of y and l
    parameter YW = 32,         // width of y (unsigned)
    parameter LW = 24,         // width of l (signed)
    parameter [F:0] C1 = 0,    // konst(1.3465, F)
    parameter [F-1:0] C2 = 0   // -konst(1 - 1.3465, F) (magnitude of the negative t^2 term)
) (
    input clk,
    input [YW-1:0] y,
    output reg signed [LW-1:0] l
);
  // stage 1: leading one, normalised mantissa m in [1, 2) at F bits (saturated below 2)
  integer e0, i;
  reg [YW+F:0] m0;
  always @* begin
    e0 = -1;
    for (i = 0; i < YW; i = i + 1) if (y[i]) e0 = i;
    if (e0 <= F) m0 = {{(F + 1) {1'b0}}, y} << (F - e0);
    else m0 = ({{(F + 1) {1'b0}}, y} + (1 << (e0 - F - 1))) >> (e0 - F);
    if (m0 > (2 << F) - 1) m0 = (2 << F) - 1;
  end
  reg signed [7:0] e1;
  reg zero1, zero2;
  reg [F-1:0] t1;
  always @(posedge clk) begin
    e1 <= e0;
    zero1 <= (y == 0);
    t1 <= m0[F-1:0];
  end
  // stage 2: t^2
  wire [2*F:0] sq = t1 * t1 + (1 << (F - 1));
  reg signed [7:0] e2;
  reg [F-1:0] t2;
  reg [F:0] tt2;
  always @(posedge clk) begin
    e2 <= e1;
    zero2 <= zero1;
    t2 <= t1;
    tt2 <= sq[2*F:F];
  end
  // stage 3: l = (e - F)*2^F + round(C1*t) + round(-C2*t^2)
  wire [2*F+1:0] c1t = C1 * t2 + (1 << (F - 1));
  wire [2*F+1:0] c2t = C2 * tt2;
  wire signed [2*F+3:0] c2n = (1 << (F - 1)) - $signed({2'b0, c2t});
  wire signed [LW-1:0] ex = $signed(e2) - F;
  wire signed [LW-1:0] l2 = (ex <<< F) + $signed({2'b0, c1t[2*F+1:F]}) + (c2n >>> F);
  always @(posedge clk) l <= zero2 ? -(64 << F) : l2;
endmodule
