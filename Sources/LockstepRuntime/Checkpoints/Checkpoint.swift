import Foundation
import LockstepData
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Checkpoints in the safetensors format.
///
/// Model tensors carry PyTorch `state_dict` names of the equivalent
/// `nn.Sequential` (`0.weight`, `1.running_mean`, `1.num_batches_tracked`…), so a
/// file loads into PyTorch with `load_state_dict`. Optimizer state goes in the same
/// file as flat tensors over the whole parameter arena, `optimizer.<name>`, and
/// the step counters in the metadata, so `--resume` continues exactly.
public enum Checkpoint {
    static let optimizerPrefix = "optimizer."

    /// Writes the checkpoint atomically. In a distributed job every rank must call it
    /// (sharded optimizer state is all-gathered first); rank 0 writes the file.
    public static func save(_ trainer: Trainer, to path: String, epoch: Int) throws {
        guard let (tensors, metadata) = try contents(trainer, epoch: epoch) else { return }
        do {
            try SafeTensors.write(entries: tensors, metadata: metadata, to: path)
        } catch {
            throw LockstepError("--save \(path): the checkpoint could not be written (\(error))")
        }
    }

    /// The tensors and metadata of a checkpoint of `trainer` now, on rank 0; nil on the
    /// other ranks. Every rank must call it: sharded optimizer state is all-gathered.
    static func contents(_ trainer: Trainer, epoch: Int) throws -> ([SafeTensors.Entry], [String: String])? {
        var tensors: [SafeTensors.Entry] = []
        for (name, slot, _) in trainer.model.stateTensors {
            tensors.append(.init(name: name, shape: slot.shape, values: Array(UnsafeBufferPointer(start: slot.pointer, count: slot.count))))
        }
        for (index, bn) in trainer.model.batchNormLayers {
            tensors.append(.init(name: "\(index).num_batches_tracked", shape: [], values: [Float(bn.batchesTracked)], dtype: .I64))
        }
        let p = trainer.model.parameterCount
        for name in trainer.optimizer.stateNames {
            var full = [Float](repeating: 0, count: p)
            let mine = trainer.optimizer.state(named: name)
            full.withUnsafeMutableBufferPointer { f in
                (f.baseAddress! + trainer.optimizerRange.lowerBound).update(from: mine.baseAddress!, count: mine.count)
            }
            if trainer.optimizerRange.count != p {
                let box = FloatBuffer(full)
                try trainer.collective("all-gather optimizer state") { try $0.allGather(box.pointer, count: p) }
                full = box.array
            }
            tensors.append(.init(name: optimizerPrefix + name, shape: [p], values: full))
        }
        guard trainer.rank == 0 else { return nil }
        let position = trainer.epochPosition
        var metadata: [String: String] = [
            "format": "pt",
            "lockstep.global_step": String(trainer.globalStep),
            "lockstep.epoch": String(epoch),
            "lockstep.epoch_index": String(position.epoch),
            "lockstep.epoch_samples": String(position.samples),
            "lockstep.world_size": String(trainer.worldSize),
            "lockstep.optimizer": trainer.config.optimizer.kind.rawValue,
            "lockstep.optimizer_step": String(trainer.optimizer.step),
            "lockstep.model_hash": try trainer.config.modelHash(inputFeatures: trainer.train.features),
        ]
        for (key, value) in try modelDescription(trainer) { metadata[key] = value }
        return (tensors, metadata)
    }

