// SIMD shrink/expand kernels (AssemblyScript → wasm with v128). They run on the memory of
// tfjs-backend-wasm itself (imported), so tensors are read and written in place: every pointer
// below is a byte offset into that heap. No allocation, no runtime: the JS side (simd/module.ts)
// walks the segments and hands over row pointers.

/** Σ of the 4 lanes of each argument, as one vector [Σa, Σb, Σc, Σd] (transpose-add). */
// @ts-ignore: decorator
@inline
function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * Σ of the 4 lanes in the order hsum4 adds them, (l0 + l2) + (l1 + l3): every shrink path reduces a
 * (token, rank row) accumulator the same way, so a token's result does not depend on whether its
 * segment put it in a 4-token block or the remainder (batch invariance: the conformance suite
 * compares a sequence's logits alone and in mixed batches bit for bit).
 */
// @ts-ignore: decorator
@inline
function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 2)) + (f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 3));
}

/**
 * Shrink for four tokens of one slot: out_t[r] = scale · Σ_h x_t[h] · a[r, h] for r < R.
 * Register block: 4 tokens × 2 rank rows (8 vector accumulators, 2 rows and a token's x live:
 * 11 registers). A 4 × 4 block (16 accumulators) outgrew the 15 vector registers V8 allocates on
 * x64 and spilled every step: 12 % slower on a cold-cache decode call (docs/perf-notes.md).
 */
export function shrink4(o0: usize, o1: usize, o2: usize, o3: usize, x0: usize, x1: usize, x2: usize, x3: usize, a: usize, H: i32, R: i32, scale: f32): void {
  const H4 = H & ~3;
  const rowBytes = <usize>H << 2;
  let r = 0;
  for (; r + 2 <= R; r += 2) {
    const ar0 = a + <usize>r * rowBytes;
    const ar1 = ar0 + rowBytes;
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    for (let h = 0; h < H4; h += 4) {
      const off = <usize>h << 2;
      const w0 = v128.load(ar0 + off);
      const w1 = v128.load(ar1 + off);
      const v0 = v128.load(x0 + off);
      const v1 = v128.load(x1 + off);
      const v2 = v128.load(x2 + off);
      const v3 = v128.load(x3 + off);
      c00 = f32x4.add(c00, f32x4.mul(v0, w0)); c01 = f32x4.add(c01, f32x4.mul(v0, w1));
      c10 = f32x4.add(c10, f32x4.mul(v1, w0)); c11 = f32x4.add(c11, f32x4.mul(v1, w1));
      c20 = f32x4.add(c20, f32x4.mul(v2, w0)); c21 = f32x4.add(c21, f32x4.mul(v2, w1));
      c30 = f32x4.add(c30, f32x4.mul(v3, w0)); c31 = f32x4.add(c31, f32x4.mul(v3, w1));
    }
    let s00 = hsum(c00), s01 = hsum(c01), s10 = hsum(c10), s11 = hsum(c11);
    let s20 = hsum(c20), s21 = hsum(c21), s30 = hsum(c30), s31 = hsum(c31);
    for (let h = H4; h < H; h++) {
      const off = <usize>h << 2;
      const w0 = load<f32>(ar0 + off);
      const w1 = load<f32>(ar1 + off);
      const v0 = load<f32>(x0 + off), v1 = load<f32>(x1 + off), v2 = load<f32>(x2 + off), v3 = load<f32>(x3 + off);
      s00 += v0 * w0; s01 += v0 * w1; s10 += v1 * w0; s11 += v1 * w1;
      s20 += v2 * w0; s21 += v2 * w1; s30 += v3 * w0; s31 += v3 * w1;
    }
    const ro = <usize>r << 2;
    store<f32>(o0 + ro, scale * s00); store<f32>(o0 + ro + 4, scale * s01);
    store<f32>(o1 + ro, scale * s10); store<f32>(o1 + ro + 4, scale * s11);
    store<f32>(o2 + ro, scale * s20); store<f32>(o2 + ro + 4, scale * s21);
    store<f32>(o3 + ro, scale * s30); store<f32>(o3 + ro + 4, scale * s31);
  }
  if (r < R) {
    shrink1(o0 + (<usize>r << 2), x0, a + <usize>r * rowBytes, H, 1, scale);
    shrink1(o1 + (<usize>r << 2), x1, a + <usize>r * rowBytes, H, 1, scale);
    shrink1(o2 + (<usize>r << 2), x2, a + <usize>r * rowBytes, H, 1, scale);
    shrink1(o3 + (<usize>r << 2), x3, a + <usize>r * rowBytes, H, 1, scale);
  }
}

