// I-BERT integer GELU (Kim et al., ICML 2021), one lane of the separate `poly` GELU unit:
// y = x/2 * (1 + L(x/sqrt2)), L(u) = sgn(u) * (-P * (min(|u|, C) - C)^2 + 1).
// Bit-exact with fpga::ops::baseline::i_gelu. Latency 4.
module ibert_gelu #(
    parameter F = 16,
    parameter XW = 23,
    parameter [F:0] K = 0,      // konst(1/sqrt2, F)
    parameter [F:0] C = 0,      // konst(1.769, F)
    parameter [F-1:0] P = 0     // -konst(-0.2888, F)
) (
    input clk,
    input signed [XW-1:0] x,
    output reg signed [XW-1:0] y
);
  localparam H = 1 << (F - 1);
  // stage 1: xs = round(x / sqrt2)
  wire signed [XW+F+1:0] xm = x * $signed({1'b0, K}) + H;
  reg signed [XW-1:0] xs1, x1;
  always @(posedge clk) begin xs1 <= xm >>> F; x1 <= x; end
  // stage 2: c = min(|xs|, C) - C; c^2
  wire signed [XW-1:0] ax = xs1[XW-1] ? -xs1 : xs1;
  wire signed [F+2:0] c = ((ax > $signed({1'b0, C})) ? $signed({1'b0, C}) : ax) - $signed({1'b0, C});
  wire [2*F+4:0] cc = c * c + H;
  reg [F+2:0] c2;
  reg signed [1:0] sg2;
  reg signed [XW-1:0] x2;
  always @(posedge clk) begin
    c2 <= cc[2*F+4:F];
    sg2 <= (xs1 == 0) ? 0 : (xs1[XW-1] ? -1 : 1);
    x2 <= x1;
  end
  // stage 3: l = sgn * (round(-P c2) + 1)
  wire [2*F+3:0] pcu = P * c2;
  wire signed [2*F+5:0] pc = H - $signed({1'b0, pcu});
  wire signed [F+3:0] lm = (pc >>> F) + (1 << F);
  reg signed [F+3:0] l3;
  reg signed [XW-1:0] x3;
  always @(posedge clk) begin
    l3 <= (sg2 == 0) ? 0 : ((sg2 < 0) ? -lm : lm);
    x3 <= x2;
  end
  // stage 4: y = round(x * (1 + l) / 2)
  wire signed [XW+F+5:0] ym = x3 * ((1 << F) + l3) + (1 << F);
  always @(posedge clk) y <= ym >>> (F + 1);
endmodule
