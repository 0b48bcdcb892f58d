import Dispatch
import XCTest
import LockstepKernels
import LockstepOptim

/// Sharding, checkpoint restore and bookkeeping; numerics against torch are in `TorchReferenceTests`.
final class OptimizerTests: XCTestCase {
    /// Every kind with its non-default branches switched on.
    static let configs: [OptimizerConfig] = {
        var list = OptimizerKind.allCases.map { OptimizerConfig.defaults(for: $0) }
        var c = OptimizerConfig.defaults(for: .rmsprop)
        c.momentum = 0.9
        c.centered = true
        c.weightDecay = 0.01
        list.append(c)
        c = OptimizerConfig.defaults(for: .momentum)
        c.dampening = 0.2
        c.weightDecay = 0.1
        list.append(c)
        c = OptimizerConfig.defaults(for: .adagrad)
        c.lrDecay = 0.05
        c.initialAccumulatorValue = 0.1
        list.append(c)
        return list
    }()

    private func values(_ n: Int, _ seed: Int) -> [Float] {
        (0..<n).map { Float(sin(Double($0 * 7 + seed) * 0.31)) }
    }

    private func run(_ optimizer: Optimizer, _ params: inout [Float], offset: Int, count: Int, steps: Range<Int>) {
        for k in steps {
            let grads = values(params.count, 11 * k + 3)
            params.withUnsafeMutableBufferPointer { p in
                grads.withUnsafeBufferPointer { g in
                    optimizer.apply(parameters: p.baseAddress! + offset, gradients: g.baseAddress! + offset,
                                    learningRate: 0.01 * Float(k + 1))
                }
            }
        }
    }

    /// ZeRO-1: optimizers over the two halves of the arena give bit-identical results to one over the whole.
    func testTwoShardsEqualWhole() throws {
        for n in [0, 1, 7, 8, 9, 37, 64, 101] {
            for config in Self.configs {
                var whole = values(n, 1)
                var sharded = whole
                run(try Optimizer(config: config, count: n), &whole, offset: 0, count: n, steps: 0..<5)
                let half = n / 2
                let first = try Optimizer(config: config, count: half)
                let second = try Optimizer(config: config, count: n - half)
                run(first, &sharded, offset: 0, count: half, steps: 0..<5)
                run(second, &sharded, offset: half, count: n - half, steps: 0..<5)
                XCTAssertEqual(whole, sharded, "\(config.kind) n=\(n)")
                XCTAssertEqual(first.stateFloatCount + second.stateFloatCount,
                               try Optimizer(config: config, count: n).stateFloatCount)
            }
        }
    }

