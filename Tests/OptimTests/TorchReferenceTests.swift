import Foundation
import XCTest
import LockstepOptim

/// Trajectories against torch.optim.
///
/// The fixtures in `Fixtures/` come from `tools/gen_optim_fixtures.py` (torch
/// 2.13.0+cpu, `foreach=False`): 37 parameters, 6 steps, gradients recorded
/// per step. Parameters after every step, the learning rate of every step and
/// the final state must agree within `|a-b| <= atol + rtol*|b|`.
final class TorchReferenceTests: XCTestCase {
    static let rtol: Float = 1e-5
    static let atol: Float = 1e-7

    func testAllFixturesMatchTorch() throws {
        let fixtures = try loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.count, 17, "fixtures missing; run tools/gen_optim_fixtures.py")
        let kinds = Set(fixtures.map(\.config.kind))
        XCTAssertEqual(kinds, Set(OptimizerKind.allCases), "every optimizer kind needs a torch fixture")
        for fixture in fixtures { try check(fixture) }
    }

    private func check(_ fixture: Fixture) throws {
        let optimizer = try Optimizer(config: fixture.config, count: fixture.initial.count)
        let policy = fixture.schedule.policy
        var params = fixture.initial
        var worst = Difference()
        for (index, step) in fixture.steps.enumerated() {
            let lr = policy.learningRate(base: fixture.config.learningRate, step: index)
            assertClose([lr], [step.lr], "\(fixture.name) lr at step \(index)")
            params.withUnsafeMutableBufferPointer { p in
                step.grad.withUnsafeBufferPointer { g in
                    optimizer.apply(parameters: p.baseAddress!, gradients: g.baseAddress!, learningRate: lr)
                }
            }
            worst.merge(assertClose(params, step.params, "\(fixture.name) params after step \(index + 1)"))
        }
        XCTAssertEqual(optimizer.step, fixture.steps.count)
        XCTAssertEqual(Set(optimizer.stateNames), Set(fixture.state.keys), "\(fixture.name) state names")
        for name in optimizer.stateNames {
            guard let expected = fixture.state[name] else { continue }
            worst.merge(assertClose(Array(optimizer.state(named: name)), expected, "\(fixture.name) state \(name)"))
        }
        print("torch \(fixture.name): max |diff| \(worst.absolute), max rel diff \(worst.relative)")
    }

    struct Difference {
        var absolute: Float = 0
        var relative: Float = 0
        mutating func merge(_ other: Difference) {
            absolute = max(absolute, other.absolute)
            relative = max(relative, other.relative)
        }
    }

    @discardableResult
    private func assertClose(_ actual: [Float], _ expected: [Float], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) -> Difference {
        XCTAssertEqual(actual.count, expected.count, "\(what): length", file: file, line: line)
        var d = Difference()
        var worstIndex = -1
        var worstExcess: Float = 0
        for i in 0..<min(actual.count, expected.count) {
            let diff = abs(actual[i] - expected[i])
            d.absolute = max(d.absolute, diff)
            if expected[i] != 0 { d.relative = max(d.relative, diff / abs(expected[i])) }
            let excess = diff - (Self.atol + Self.rtol * abs(expected[i]))
            if !(excess <= worstExcess) { worstExcess = excess; worstIndex = i }
        }
        if worstIndex >= 0 {
            XCTFail("\(what): element \(worstIndex) is \(actual[worstIndex]), torch \(expected[worstIndex]) "
                    + "(max |diff| \(d.absolute))", file: file, line: line)
        }
        return d
    }

    // MARK: Fixture format

    struct Fixture: Decodable {
        struct Step: Decodable { var lr: Float; var grad: [Float]; var params: [Float] }
        struct Schedule: Decodable {
            var kind: String
            var stepSize: Int?
            var gamma: Float?
            var totalSteps: Int?
            var minLR: Float?
            var policy: LearningRatePolicy {
                switch kind {
                case "step": return LearningRatePolicy(schedule: .step(stepSize: stepSize!, gamma: gamma!))
                case "cosine": return LearningRatePolicy(schedule: .cosine(totalSteps: totalSteps!, minLR: minLR!))
                default: return LearningRatePolicy(schedule: .constant)
                }
            }
        }
        var name: String
        var config: OptimizerConfig
        var schedule: Schedule
        var initial: [Float]
        var steps: [Step]
        var state: [String: [Float]]
    }

    private func loadFixtures() throws -> [Fixture] {
        let directory = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures", withExtension: nil),
                                      "Fixtures resource missing from the test bundle")
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { url in
            do { return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url)) } catch {
                XCTFail("\(url.lastPathComponent): \(error)")
                throw error
            }
        }
    }
}