/**
 * Shrink for one token (the segment-length remainder, and every decode step of one sequence), with
 * the same arithmetic per (token, row) as shrink4: one lane accumulator over H, hsum, the H % 4
 * tail, scale. Four rank rows at a time: one row's accumulator is a chain of dependent adds (4
 * cycles each), four independent chains keep the adder busy and share each load of x: 24 rows at
 * H = 576 (a q/k/v call at rank 8) 3.9 → 2.2 µs in cache, bit for bit the same (docs/perf-notes.md).
 */
export function shrink1(o: usize, x: usize, a: usize, H: i32, R: i32, scale: f32): void {
  const H4 = H & ~3;
  const rowBytes = <usize>H << 2;
  let r = 0;
  for (; r + 4 <= R; r += 4) {
    const ar0 = a + <usize>r * rowBytes;
    const ar1 = ar0 + rowBytes;
    const ar2 = ar1 + rowBytes;
    const ar3 = ar2 + rowBytes;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let h = 0; h < H4; h += 4) {
      const off = <usize>h << 2;
      const v = v128.load(x + off);
      c0 = f32x4.add(c0, f32x4.mul(v, v128.load(ar0 + off)));
      c1 = f32x4.add(c1, f32x4.mul(v, v128.load(ar1 + off)));
      c2 = f32x4.add(c2, f32x4.mul(v, v128.load(ar2 + off)));
      c3 = f32x4.add(c3, f32x4.mul(v, v128.load(ar3 + off)));
    }
    let s0 = hsum(c0), s1 = hsum(c1), s2 = hsum(c2), s3 = hsum(c3);
    for (let h = H4; h < H; h++) {
      const off = <usize>h << 2;
      const v = load<f32>(x + off);
      s0 += v * load<f32>(ar0 + off);
      s1 += v * load<f32>(ar1 + off);
      s2 += v * load<f32>(ar2 + off);
      s3 += v * load<f32>(ar3 + off);
    }
    const ro = <usize>r << 2;
    store<f32>(o + ro, scale * s0);
    store<f32>(o + ro + 4, scale * s1);
    store<f32>(o + ro + 8, scale * s2);
    store<f32>(o + ro + 12, scale * s3);
  }
  for (; r < R; r++) {
    const ar = a + <usize>r * rowBytes;
    let c = f32x4.splat(0);
    for (let h = 0; h < H4; h += 4) {
      const off = <usize>h << 2;
      c = f32x4.add(c, f32x4.mul(v128.load(x + off), v128.load(ar + off)));
    }
    let s = hsum(c);
    for (let h = H4; h < H; h++) s += load<f32>(x + (<usize>h << 2)) * load<f32>(ar + (<usize>h << 2));
    store<f32>(o + (<usize>r << 2), scale * s);
  }
}

/**
 * Expand for two tokens of one slot over output columns [o0, o1):
 * out_t[o] = (add ? src_t[o] : 0) + Σ_{r<K} b[o, r] · v_t[r]. B rows are R floats apart; only the
 * first K (the slot's true rank) are read: the rest is zero padding. B rows are contiguous over r, so four
 * outputs are done at once with one vector accumulator each and a transpose-add at the end; both
 * tokens share every B load. Reading y (src) here saves copying it into out first.
 */
