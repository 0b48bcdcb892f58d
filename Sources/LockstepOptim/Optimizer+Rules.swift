#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The update rules, one function each, over SIMD8 lanes.
///
/// Each mirrors torch.optim's `_single_tensor_*` function op for op in
/// float32: `add(x, alpha:)` and `lerp` are fused multiply-adds as in ATen's
/// vectorized CPU kernels; `addcmul` is `fma(value*a, b, self)` (the release
/// build of ATen contracts `self + value*a*b`, measured against torch 2.13);
/// `addcdiv` is `self + (value*a)/b`; scalars are rounded to Float where torch
/// hands them to a tensor op. With these choices most fixtures agree with
/// torch bit for bit. The last partial vector is loaded zero-padded and
/// stored partially (ATen does the same), so there is one code path.
enum Rules {
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>, _ n: Int) -> V {
        if n == 8 { return UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        var v = V()
        for j in 0..<n { v[j] = p[j] }
        return v
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> V {
        load(UnsafePointer(p), n)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n == 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self); return }
        for j in 0..<n { p[j] = v[j] }
    }

    /// ATen's `lerp(self, end, w)`: `self + w*(end-self)` for `w < 0.5`, else `end - (end-self)*(1-w)`, fused.
    @inline(__always) static func lerp(_ a: V, _ b: V, _ w: Float) -> V {
        w < 0.5 ? a.addingProduct(b - a, w) : b.addingProduct(b - a, -(1 - w))
    }

    /// torch's `grad.add(param, alpha=wd)` when `wd != 0`.
    @inline(__always) static func decayed(_ g: V, _ p: V, _ wd: Float) -> V {
        wd != 0 ? g.addingProduct(p, wd) : g
    }

    /// SGD: `p -= lr*g`.
    static func sgd(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>, _ count: Int,
                    lr: Float, weightDecay: Float) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            let p = load(param + i, n)
            let g = decayed(load(grad + i, n), p, weightDecay)
            store(p.addingProduct(g, -lr), param + i, n)
            i &+= 8
        }
    }

    /// SGD with momentum: `b = g` at t=1 else `b = μb + (1-dampening)g`; `p -= lr*b` (Nesterov: `p -= lr*(g + μb)`).
    static func sgdMomentum(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                            _ buf: UnsafeMutablePointer<Float>, _ count: Int,
                            lr: Float, s: Optimizer.Scalars, first: Bool, nesterov: Bool) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            var p = load(param + i, n)
            var g = decayed(load(grad + i, n), p, s.weightDecay)
            let b = first ? g : (load(buf + i, n) * s.momentum).addingProduct(g, s.oneMinusDampening)
            if nesterov { g = g.addingProduct(b, s.momentum) } else { g = b }
            p = p.addingProduct(g, -lr)
            store(b, buf + i, n)
            store(p, param + i, n)
            i &+= 8
        }
    }

    /// Adagrad: `s += g²`; `p -= clr*g/(sqrt(s)+eps)`.
    static func adagrad(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                        _ sum: UnsafeMutablePointer<Float>, _ count: Int, clr: Float, s: Optimizer.Scalars) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            let p = load(param + i, n)
            let g = decayed(load(grad + i, n), p, s.weightDecay)
            let acc = load(sum + i, n).addingProduct(g, g)
            let std = acc.squareRoot() + s.eps
            store(acc, sum + i, n)
            store(p + ((-clr) * g) / std, param + i, n)
            i &+= 8
        }
    }

    /// Adadelta: `v = ρv+(1-ρ)g²`; `d = sqrt(u+eps)/sqrt(v+eps)*g`; `u = ρu+(1-ρ)d²`; `p -= lr*d`.
    static func adadelta(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                         _ squareAvg: UnsafeMutablePointer<Float>, _ accDelta: UnsafeMutablePointer<Float>,
                         _ count: Int, lr: Float, s: Optimizer.Scalars) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            let p = load(param + i, n)
            let g = decayed(load(grad + i, n), p, s.weightDecay)
            let v = (load(squareAvg + i, n) * s.rho).addingProduct(s.oneMinusRho * g, g)
            let std = (v + s.eps).squareRoot()
            var u = load(accDelta + i, n)
            let delta = ((u + s.eps).squareRoot() / std) * g
            u = (u * s.rho).addingProduct(s.oneMinusRho * delta, delta)
            store(v, squareAvg + i, n)
            store(u, accDelta + i, n)
            store(p.addingProduct(delta, -lr), param + i, n)
            i &+= 8
        }
    }

    /// RMSprop: `v = αv+(1-α)g²`; `a = sqrt(v)+eps` (centered: `m = lerp(m, g, 1-α)`, `a = sqrt(v-m²)+eps`);
    /// momentum: `b = μb + g/a`, `p -= lr*b`; else `p -= lr*g/a`.
    static func rmsprop(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                        _ squareAvg: UnsafeMutablePointer<Float>, momentum buf: UnsafeMutablePointer<Float>?,
                        gradAvg: UnsafeMutablePointer<Float>?, _ count: Int, lr: Float, s: Optimizer.Scalars) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            var p = load(param + i, n)
            let g = decayed(load(grad + i, n), p, s.weightDecay)
            let v = (load(squareAvg + i, n) * s.alpha).addingProduct(s.oneMinusAlpha * g, g)
            store(v, squareAvg + i, n)
            var avg: V
            if let gradAvg {
                let m = lerp(load(gradAvg + i, n), g, s.oneMinusAlpha)
                store(m, gradAvg + i, n)
                avg = v.addingProduct(-1 * m, m).squareRoot()
            } else {
                avg = v.squareRoot()
            }
            avg = avg + s.eps
            if let buf {
                let b = load(buf + i, n) * s.momentum + g / avg
                store(b, buf + i, n)
                p = p.addingProduct(b, -lr)
            } else {
                p = p + ((-lr) * g) / avg
            }
            store(p, param + i, n)
            i &+= 8
        }
    }

    /// Adam / AdamW: (AdamW: `p *= 1 - lr*wd`); `m = lerp(m, g, 1-β1)`; `v = β2v + (1-β2)g²`;
    /// `p -= step_size * m / (sqrt(v)/sqrt(1-β2^t) + eps)` with `step_size = lr/(1-β1^t)`.
    static func adam(_ param: UnsafeMutablePointer<Float>, _ grad: UnsafePointer<Float>,
                     _ expAvg: UnsafeMutablePointer<Float>, _ expAvgSq: UnsafeMutablePointer<Float>, _ count: Int,
                     negStepSize: Float, biasCorrection2Sqrt: Float, decay: Float, weightDecay: Float,
                     s: Optimizer.Scalars) {
        var i = 0
        while i < count {
            let n = min(8, count &- i)
            var p = load(param + i, n)
            if decay != 1 { p = p * decay }
            let g = decayed(load(grad + i, n), p, weightDecay)
            let m = lerp(load(expAvg + i, n), g, s.oneMinusBeta1)
            let v = (load(expAvgSq + i, n) * s.beta2f).addingProduct(s.oneMinusBeta2 * g, g)
            let denom = v.squareRoot() / biasCorrection2Sqrt + s.eps
            store(m, expAvg + i, n)
            store(v, expAvgSq + i, n)
            store(p + (negStepSize * m) / denom, param + i, n)
            i &+= 8
        }
    }
}