    /// What rebuilds the model and reads new data without the config: the layer list
    /// (`lockstep.layers`, JSON), BatchNorm's mode and the data transform (`lockstep.data`:
    /// sample shape, class names, standardization).
    static func modelDescription(_ trainer: Trainer) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let layers = try trainer.config.layerSpecs().map(\.description)
        var out = [
            "lockstep.layers": String(decoding: try encoder.encode(layers), as: UTF8.self),
            "lockstep.sync_batchnorm": String(trainer.config.syncBatchNorm),
        ]
        let transform = trainer.train.transform ?? DataTransform(shape: trainer.train.sampleShape, classes: trainer.train.classes)
        out["lockstep.data"] = String(decoding: try encoder.encode(transform), as: UTF8.self)
        return out
    }

    /// `--init-from`: sets the model's parameters and BatchNorm statistics from a
    /// safetensors file with PyTorch `state_dict` names; other tensors are ignored.
    public static func initialize(_ trainer: Trainer, from path: String) throws {
        let file = try SafeTensors.read(path: path, maximumBytes: largestFile(trainer))
        try loadModel(trainer.model, from: file, path: path)
    }

    /// `--resume`: model, optimizer state and step counters, as written by `save`.
    public static func resume(_ trainer: Trainer, from path: String) throws {
        let file = try SafeTensors.read(path: path, maximumBytes: largestFile(trainer))
        let hash = try trainer.config.modelHash(inputFeatures: trainer.train.features)
        if let saved = file.metadata["lockstep.model_hash"], saved != hash {
            throw LockstepError("--resume \(path): the checkpoint is of another model (hash \(saved), this config \(hash)); use the config it was trained with")
        }
        guard let stepText = file.metadata["lockstep.global_step"], let globalStep = Int(stepText),
              let kind = file.metadata["lockstep.optimizer"], let optStepText = file.metadata["lockstep.optimizer_step"],
              let optStep = Int(optStepText) else {
            throw LockstepError("--resume \(path): not a Lockstep checkpoint (no step counters in its metadata); use --init-from for weights only")
        }
        var resumeStep = globalStep
        // Written by another number of workers: the global batch differs, so the run goes
        // on at the same epoch and sample position (rounded up to a whole new batch), once
        // that position is checked against the step it was written at.
        if let w = file.metadata["lockstep.world_size"].flatMap(Int.init), w != trainer.worldSize {
            guard w >= 1, w <= 1 << 20, let e = file.metadata["lockstep.epoch_index"].flatMap(Int.init),
                  let samples = file.metadata["lockstep.epoch_samples"].flatMap(Int.init),
                  trainer.position(step: globalStep, worldSize: w).map({ $0 == (e, samples) }) ?? false else {
                throw LockstepError("--resume \(path): lockstep.global_step = \(stepText) does not match its epoch position or world size; the file is damaged")
            }
            resumeStep = trainer.step(epoch: e, samples: samples)
        }
        guard globalStep >= 0, resumeStep <= trainer.plannedSteps else {
            throw LockstepError("--resume \(path): lockstep.global_step = \(stepText) is outside 0...\(trainer.plannedSteps), the steps this run plans; the file is damaged or of a longer run")
        }
        guard optStep >= 0, optStep <= globalStep else {
            throw LockstepError("--resume \(path): lockstep.optimizer_step = \(optStepText) is outside 0...\(globalStep) (its global step); the file is damaged")
        }
        guard kind == trainer.config.optimizer.kind.rawValue else {
            throw LockstepError("--resume \(path): written with optimizer \(kind); pass --optimizer \(kind), or use --init-from to start a new optimizer")
        }
        try loadModel(trainer.model, from: file, path: path)
        let range = trainer.optimizerRange
        for name in trainer.optimizer.stateNames {
            guard let t = file.tensors[optimizerPrefix + name], t.values.count == trainer.model.parameterCount else {
                throw LockstepError("--resume \(path): optimizer state \(optimizerPrefix + name) is missing or has the wrong size")
            }
            let dest = trainer.optimizer.state(named: name)
            guard t.values.allSatisfy(\.isFinite) else {
                throw LockstepError("--resume \(path): optimizer state \(optimizerPrefix + name) holds NaN or infinite values; the file is damaged")
            }
            t.values.withUnsafeBufferPointer { src in
                dest.baseAddress!.update(from: src.baseAddress! + range.lowerBound, count: range.count)
            }
        }
        trainer.optimizer.restore(step: optStep)
        trainer.restore(globalStep: resumeStep)
    }

    /// The largest checkpoint of this model worth reading: every tensor and optimizer
    /// state as F64 (the widest dtype), plus room for the header and other tensors.
    static func largestFile(_ trainer: Trainer) -> Int {
        let tensors = trainer.model.stateTensors.reduce(0) { $0 + $1.1.count }
        return (tensors + trainer.model.parameterCount * trainer.optimizer.stateNames.count) * 8 + (64 << 20)
    }

    static func loadModel(_ model: Sequential, from file: SafeTensorsFile, path: String) throws {
        for (name, slot, _) in model.stateTensors {
            guard let t = file.tensors[name] else {
                throw LockstepError("\(path): tensor \(name) \(slot.shape) is missing; the file must hold the state_dict of the same model")
            }
            guard t.shape == slot.shape else {
                throw LockstepError("\(path): tensor \(name) has shape \(t.shape), the model needs \(slot.shape)")
            }
            guard t.values.allSatisfy(\.isFinite) else {
                throw LockstepError("\(path): tensor \(name) holds NaN or infinite values; the file is damaged")
            }
            t.values.withUnsafeBufferPointer { slot.pointer.update(from: $0.baseAddress!, count: slot.count) }
        }
        for (index, bn) in model.batchNormLayers {
            guard let t = file.tensors["\(index).num_batches_tracked"], let v = t.values.first else { continue }
            guard v.isFinite, v >= 0, v <= 0x1p52 else {
                throw LockstepError("\(path): \(index).num_batches_tracked = \(v) is not a count; the file is damaged")
            }
            bn.batchesTracked = Int(v)
        }
    }
}
