import Foundation
import LockstepData
import LockstepKernels
import LockstepNN

/// A model read back from any checkpoint a run wrote (one process, sharded or not):
/// its layers from the checkpoint's metadata (`lockstep.layers`) or a config, its
/// tensors, and the transform that reads new data as training read its files.
public final class TrainedModel {
    public let model: Sequential
    public let transform: DataTransform
    public let path: String

    /// `config`: the run's config, which supplies the layers and, for checkpoints written
    /// before the data transform was recorded, the shape and classes of its dataset.
    public init(checkpoint path: String, config: TrainingConfig? = nil) throws {
        self.path = path
        let file: SafeTensorsFile
        do {
            file = try SafeTensors.read(path: path)
        } catch let e as DataError {
            throw LockstepError("--checkpoint \(e.description)")
        }
        let decoder = JSONDecoder()
        var specs: [LayerSpec]
        if let config {
            specs = try config.layerSpecs()
        } else if let text = file.metadata["lockstep.layers"],
                  let names = try? decoder.decode([String].self, from: Data(text.utf8)) {
            do { specs = try names.map(LayerSpec.init(parsing:)) } catch {
                throw LockstepError("--checkpoint \(path): lockstep.layers holds a layer this version does not know (\(error))")
            }
        } else {
            throw LockstepError("--checkpoint \(path): the file does not record its layers (lockstep.layers); pass --config with the run's config")
        }
        if let text = file.metadata["lockstep.data"], let t = try? decoder.decode(DataTransform.self, from: Data(text.utf8)) {
            transform = t
        } else if let shape = config?.inputShape {
            transform = DataTransform(shape: shape.spatial ? [shape.channels, shape.height, shape.width] : [shape.features],
                                      classes: specs.last.flatMap { if case .linear(let n) = $0 { return n } else { return nil } } ?? 0)
        } else {
            throw LockstepError("--checkpoint \(path): the file does not record its data (lockstep.data); pass --config with the run's config")
        }
        let sync = file.metadata["lockstep.sync_batchnorm"].map { $0 == "true" } ?? (config?.syncBatchNorm ?? true)
        do {
            model = try Sequential(input: FeatureShape(dimensions: transform.shape), specs: specs, synchronizedBatchNorm: sync)
        } catch let e as ModelPlan.Error {
            throw LockstepError("--checkpoint \(path): \(e.description)")
        }
        guard model.outputFeatures == transform.classes else {
            throw LockstepError("--checkpoint \(path): the model ends with \(model.outputFeatures) outputs but its data has \(transform.classes) classes; pass the run's --config")
        }
        try Checkpoint.loadModel(model, from: file, path: path)
    }

    /// Class probabilities (softmax of the logits) of `count` rows of `images`, `batch` rows a forward.
    public func probabilities(_ images: [Float], count: Int, batch: Int, pool: ThreadPool) throws -> [Float] {
        let classes = transform.classes, f = model.inputFeatures
        precondition(images.count == count * f, "probabilities: \(images.count) values for \(count) rows of \(f)")
        var out = [Float](repeating: 0, count: count * classes)
        let context = StepContext(mode: .evaluation, pool: pool)
        try images.withUnsafeBufferPointer { x in
            try out.withUnsafeMutableBufferPointer { p in
                var start = 0
                while start < count {
                    let n = min(batch, count - start)
                    let logits = try model.forward(x.baseAddress! + start * f, batch: n, context: context)
                    for r in 0..<n {
                        let z = logits + r * classes, q = p.baseAddress! + (start + r) * classes
                        var top = z[0]
                        for j in 1..<classes { top = max(top, z[j]) }
                        var sum: Float = 0
                        for j in 0..<classes { q[j] = expf(z[j] - top); sum += q[j] }
                        for j in 0..<classes { q[j] /= sum }
                    }
                    start += n
                }
            }
        }
        return out
    }
}
