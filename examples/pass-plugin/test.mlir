// The plugin's own check: two scales become one (0.5 * 0.25 = 0.125).
// CHECK-LABEL: func.func @twice
// CHECK-NEXT: %[[S:.*]] = kiln.scale %arg0, 1.250000e-01
// CHECK-NEXT: return %[[S]]
func.func @twice(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = kiln.scale %x, 0.5 : tensor<2x3xf32>
  %b = kiln.scale %a, 0.25 : tensor<2x3xf32>
  return %b : tensor<2x3xf32>
}
