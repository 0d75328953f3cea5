// One lane of the QUARK shared nonlinear circuit (arXiv 2511.06767): two exp2 units, one log2
// unit and one multiplier, configured per operator by `mode` (fpga::rtl::quark::Mode):
//   0 GELU   y = x * sigma(1.702x),  sigma(z) = exp2(t1 - log2(1 + exp2(-|z| log2e)))
//   1 EXP    y = exp2((x - a) log2e)              softmax pass 2 (a = row max)
//   2 SMOUT  y = exp2((x - a) log2e - b)          softmax pass 3 (b = log2 of the row sum)
//   3 RSQ    y = exp2(-(b >>> 1))                 LN mode, 1/sqrt(var) (b = log2 var)
//   4 NORM   y = x * a                            LN output, (x - mu) * 1/sqrt(var)
// x, a: datapath values at F fractional bits (XW bits); b: a log2 at F bits (LW bits).
// Bit-exact with fpga::rtl::quark::lane. Latency: 13 cycles, one input per cycle.
module quark_lane #(
    parameter F = 16,
    parameter XW = 23,
    parameter LW = 24,
    parameter [F:0] K1702 = 0,
    parameter [F:0] L2E = 0,
    parameter [F-1:0] A = 0,
    parameter [F-1:0] B = 0,
    parameter [F:0] C1 = 0,
    parameter [F-1:0] C2 = 0,
    parameter AW = F + F / 2 + 2  // width of a (holds a row max or 1/sqrt(var))
) (
    input clk,
    input [2:0] mode,
    input signed [XW-1:0] x,
    input signed [AW-1:0] a,
    input signed [LW-1:0] b,
    output reg signed [2*F+2:0] y
);
  localparam TW = F + 10;       // exp2 argument width
  localparam EW = F + F / 2 + 1;  // exp2B output width (left shifts up to F/2 for RSQ)
  localparam H = 1 << (F - 1);
  // shift registers for the side operands (index = cycles since input)
  reg [2:0] md[0:12];
  reg signed [XW-1:0] xd[0:12];
  reg signed [AW-1:0] ad[0:12];
  reg signed [LW-1:0] bd[0:12];
  integer j;
  always @(posedge clk) begin
    md[1] <= mode; xd[1] <= x; ad[1] <= a; bd[1] <= b;
    for (j = 2; j <= 12; j = j + 1) begin
      md[j] <= md[j-1]; xd[j] <= xd[j-1]; ad[j] <= ad[j-1]; bd[j] <= bd[j-1];
    end
  end
  // stage 1: z = round(1.702 x); d = x - a
  wire signed [XW+F+2:0] zm = x * $signed({1'b0, K1702}) + H;
  reg signed [XW+1:0] z1;
  reg signed [XW+1:0] d1;
  always @(posedge clk) begin
    z1 <= zm >>> F;
    d1 <= x - a;
  end
  // stage 2: u = round(op * log2e), op = -|z| (GELU) or d (softmax)
  wire signed [XW+1:0] op1 = (md[1] == 0) ? (z1[XW+1] ? z1 : -z1) : d1;
  wire signed [XW+F+3:0] um = op1 * $signed({1'b0, L2E}) + H;
  reg signed [TW-1:0] u2;
  reg zneg2;
  always @(posedge clk) begin
    u2 <= um >>> F;
    zneg2 <= z1[XW+1];
  end
  // cycles 3..5: e = exp2(u)
  wire [F:0] e5;
  quark_exp2 #(.F(F), .TW(TW), .LSH(0), .A(A), .B(B)) exp_a (.clk(clk), .t(u2), .y(e5));
  reg signed [TW-1:0] ud[3:12];
  reg znd[3:8];
  reg [F:0] ed[6:12];
  always @(posedge clk) begin
    ud[3] <= u2; znd[3] <= zneg2;
    for (j = 4; j <= 12; j = j + 1) ud[j] <= ud[j-1];
    for (j = 4; j <= 8; j = j + 1) znd[j] <= znd[j-1];
    ed[6] <= e5;
    for (j = 7; j <= 12; j = j + 1) ed[j] <= ed[j-1];
  end
  // cycles 6..8: ls = log2(1 + e)
  wire signed [LW-1:0] ls8;
  quark_log2 #(.F(F), .YW(F + 2), .LW(LW), .C1(C1), .C2(C2)) log_a (
      .clk(clk), .y({1'b0, e5} + (1 << F)), .l(ls8));
  // stage 9: exp2B argument
  reg signed [TW-1:0] t9;
  always @(posedge clk)
    case (md[8])
      0: t9 <= (znd[8] ? ud[8] : 0) - ls8;
      2: t9 <= ud[8] - bd[8];
      default: t9 <= -(bd[8] >>> 1);
    endcase
  // cycles 10..12: exp2B
  wire [EW-1:0] s12;
  quark_exp2 #(.F(F), .TW(TW), .LSH(F / 2), .A(A), .B(B)) exp_b (.clk(clk), .t(t9), .y(s12));
  // stage 13: multiplier (x * sigma or x * a) and the output select
  wire signed [AW-1:0] mop = (md[12] == 4) ? ad[12] : $signed({1'b0, s12});
  wire signed [XW+AW:0] pm = xd[12] * mop + H;
  always @(posedge clk)
    case (md[12])
      1: y <= $signed({1'b0, ed[12]});
      2, 3: y <= $signed({1'b0, s12});
      default: y <= pm >>> F;
    endcase
endmodule