export function expand2(out0: usize, out1: usize, src0: usize, src1: usize, add: i32, b: usize, R: i32, K: i32, o0: i32, o1: i32, v0: usize, v1: usize): void {
  const R4 = K & ~3;
  const rowBytes = <usize>R << 2;
  let o = o0;
  for (; o + 4 <= o1; o += 4) {
    const b0 = b + <usize>o * rowBytes;
    const b1 = b0 + rowBytes;
    const b2 = b1 + rowBytes;
    const b3 = b2 + rowBytes;
    let p0 = f32x4.splat(0), p1 = f32x4.splat(0), p2 = f32x4.splat(0), p3 = f32x4.splat(0);
    let q0 = f32x4.splat(0), q1 = f32x4.splat(0), q2 = f32x4.splat(0), q3 = f32x4.splat(0);
    for (let r = 0; r < R4; r += 4) {
      const off = <usize>r << 2;
      const va = v128.load(v0 + off);
      const vb = v128.load(v1 + off);
      const w0 = v128.load(b0 + off), w1 = v128.load(b1 + off), w2 = v128.load(b2 + off), w3 = v128.load(b3 + off);
      p0 = f32x4.add(p0, f32x4.mul(w0, va)); q0 = f32x4.add(q0, f32x4.mul(w0, vb));
      p1 = f32x4.add(p1, f32x4.mul(w1, va)); q1 = f32x4.add(q1, f32x4.mul(w1, vb));
      p2 = f32x4.add(p2, f32x4.mul(w2, va)); q2 = f32x4.add(q2, f32x4.mul(w2, vb));
      p3 = f32x4.add(p3, f32x4.mul(w3, va)); q3 = f32x4.add(q3, f32x4.mul(w3, vb));
    }
    let sp = hsum4(p0, p1, p2, p3);
    let sq = hsum4(q0, q1, q2, q3);
    for (let r = R4; r < K; r++) {
      const off = <usize>r << 2;
      const a = f32x4.splat(load<f32>(v0 + off));
      const c = f32x4.splat(load<f32>(v1 + off));
      const w = f32x4(load<f32>(b0 + off), load<f32>(b1 + off), load<f32>(b2 + off), load<f32>(b3 + off));
      sp = f32x4.add(sp, f32x4.mul(w, a));
      sq = f32x4.add(sq, f32x4.mul(w, c));
    }
    const at = <usize>o << 2;
    v128.store(out0 + at, add ? f32x4.add(v128.load(src0 + at), sp) : sp);
    v128.store(out1 + at, add ? f32x4.add(v128.load(src1 + at), sq) : sq);
  }
  for (; o < o1; o++) {
    const row = b + <usize>o * rowBytes;
    let sp: f32 = 0;
    let sq: f32 = 0;
    for (let r = 0; r < K; r++) {
      const w = load<f32>(row + (<usize>r << 2));
      sp += w * load<f32>(v0 + (<usize>r << 2));
      sq += w * load<f32>(v1 + (<usize>r << 2));
    }
    const at = <usize>o << 2;
    store<f32>(out0 + at, add ? load<f32>(src0 + at) + sp : sp);
    store<f32>(out1 + at, add ? load<f32>(src1 + at) + sq : sq);
  }
}

/** Expand for one token (the segment-length remainder). */
export function expand1(out0: usize, src0: usize, add: i32, b: usize, R: i32, K: i32, o0: i32, o1: i32, v0: usize): void {
  const R4 = K & ~3;
  const rowBytes = <usize>R << 2;
  let o = o0;
  for (; o + 4 <= o1; o += 4) {
    const b0 = b + <usize>o * rowBytes;
    const b1 = b0 + rowBytes;
    const b2 = b1 + rowBytes;
    const b3 = b2 + rowBytes;
    let p0 = f32x4.splat(0), p1 = f32x4.splat(0), p2 = f32x4.splat(0), p3 = f32x4.splat(0);
    for (let r = 0; r < R4; r += 4) {
      const off = <usize>r << 2;
      const va = v128.load(v0 + off);
      p0 = f32x4.add(p0, f32x4.mul(v128.load(b0 + off), va));
      p1 = f32x4.add(p1, f32x4.mul(v128.load(b1 + off), va));
      p2 = f32x4.add(p2, f32x4.mul(v128.load(b2 + off), va));
      p3 = f32x4.add(p3, f32x4.mul(v128.load(b3 + off), va));
    }
    let sp = hsum4(p0, p1, p2, p3);
    for (let r = R4; r < K; r++) {
      const off = <usize>r << 2;
      const w = f32x4(load<f32>(b0 + off), load<f32>(b1 + off), load<f32>(b2 + off), load<f32>(b3 + off));
      sp = f32x4.add(sp, f32x4.mul(w, f32x4.splat(load<f32>(v0 + off))));
    }
    const at = <usize>o << 2;
    v128.store(out0 + at, add ? f32x4.add(v128.load(src0 + at), sp) : sp);
  }
  for (; o < o1; o++) {
    const row = b + <usize>o * rowBytes;
    let sp: f32 = 0;
    for (let r = 0; r < K; r++) sp += load<f32>(row + (<usize>r << 2)) * load<f32>(v0 + (<usize>r << 2));
    const at = <usize>o << 2;
    store<f32>(out0 + at, add ? load<f32>(src0 + at) + sp : sp);
  }
}

/** memmove within the heap (the parts of y that no LoRA term writes). */
export function copy(dst: usize, src: usize, bytes: usize): void {
  memory.copy(dst, src, bytes);
}

/** Zeroes a range (shrink output rows of tokens without LoRA). */
export function fill0(dst: usize, bytes: usize): void {
  memory.fill(dst, 0, bytes);
}
