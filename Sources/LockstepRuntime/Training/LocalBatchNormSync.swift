import LockstepCollectives
import LockstepKernels
import LockstepNN

/// `--local-bn` across workers: BatchNorm statistics are not synchronized, so the
/// running statistics drift apart between ranks; like PyTorch DDP's
/// `broadcast_buffers`, rank 0's copy is sent to everyone after each step.
final class LocalBatchNormSync: GradientSync {
    let inner: GradientSync
    let model: Sequential
    let queue: CollectiveQueue

    init(wrapping inner: GradientSync, model: Sequential, queue: CollectiveQueue) {
        self.inner = inner
        self.model = model
        self.queue = queue
    }

    func beginStep(learningRate: Float) { inner.beginStep(learningRate: learningRate) }
    func layerFinished(_ layer: Int) { inner.layerFinished(layer) }

    func finishStep() throws {
        try inner.finishStep()
        let slots = model.batchNormLayers.flatMap { $0.layer.bufferSlots }
        guard !slots.isEmpty else { return }
        var flat = [Float]()
        for s in slots { flat += UnsafeBufferPointer(start: s.pointer, count: s.count) }
        let box = FloatBuffer(flat)
        try queue.run("broadcast BatchNorm buffers") {
            try $0.broadcast(UnsafeMutableRawBufferPointer(start: box.pointer, count: box.count * 4), root: 0)
        }
        var offset = 0
        for s in slots {
            s.pointer.update(from: box.pointer + offset, count: s.count)
            offset += s.count
        }
    }
}
