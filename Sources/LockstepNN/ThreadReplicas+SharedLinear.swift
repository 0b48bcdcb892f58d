import LockstepKernels

/// The shared Linear layers of `ThreadReplicas`: an execution mode of `Linear` in
/// which the replica threads compute one layer's forward and weight gradient
/// together for the whole batch, on the packed-panel SGEMM entry points.
extension ThreadReplicas {
    /// Inside `forwardBackward`: shared Linear layer `i` (the `l`-th shared one)'s forward for
    /// the whole batch, `yᵀ = W xᵀ`. After every replica's input is ready, the threads pack
    /// xᵀ once between them (each a share of its micro-panels), then take chunks of
    /// `ThreadReplicas.sharedChunkRows` output features as they come free, so a thread
    /// slowed down (a shared host) does less. Where a replica's rows do not start on a
    /// micro-panel (some last batches), thread `r` computes its own share of the features
    /// instead, packing xᵀ itself. After a last barrier each replica copies out its own
    /// rows, adding the bias. Per element these are the operations of the replica's own
    /// `Linear.forward`.
    func sharedForward(layer i: Int, _ l: Int, _ linear: Linear, thread r: Int, batch n: Int,
                       rows: Range<Int>, images: UnsafeMutablePointer<Float>) throws {
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let t = self.sharedTransposed.pointer
        let packed = self.packedInputs[l]!
        func part(_ s: Int) -> Range<Int> { self.rows(n, replica: s) }
        func input(_ s: Int) -> UnsafePointer<Float> {
            UnsafePointer(i == 0 ? images + part(s).lowerBound * inF : self.models[s].lastOutput(of: i - 1))
        }
        try self.barrier(replica: r)  // every replica's input of layer i is ready
        if i == 0 || (0..<self.count).allSatisfy({ part($0).lowerBound % packed.panelWidth == 0 }) {
            let panels = packed.panelCount
            for p in (panels * r / self.count)..<(panels * (r + 1) / self.count) {
                let j0 = p * packed.panelWidth
                let s = i == 0 ? 0 : (0..<self.count).last { part($0).lowerBound <= j0 }!
                packed.pack(transB: true, b: input(s) + (j0 - part(s).lowerBound) * inF, ldb: inF, panels: p..<(p + 1))
            }
            try self.barrier(replica: r)  // xᵀ packed
            let chunk = ThreadReplicas.sharedChunkRows
            while true {
                let lo = self.nextChunk[l].take() * chunk
                guard lo < out else { break }
                packed.multiply(transA: false, rows: lo..<min(out, lo + chunk), a: linear.weight, lda: inF,
                                alpha: 1, beta: 0, c: t, ldc: n)
            }
        } else {
            let features = self.sharedFeatures(out, thread: r)
            for s in 0..<self.count {
                Gemm.sgemm(transA: false, transB: true, m: features.count, n: part(s).count, k: inF, alpha: 1,
                           a: linear.weight + features.lowerBound * inF, lda: inF, b: input(s), ldb: inF,
                           beta: 0, c: t + features.lowerBound * n + part(s).lowerBound, ldc: n)
            }
        }
        try self.barrier(replica: r)
        Transpose.addingRowBias(t + rows.lowerBound, rows: out, cols: rows.count, ldt: n, bias: linear.bias,
                                   into: self.models[r].output(of: i, batch: rows.count))
    }

    /// Inside `forwardBackward`, after every replica's backward down to layer `i + 1`: each
    /// replica writes its own bias gradient (summed later with the others) and its input
    /// gradient (with the weights before this step's update); then the threads take chunks
    /// of `ThreadReplicas.sharedGradientChunkRows` output features as they come free and
    /// compute those weight-gradient rows over the whole batch, replica by replica
    /// (`C = dY_sᵀ X_s + C`, every product in one pass over C: `Gemm.sgemmSum`, each
    /// replica's input packed once, by its own thread, before the barrier), straight into
    /// model 0's gradient arena, and
    /// hand those weight rows to `weightRowsFinished` (the trainer updates them at once:
    /// they are final, no longer read this step and still in cache). Which thread takes which rows does not change the bits.
    func sharedBackward(layer i: Int, _ l: Int, _ linear: Linear, thread r: Int, batch n: Int,
                        rows: Range<Int>, images: UnsafeMutablePointer<Float>,
                        weightRowsFinished: (Range<Int>) -> Void) throws {
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let mine = self.models[r]
        let base = mine.parameterRanges[i].lowerBound
        let dy = mine.outputGradient(of: i)
        Reductions.columnSums(dy, rows: rows.count, cols: out, into: mine.gradients.pointer + base + linear.weightCount)
        func input(_ s: Int) -> UnsafePointer<Float> {
            i == 0 ? UnsafePointer(images + self.rows(n, replica: s).lowerBound * inF)
                   : UnsafePointer(self.models[s].lastOutput(of: i - 1))
        }
        let packedInputs = self.packedGradientInputs[l]
        if let packedInputs, !rows.isEmpty {
            packedInputs.pack(part: r, transB: false, b: input(r), ldb: inF, k: rows.count)
        }
        if i > 0 {
            Gemm.sgemm(transA: false, transB: false, m: rows.count, n: inF, k: out, alpha: 1,
                       a: dy, lda: out, b: linear.weight, ldb: inF, beta: 0, c: mine.outputGradient(of: i - 1), ldc: inF)
        }
        try self.barrier(replica: r)
        let dW = self.models[0].gradients.pointer + base
        let products = (0..<self.count).map { s in
            Gemm.Product(a: self.models[s].outputGradient(of: i), lda: out, b: input(s), ldb: inF,
                         k: self.rows(n, replica: s).count)
        }
        let counter = self.nextGradientChunk[l], chunk = ThreadReplicas.sharedGradientChunkRows
        Gemm.sgemmSum(transA: true, transB: false, m: out, n: inF, products: products, alpha: 1, beta: 0, c: dW, ldc: inF,
                      packedB: packedInputs, rows: {
                          let lo = counter.take() * chunk
                          return lo < out ? lo..<min(out, lo + chunk) : nil
                      },
                      finished: { rows in
                          weightRowsFinished((base + rows.lowerBound * inF)..<(base + rows.upperBound * inF))
                      })
    }

}