    /// Replicas on threads: summing two more gradient arenas inside the step gives the same
    /// bits as summing them first (in the same order), on one thread and on a pool,
    /// and leaves the sum in the first arena.
    func testSummingStepEqualsStepOnSummedGradients() throws {
        let pool = ThreadPool(threads: 2)
        for n in [1, 9, 4096 + 13, 70_001] {
            for config in Self.configs {
                var reference = values(n, 1), fused = reference
                let a = try Optimizer(config: config, count: n), b = try Optimizer(config: config, count: n)
                for k in 0..<3 {
                    let g0 = values(n, 5 * k + 2), g1 = values(n, 5 * k + 3), g2 = values(n, 5 * k + 4)
                    let summed = (0..<n).map { (g0[$0] + g1[$0]) + g2[$0] }
                    var first = g0
                    reference.withUnsafeMutableBufferPointer { p in
                        summed.withUnsafeBufferPointer { a.apply(parameters: p.baseAddress!, gradients: $0.baseAddress!, learningRate: 0.01) }
                    }
                    fused.withUnsafeMutableBufferPointer { p in
                        first.withUnsafeMutableBufferPointer { f in
                            g1.withUnsafeBufferPointer { o1 in
                                g2.withUnsafeBufferPointer { o2 in
                                    b.apply(parameters: p.baseAddress!, summing: f.baseAddress!, with: [o1.baseAddress!, o2.baseAddress!],
                                            learningRate: 0.01, pool: k == 1 ? pool : nil)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(first, summed, "\(config.kind) n=\(n): the first arena must hold the sum")
                }
                XCTAssertEqual(reference.map(\.bitPattern), fused.map(\.bitPattern), "\(config.kind) n=\(n)")
            }
        }
    }

    /// Copying the named state and `step` into a fresh optimizer continues the same trajectory bit for bit.
    func testRestoreContinuesTrajectory() throws {
        let n = 29
        for config in Self.configs {
            var reference = values(n, 5)
            let uninterrupted = try Optimizer(config: config, count: n)
            run(uninterrupted, &reference, offset: 0, count: n, steps: 0..<6)

            var resumed = values(n, 5)
            let before = try Optimizer(config: config, count: n)
            run(before, &resumed, offset: 0, count: n, steps: 0..<3)
            let after = try Optimizer(config: config, count: n)
            XCTAssertEqual(after.stateNames, before.stateNames)
            for name in before.stateNames {
                let source = before.state(named: name)
                let target = after.state(named: name)
                for i in 0..<n { target[i] = source[i] }
            }
            after.restore(step: before.step)
            run(after, &resumed, offset: 0, count: n, steps: 3..<6)
            XCTAssertEqual(reference, resumed, "\(config.kind)")
            XCTAssertEqual(after.step, 6)
        }
    }

    func testStateNamesAndSizes() throws {
        func names(_ c: OptimizerConfig) throws -> [String] { try Optimizer(config: c, count: 10).stateNames }
        XCTAssertEqual(try names(.defaults(for: .sgd)), [])
        XCTAssertEqual(try names(.defaults(for: .momentum)), ["momentum_buffer"])
        XCTAssertEqual(try names(.defaults(for: .nesterov)), ["momentum_buffer"])
        XCTAssertEqual(try names(.defaults(for: .adagrad)), ["sum"])
        XCTAssertEqual(try names(.defaults(for: .adadelta)), ["square_avg", "acc_delta"])
        XCTAssertEqual(try names(.defaults(for: .rmsprop)), ["square_avg"])
        XCTAssertEqual(try names(Self.configs[8]), ["square_avg", "momentum_buffer", "grad_avg"])
        XCTAssertEqual(try names(.defaults(for: .adam)), ["exp_avg", "exp_avg_sq"])
        XCTAssertEqual(try Optimizer(config: .defaults(for: .adamw), count: 10).stateFloatCount, 20)
        var adagrad = OptimizerConfig.defaults(for: .adagrad)
        adagrad.initialAccumulatorValue = 0.25
        let optimizer = try Optimizer(config: adagrad, count: 3)
        XCTAssertEqual(Array(optimizer.state(named: "sum")), [0.25, 0.25, 0.25])
    }

    func testDefaultsFollowTorch() {
        let adam = OptimizerConfig.defaults(for: .adam)
        XCTAssertEqual([adam.learningRate, adam.beta1, adam.beta2, adam.eps, adam.weightDecay], [1e-3, 0.9, 0.999, 1e-8, 0])
        XCTAssertEqual(OptimizerConfig.defaults(for: .adamw).weightDecay, 1e-2)
        XCTAssertEqual(OptimizerConfig.defaults(for: .adagrad).eps, 1e-10)
        XCTAssertEqual(OptimizerConfig.defaults(for: .adadelta).learningRate, 1.0)
        XCTAssertEqual(OptimizerConfig.defaults(for: .adadelta).eps, 1e-6)
        XCTAssertEqual(OptimizerConfig.defaults(for: .rmsprop).alpha, 0.99)
        XCTAssertEqual(OptimizerConfig.defaults(for: .nesterov).momentum, 0.9)
        for kind in OptimizerKind.allCases { XCTAssertNoThrow(try OptimizerConfig.defaults(for: kind).validate()) }
    }

    func testDecodingFillsKindDefaults() throws {
        let json = #"{"kind": "adamw", "learningRate": 0.5}"#
        let config = try JSONDecoder().decode(OptimizerConfig.self, from: Data(json.utf8))
        var expected = OptimizerConfig.defaults(for: .adamw)
        expected.learningRate = 0.5
        XCTAssertEqual(config, expected)
        let encoded = try JSONEncoder().encode(config)
        XCTAssertEqual(try JSONDecoder().decode(OptimizerConfig.self, from: encoded), config)
    }

    func testValidationNamesTheField() {
        func error(_ kind: OptimizerKind, _ change: (inout OptimizerConfig) -> Void) -> OptimizerConfigError? {
            var c = OptimizerConfig.defaults(for: kind)
            change(&c)
            do { try c.validate() } catch let e as OptimizerConfigError { return e } catch { return nil }
            return nil
        }
        let cases: [(OptimizerKind, String, (inout OptimizerConfig) -> Void)] = [
            (.sgd, "learningRate", { $0.learningRate = -0.1 }),
            (.sgd, "learningRate", { $0.learningRate = .nan }),
            (.sgd, "weightDecay", { $0.weightDecay = -1 }),
            (.momentum, "momentum", { $0.momentum = 1 }),
            (.momentum, "momentum", { $0.momentum = -0.5 }),
            (.momentum, "momentum", { $0.momentum = 0 }),
            (.nesterov, "momentum", { $0.momentum = 0 }),
            (.nesterov, "dampening", { $0.dampening = 0.1 }),
            (.adam, "beta1", { $0.beta1 = 1 }),
            (.adamw, "beta2", { $0.beta2 = -0.1 }),
            (.adam, "eps", { $0.eps = 0 }),
            (.adagrad, "eps", { $0.eps = -1e-10 }),
            (.adagrad, "lrDecay", { $0.lrDecay = -1 }),
            (.adadelta, "rho", { $0.rho = 1.5 }),
            (.rmsprop, "alpha", { $0.alpha = -0.01 }),
            (.rmsprop, "momentum", { $0.momentum = 1 }),
        ]
        for (kind, field, change) in cases {
            guard let e = error(kind, change) else { XCTFail("\(kind) \(field): accepted"); continue }
            XCTAssertEqual(e.field, field)
            XCTAssertTrue(e.description.hasPrefix("optimizer \(kind.rawValue): \(field)"), e.description)
            XCTAssertFalse(e.description.contains("\n"))
        }
        var bad = OptimizerConfig.defaults(for: .adam)
        bad.eps = 0
        XCTAssertThrowsError(try Optimizer(config: bad, count: 4))
    }

    func testWarmupAndSchedules() {
        let warm = LearningRatePolicy(schedule: .constant, warmupSteps: 4)
        XCTAssertEqual((0..<6).map { warm.learningRate(base: 0.4, step: $0) }, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
        let step = LearningRatePolicy(schedule: .step(stepSize: 3, gamma: 0.1), warmupSteps: 0)
        XCTAssertEqual(step.learningRate(base: 1, step: 2), 1)
        XCTAssertEqual(step.learningRate(base: 1, step: 3), 0.1, accuracy: 1e-7)
        XCTAssertEqual(step.learningRate(base: 1, step: 6), 0.01, accuracy: 1e-8)
        let cosine = LearningRatePolicy(schedule: .cosine(totalSteps: 12, minLR: 0), warmupSteps: 2)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 0), 0.5)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 2), 1)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 7), 0.5, accuracy: 1e-6)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 12), 0)
        XCTAssertEqual(cosine.learningRate(base: 1, step: 100), 0)
    }
}

/// Throughput of one step over a million parameters (printed, not asserted: the machine is shared).
final class OptimizerThroughputTests: XCTestCase {
    func testStepThroughput() throws {
        let n = 1 << 20
        var params = [Float](repeating: 0.5, count: n)
        let grads = (0..<n).map { Float($0 % 97) * 0.01 - 0.4 }
        for kind in OptimizerKind.allCases {
            let optimizer = try Optimizer(config: .defaults(for: kind), count: n)
            let steps = 20
            let start = DispatchTime.now().uptimeNanoseconds
            params.withUnsafeMutableBufferPointer { p in
                grads.withUnsafeBufferPointer { g in
                    for _ in 0..<steps { optimizer.apply(parameters: p.baseAddress!, gradients: g.baseAddress!, learningRate: 1e-3) }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print("optimizer \(kind.rawValue): \(String(format: "%.2f", Double(n * steps) / seconds / 1e9)) G params/s")
            XCTAssertTrue(params.allSatisfy(\.isFinite), "\(kind)")
        }
    }
}
