// I-BERT integer exp (Kim et al., ICML 2021) for x <= 0, one lane of the separate `poly` softmax
// unit: z = floor(-x / ln2) (exact multiply-by-reciprocal M >> S), p = x + z ln2,
// L(p) = Q (p + 1.353)^2 + 0.344, y = L(p) >> z (rounding).
// Bit-exact with fpga::ops::baseline::i_exp on x <= 0. Latency 4.
module ibert_exp #(
    parameter F = 16,
    parameter XW = 23,
    parameter [F:0] LN2 = 0,    // konst(ln2, F)
    parameter MW = 24,          // width of M
    parameter [MW-1:0] M = 0,   // ceil(2^S / LN2)
    parameter S = 40,
    parameter [F:0] D = 0,      // konst(1.353, F)
    parameter [F-1:0] Q = 0,    // konst(0.3585, F)
    parameter [F-1:0] E = 0     // konst(0.344, F)
) (
    input clk,
    input signed [XW-1:0] x,
    output reg [F+1:0] y
);
  localparam H = 1 << (F - 1);
  // stage 1: z = floor(-x / ln2)
  wire [XW-1:0] nx = -x;
  wire [XW+MW-1:0] zm = nx * M;
  reg [XW-1:0] z1;
  reg signed [XW-1:0] x1;
  always @(posedge clk) begin z1 <= zm >> S; x1 <= x; end
  // stage 2: pb = x + z ln2 + 1.353; pb^2
  wire signed [F+2:0] pb = x1 + z1 * LN2 + D;
  wire [2*F+4:0] sq = pb * pb + H;
  reg [F+2:0] s2;
  reg [XW-1:0] z2;
  always @(posedge clk) begin s2 <= sq[2*F+4:F]; z2 <= z1; end
  // stage 3: l = round(Q s) + E
  wire [2*F+3:0] qs = Q * s2 + H;
  reg [F+1:0] l3;
  reg [XW-1:0] z3;
  always @(posedge clk) begin l3 <= qs[2*F+3:F] + E; z3 <= z2; end
  // stage 4: y = round(l / 2^z)
  integer s;
  reg [F+2:0] v;
  always @* begin
    s = (z3 > F + 2) ? F + 2 : z3;
    v = {1'b0, l3};
    v = (s == 0) ? v : (v + (1 << (s - 1))) >> s;
  end
  always @(posedge clk) y <= v[F+1:0];
endmodule
