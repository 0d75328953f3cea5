// ROM-based function unit of the separate lookup-table (`lut`) and piecewise-linear (`pwl`)
// designs: x is clamped to [LO, LO + N*2^SHIFT - 1], the top bits address the ROM, and
//   LINEAR = 0: y = base[i]                                   (one entry per 2^SHIFT inputs)
//   LINEAR = 1: y = base[i] + round(delta[i] * off / 2^SHIFT)  (chord segments, off = low bits)
// The ROM contents (rom_base.hex, rom_delta.hex) are written by fpga::rtl::baseline from the
// table the Rust operator evaluates. Bit-exact with fpga::ops::baseline's Approx::eval.
// Pipeline: 3 stages (clamp + address | ROM read | multiply-add).
module approx_unit #(
    parameter IW = 9,           // input width (signed)
    parameter integer LO_ABS = 128,  // |LO| (yosys -chparam takes no negative values)
    parameter LO_NEG = 1,           // LO < 0
    parameter SHIFT = 0,        // input bits per ROM entry
    parameter AB = 8,           // address bits
    parameter N = 256,          // ROM entries (<= 2^AB)
    parameter VW = 23,          // width of a ROM value (signed)
    parameter LINEAR = 0
) (
    input clk,
    input signed [IW-1:0] x,
    output reg signed [VW:0] y
);
  localparam integer LO = LO_NEG ? -LO_ABS : LO_ABS;
  localparam integer TOP = LO + N * (1 << SHIFT) - 1;
  localparam SW = SHIFT > 0 ? SHIFT : 1;
  reg signed [VW-1:0] base_rom [0:N-1];
  reg signed [VW-1:0] delta_rom [0:N-1];
  initial begin
    $readmemh("rom_base.hex", base_rom);
    if (LINEAR) $readmemh("rom_delta.hex", delta_rom);
  end
  // stage 1: clamp, subtract LO, split into address and offset
  integer xc;
  always @* begin
    xc = x;
    if (xc < LO) xc = LO;
    if (xc > TOP) xc = TOP;
    xc = xc - LO;
  end
  reg [AB-1:0] i1;
  reg [SW-1:0] off1;
  always @(posedge clk) begin
    i1 <= xc >> SHIFT;
    off1 <= SHIFT > 0 ? xc[SW-1:0] : 0;
  end
  // stage 2: ROM read
  reg signed [VW-1:0] b2, d2;
  reg [SW-1:0] off2;
  always @(posedge clk) begin
    b2 <= base_rom[i1];
    d2 <= LINEAR ? delta_rom[i1] : 0;
    off2 <= off1;
  end
  // stage 3: base + round(delta * off / 2^SHIFT)
  wire signed [VW+SW+1:0] dm = d2 * $signed({1'b0, off2}) + (SHIFT > 0 ? (1 << (SW - 1)) : 0);
  always @(posedge clk) y <= LINEAR ? b2 + (dm >>> SHIFT) : b2;
endmodule
