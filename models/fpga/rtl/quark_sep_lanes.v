// Lanes of the separate-unit QUARK design (`separate_units: true`): the QUARK lane with its
// mode tied to what one dedicated unit serves, so synthesis removes the rest.
//   quark_softmax_lane: sel = 0 EXP (pass 2), sel = 1 SMOUT (pass 3)
//   quark_gelu_lane:    GELU only
// Bit-exact with fpga::rtl::quark::lane in those modes. Latency 13.
module quark_softmax_lane #(
    parameter F = 16, parameter XW = 23, parameter LW = 24, parameter AW = F + F / 2 + 2,
    parameter [F:0] K1702 = 0, parameter [F:0] L2E = 0, parameter [F-1:0] A = 0,
    parameter [F-1:0] B = 0, parameter [F:0] C1 = 0, parameter [F-1:0] C2 = 0
) (
    input clk,
    input sel,
    input signed [XW-1:0] x,
    input signed [AW-1:0] a,
    input signed [LW-1:0] b,
    output signed [2*F+2:0] y
);
  quark_lane #(.F(F), .XW(XW), .LW(LW), .AW(AW), .K1702(K1702), .L2E(L2E), .A(A), .B(B),
      .C1(C1), .C2(C2)) lane (.clk(clk), .mode(sel ? 3'd2 : 3'd1), .x(x), .a(a), .b(b), .y(y));
endmodule

module quark_gelu_lane #(
    parameter F = 16, parameter XW = 23, parameter LW = 24, parameter AW = F + F / 2 + 2,
    parameter [F:0] K1702 = 0, parameter [F:0] L2E = 0, parameter [F-1:0] A = 0,
    parameter [F-1:0] B = 0, parameter [F:0] C1 = 0, parameter [F-1:0] C2 = 0
) (
    input clk,
    input signed [XW-1:0] x,
    output signed [2*F+2:0] y
);
  quark_lane #(.F(F), .XW(XW), .LW(LW), .AW(AW), .K1702(K1702), .L2E(L2E), .A(A), .B(B),
      .C1(C1), .C2(C2)) lane (.clk(clk), .mode(3'd0), .x(x), .a({AW{1'b0}}), .b({LW{1'b0}}),
      .y(y));
endmodule
