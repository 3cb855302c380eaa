;; The run body validator's lane for the archive's bytes, 16 at a time
;; (WebAssembly SIMD). Source of bytes-lane.wasm beside it: after an edit,
;; run `npm run build:wasm -w @rps/rps-gateway` (a unit test fails while the
;; two differ). Loaded by src/services/bytes-lane.ts; see docs/gateway.md,
;; "Run body: read once, checked in one pass".
;;
;; scan(len): memory[0, len) holds part of the archive's byte array as
;; JSON.stringify writes it, starting at an element. Returns how many bytes,
;; counted to just after the last comma, of the longest run of whole 16-byte
;; blocks in which every element is a plain byte: 1 to 3 digits and a comma,
;; no leading zero, at most 255. 0 when the first block already has anything
;; else (a space, ']', a bad element, or fewer than 16 bytes). What it does
;; not take, the validator's JavaScript reads as before, from that element on.
;;
;; Each block is checked against the block before it (bytes 1 to 3 back), so
;; a rule that spans a block boundary is still seen; the first block is
;; checked as if a comma came before it. A byte breaks the run when:
;;   - it is neither a digit nor a comma;
;;   - it is a comma after a comma (an empty element, or a comma first);
;;   - it is a digit after an element's first digit '0' (a leading zero);
;;   - it is an element's third digit and the element is over 255, or a
;;     digit follows it (four digits in a row).
;; Every rule looks back only, so each element before the last comma of a
;; clean run has been checked whole; a block holds at least four commas
;; once it is clean (no element is longer than four bytes).
(module
  (memory (export "memory") 1)
  (func (export "scan") (param $len i32) (result i32)
    (local $off i32)
    ;; this block, the one before, and the digit and comma lanes of both
    (local $v v128) (local $prev v128)
    (local $isD v128) (local $prevD v128) (local $isC v128) (local $prevC v128)
    ;; lanes 1 and 2 bytes back: digits, commas, bytes
    (local $d1 v128) (local $d2 v128) (local $c2 v128) (local $p1 v128) (local $p2 v128)
    ;; an element's third digit here
    (local $third v128)
    (local $comma v128) (local $zero v128) (local $two v128) (local $five v128)
    (local $digitBias v128) (local $digitLimit v128)
    (local.set $comma (i8x16.splat (i32.const 0x2c)))
    (local.set $zero (i8x16.splat (i32.const 0x30)))
    (local.set $two (i8x16.splat (i32.const 0x32)))
    (local.set $five (i8x16.splat (i32.const 0x35)))
    ;; '0'..'9' + 0x50 is -128..-119 as a signed byte: a digit is below -118
    ;; (one signed compare; WebAssembly has no unsigned one that is cheap on x64)
    (local.set $digitBias (i8x16.splat (i32.const 0x50)))
    (local.set $digitLimit (i8x16.splat (i32.const 0x8a)))
    ;; before the first block: commas
    (local.set $prev (local.get $comma))
    (local.set $prevC (v128.const i8x16 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1))
    (block $done
      (loop $block
        (br_if $done (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $len)))
        (local.set $v (v128.load (local.get $off)))
        (local.set $isD
          (i8x16.gt_s (local.get $digitLimit) (i8x16.add (local.get $v) (local.get $digitBias))))
        (local.set $isC (i8x16.eq (local.get $v) (local.get $comma)))
        ;; the lanes shifted by one and two bytes, the block before filling in
        (local.set $d1 (i8x16.shuffle 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
          (local.get $prevD) (local.get $isD)))
        (local.set $d2 (i8x16.shuffle 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
          (local.get $prevD) (local.get $isD)))
        (local.set $c2 (i8x16.shuffle 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
          (local.get $prevC) (local.get $isC)))
        (local.set $p1 (i8x16.shuffle 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
          (local.get $prev) (local.get $v)))
        (local.set $p2 (i8x16.shuffle 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
          (local.get $prev) (local.get $v)))
        (local.set $third (v128.and (local.get $isD) (v128.and (local.get $d1) (local.get $d2))))
        (br_if $done (v128.any_true
          (v128.or
            (v128.or
              ;; neither a digit nor a comma
              (v128.not (v128.or (local.get $isD) (local.get $isC)))
              ;; a comma after a comma
              (v128.and (local.get $isC)
                (i8x16.shuffle 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
                  (local.get $prevC) (local.get $isC))))
            (v128.or
              ;; a digit after a first digit '0' (p1 is '0', and a comma is before it)
              (v128.and (local.get $isD)
                (v128.and (local.get $c2) (i8x16.eq (local.get $p1) (local.get $zero))))
              ;; a third digit (p2 p1 v) with a digit before it, or over "255"
              (v128.and (local.get $third)
                (v128.or
                  (v128.or
                    (i8x16.shuffle 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
                      (local.get $prevD) (local.get $isD))
                    (i8x16.gt_s (local.get $p2) (local.get $two)))
                  (v128.and (i8x16.eq (local.get $p2) (local.get $two))
                    (v128.or (i8x16.gt_s (local.get $p1) (local.get $five))
                      (v128.and (i8x16.eq (local.get $p1) (local.get $five))
                        (i8x16.gt_s (local.get $v) (local.get $five)))))))))))
        (local.set $prev (local.get $v))
        (local.set $prevD (local.get $isD))
        (local.set $prevC (local.get $isC))
        (local.set $off (i32.add (local.get $off) (i32.const 16)))
        (br $block)))
    ;; just after the last comma of the last clean block (its highest comma lane)
    (if (result i32) (local.get $off)
      (then (i32.sub (i32.add (local.get $off) (i32.const 16))
        (i32.clz (i8x16.bitmask (local.get $prevC)))))
      (else (i32.const 0)))))
