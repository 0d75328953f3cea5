// Integer reciprocal of the integer-polynomial (I-BERT) design: q = floor(2^(2F) / y), y >= 1
// (y = 0 is read as 1), by a fully pipelined restoring divider, one quotient bit per stage.
// Bit-exact with fpga::ops::baseline::int_recip. Latency 2F + 2.
module int_div #(
    parameter F = 16,
    parameter YW = 30           // divisor width (unsigned)
) (
    input clk,
    input [YW-1:0] y,
    output [2*F:0] q
);
  localparam QB = 2 * F + 1;    // quotient bits: the dividend 2^(2F) has its one set bit on top
  reg [YW-1:0] rs [0:QB];       // partial remainder (< divisor)
  reg [YW-1:0] ds [0:QB];       // divisor, carried along
  reg [QB-1:0] qs [0:QB];       // quotient bits so far
  reg [YW:0] t;
  integer k;
  always @(posedge clk) begin
    rs[0] <= 0;
    ds[0] <= (y == 0) ? 1 : y;
    qs[0] <= 0;
    for (k = 0; k < QB; k = k + 1) begin
      t = {rs[k], k == 0 ? 1'b1 : 1'b0};
      if (t >= {1'b0, ds[k]}) begin
        rs[k+1] <= t - {1'b0, ds[k]};
        qs[k+1] <= {qs[k][QB-2:0], 1'b1};
      end else begin
        rs[k+1] <= t[YW-1:0];
        qs[k+1] <= {qs[k][QB-2:0], 1'b0};
      end
      ds[k+1] <= ds[k];
    end
  end
  assign q = qs[QB];
endmodule
