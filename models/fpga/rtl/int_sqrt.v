// Integer square root of the integer-polynomial (I-BERT) design's LayerNorm:
// root = floor(sqrt(v * 2^F)), v >= 1 (v = 0 is read as 1), by the pipelined digit-by-digit
// (restoring) method, one root bit per stage. Bit-exact with fpga::ops::baseline::isqrt
// (Newton's iteration converges to the same floor). Latency RB + 1, RB = ceil((YW + F) / 2).
module int_sqrt #(
    parameter F = 16,
    parameter YW = 30,          // input width (unsigned)
    parameter RB = (YW + F + 1) / 2
) (
    input clk,
    input [YW-1:0] v,
    output [RB-1:0] root
);
  localparam NW = 2 * RB;
  reg [NW-1:0] ns [0:RB];       // remaining radicand bits, top pair first
  reg [RB:0] rs [0:RB];         // partial remainder (<= 2 * root)
  reg [RB-1:0] qs [0:RB];       // root bits so far
  reg [RB+2:0] t, trial;
  wire [NW-1:0] vz = (v == 0) ? 1 : v;
  integer k;
  always @(posedge clk) begin
    ns[0] <= vz << F;
    rs[0] <= 0;
    qs[0] <= 0;
    for (k = 0; k < RB; k = k + 1) begin
      t = {rs[k], ns[k][NW-1:NW-2]};
      trial = {qs[k], 2'b01};
      if (t >= trial) begin
        rs[k+1] <= t - trial;
        qs[k+1] <= {qs[k][RB-2:0], 1'b1};
      end else begin
        rs[k+1] <= t[RB:0];
        qs[k+1] <= {qs[k][RB-2:0], 1'b0};
      end
      ns[k+1] <= ns[k] << 2;
    end
  end
  assign root = qs[RB];
endmodule
