;; WebAssembly SIMD kernels of the PIL-exact 8-bit resampler (src/io/resample.ts); assembled by
;; tools/build_wasm.ts into resample_wasm.ts. Integer arithmetic exactly as Pillow's C:
;; 22-bit fixed-point coefficients, int32 sums starting at 1 << 21, >> 22, clamped to 0..255.
(module
  (memory (export "memory") 1)

  ;; One resampling pass along the rows of `img` (rows of $rowLen bytes; row 0 is input row
  ;; $rowOffset): for output rows yy in [$y0, $y0 + $ny) and bytes i in [0, $outRowLen),
  ;;   out[(yy - y0) * outRowLen + i] = clip8(1 << 21 + Σ_y img[(bounds[2yy] − rowOffset + y) * rowLen + colOffset + i] * k[yy * ksize + y])
  ;; with y < bounds[2yy + 1]. 16 bytes at a time: reads and writes run up to 15 bytes past a
  ;; row (the caller pads the buffers; a row's overrun is rewritten by the next row).
  (func (export "pass")
    (param $img i32) (param $rowLen i32) (param $colOffset i32) (param $outRowLen i32) (param $rowOffset i32)
    (param $y0 i32) (param $ny i32) (param $ksize i32) (param $bounds i32) (param $k i32) (param $out i32)
    (local $yy i32) (local $yend i32) (local $ymin i32) (local $ymax i32) (local $kb i32)
    (local $i i32) (local $y i32) (local $p i32)
    (local $kv v128) (local $v v128) (local $lo v128) (local $hi v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $yend (i32.add (local.get $y0) (local.get $ny)))
    (local.set $yy (local.get $y0))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_s (local.get $yy) (local.get $yend)))
        (local.set $ymin (i32.sub (i32.load (i32.add (local.get $bounds) (i32.shl (local.get $yy) (i32.const 3)))) (local.get $rowOffset)))
        (local.set $ymax (i32.load offset=4 (i32.add (local.get $bounds) (i32.shl (local.get $yy) (i32.const 3)))))
        (local.set $kb (i32.add (local.get $k) (i32.shl (i32.mul (local.get $yy) (local.get $ksize)) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_s (local.get $i) (local.get $outRowLen)))
            (local.set $a0 (i32x4.splat (i32.const 2097152)))
            (local.set $a1 (local.get $a0))
            (local.set $a2 (local.get $a0))
            (local.set $a3 (local.get $a0))
            (local.set $p (i32.add (i32.add (local.get $img) (i32.mul (local.get $ymin) (local.get $rowLen)))
                                   (i32.add (local.get $colOffset) (local.get $i))))
            (local.set $y (i32.const 0))
            (block $taps_done
              (loop $taps
                (br_if $taps_done (i32.ge_s (local.get $y) (local.get $ymax)))
                (local.set $kv (i32x4.splat (i32.load (i32.add (local.get $kb) (i32.shl (local.get $y) (i32.const 2))))))
                (local.set $v (v128.load (local.get $p)))
                (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
                (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $kv))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $kv))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $kv))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $kv))))
                (local.set $p (i32.add (local.get $p) (local.get $rowLen)))
                (local.set $y (i32.add (local.get $y) (i32.const 1)))
                (br $taps)))
            ;; >> 22, then saturating narrows: int32 → int16 (exact here) → uint8 (the clamp to 0..255)
            (v128.store
              (i32.add (local.get $out) (i32.add (i32.mul (i32.sub (local.get $yy) (local.get $y0)) (local.get $outRowLen)) (local.get $i)))
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $cols)))
        (local.set $yy (i32.add (local.get $yy) (i32.const 1)))
        (br $rows))))

;; Transpose an image of $rows × $cols pixels of $c ≤ 4 bytes: dst[(x * rows + y) * c ..] =
  ;; src[(y * cols + x) * c ..]. Writes dst in order, 4 bytes a pixel: the extra byte is
  ;; rewritten by the next pixel (the caller pads both buffers by 4 bytes).
  (func (export "transpose") (param $src i32) (param $rows i32) (param $cols i32) (param $c i32) (param $dst i32)
    (local $y i32) (local $x i32) (local $s i32) (local $d i32) (local $sstride i32)
    (local.set $sstride (i32.mul (local.get $cols) (local.get $c)))
    (local.set $d (local.get $dst))
    (block $cols_done
      (loop $cols
        (br_if $cols_done (i32.ge_s (local.get $x) (local.get $cols)))
        (local.set $s (i32.add (local.get $src) (i32.mul (local.get $x) (local.get $c))))
        (local.set $y (i32.const 0))
        (block $rows_done
          (loop $rows
            (br_if $rows_done (i32.ge_s (local.get $y) (local.get $rows)))
            (i32.store (local.get $d) (i32.load (local.get $s)))
            (local.set $s (i32.add (local.get $s) (local.get $sstride)))
            (local.set $d (i32.add (local.get $d) (local.get $c)))
            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $rows)))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br $cols))))
)
