// Row-level 1/y (SQRT = 0) or 1/sqrt(y) (SQRT = 1) of the lookup-table and piecewise-linear
// designs: a leading-one detector gives s = lod(y) - F (made even for the root), the mantissa
// m = round(y / 2^s) in [1, 2) (or [1, 4)) addresses an approx_unit ROM of the function over the
// mantissa, and the result is shifted back by s (or s/2). Bit-exact with
// fpga::ops::baseline::{reciprocal, rsqrt} for the lut and pwl designs.
// Pipeline: 6 stages (LOD | normalise | approx_unit x3 | shift back).
module recip_unit #(
    parameter F = 16,
    parameter YW = 30,          // input width (unsigned, y >= 1)
    parameter SQRT = 0,
    parameter SHIFT = 8,        // approx_unit parameters for the mantissa table
    parameter AB = 8,
    parameter N = 256,
    parameter VW = 23,
    parameter LINEAR = 0,
    parameter OW = 2 * F + 3    // output width (signed)
) (
    input clk,
    input [YW-1:0] y,
    output reg signed [OW-1:0] r
);
  localparam MW = F + 3;        // mantissa width (signed, < 4 * 2^F)
  localparam integer ONE = 1 << F;
  localparam integer MTOP = (SQRT ? 4 : 2) * ONE - 1;
  // stage 1: leading one
  integer e, k;
  always @* begin
    e = 0;
    for (k = 0; k < YW; k = k + 1) if (y[k]) e = k;
  end
  reg [YW-1:0] y1;
  reg signed [7:0] s1;
  always @(posedge clk) begin
    y1 <= (y == 0) ? 1 : y;
    s1 <= (y == 0 ? 0 : e) - F - ((SQRT && (((y == 0 ? 0 : e) - F) & 1)) ? 1 : 0);
  end
  // stage 2: m = round(y / 2^s), clamped to the table's range
  reg [YW+F:0] mv;
  always @* begin
    if (s1 <= 0) mv = y1 << (-s1);
    else mv = (y1 + ({{YW{1'b0}}, 1'b1} << (s1 - 1))) >> s1;
    if (mv < ONE) mv = ONE;
    if (mv > MTOP) mv = MTOP;
  end
  reg signed [MW-1:0] m2;
  reg signed [7:0] sd [2:5];
  always @(posedge clk) begin
    m2 <= mv[MW-1:0];
    sd[2] <= s1;
    sd[3] <= sd[2];
    sd[4] <= sd[3];
    sd[5] <= sd[4];
  end
  // stages 3..5: the table
  wire signed [VW:0] t5;
  approx_unit #(.IW(MW), .LO_ABS(ONE), .LO_NEG(0), .SHIFT(SHIFT), .AB(AB), .N(N), .VW(VW), .LINEAR(LINEAR))
      table_u (.clk(clk), .x(m2), .y(t5));
  // stage 6: shift back by s (or s/2), rounding
  integer sh;
  reg signed [OW-1:0] tv;
  always @* begin
    sh = SQRT ? (sd[5] >>> 1) : sd[5];
    tv = t5;
    if (sh <= 0) tv = tv <<< (-sh);
    else tv = (tv + ({{(OW-1){1'b0}}, 1'b1} << (sh - 1))) >>> sh;
  end
  always @(posedge clk) r <= tv;
endmodule
